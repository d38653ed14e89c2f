package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/identity"
)

func init() { addCommand(newDevicesCmd) }

func newDevicesCmd(e *env) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "List this account's devices",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(cmd, &f, func(ctx context.Context, c *client.Client) error {
				devs, err := c.Devices(ctx)
				if err != nil {
					return err
				}
				p := &printer{w: e.stdout, json: f.json}
				for _, d := range devs {
					if f.json {
						if err := p.emit(struct {
							ID      string `json:"id"`
							Created string `json:"created"`
							Current bool   `json:"current"`
						}{d.ID.String(), timeText(d.Created), d.Current}); err != nil {
							return err
						}
						continue
					}
					mark := ""
					if d.Current {
						mark = "  (this device)"
					}
					if _, err := fmt.Fprintf(e.stdout, "%s  added %s%s\n", d.ID, d.Created.Local().Format("2006-01-02 15:04"), mark); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	addClientFlags(cmd, &f, true)
	cmd.AddCommand(newDevicesRevokeCmd(e))
	return cmd
}

func newDevicesRevokeCmd(e *env) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke another device of this account: it can decrypt nothing sent afterwards",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := identity.ParseDeviceID(args[0])
			if err != nil {
				return cliErr(err, "%q is not a device id (see `parley devices`)", args[0])
			}
			return withClient(cmd, &f, func(ctx context.Context, c *client.Client) error {
				if id == c.Me().DeviceID {
					return cliErr(nil, "%s is this device: revoke it from another device of the account", id)
				}
				devs, err := c.Devices(ctx)
				if err != nil {
					return err
				}
				found := false
				for _, d := range devs {
					found = found || d.ID == id
				}
				if !found {
					return cliErr(nil, "this account has no device %s (see `parley devices`)", id)
				}
				return c.RevokeDevice(ctx, id)
			})
		},
	}
	addClientFlags(cmd, &f, true) // --json accepted: nothing is printed
	return cmd
}
