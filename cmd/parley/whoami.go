package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { addCommand(newWhoamiCmd) }

func newWhoamiCmd(e *env) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show this profile's address, account and device",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.open(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			me := meOf(c)
			if f.json {
				return (&printer{w: e.stdout, json: true}).emit(me)
			}
			_, err = fmt.Fprintf(e.stdout, "address: %s\naccount: %s\ndevice:  %s\nserver:  %s\n", me.Address, me.AccountID, me.DeviceID, me.Server)
			return err
		},
	}
	addClientFlags(cmd, &f, true)
	return cmd
}
