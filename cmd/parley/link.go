package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
)

func init() { addCommand(newLinkCmd) }

func newLinkCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "link",
		Short: "Link a new device to an existing account",
		Long: `Link a new device to your account. On the new device run
  parley link new --server URL
which prints a one-time link code and a short comparison code. On any device
of the account run
  parley link approve CODE
and check that it shows the same comparison code. The new device then gets
the account key (sealed to it) and joins every conversation; every device is
equal afterwards.`,
	}
	cmd.AddCommand(newLinkNewCmd(e), newLinkApproveCmd(e))
	return cmd
}

func newLinkNewCmd(e *env) *cobra.Command {
	var f clientFlags
	var server string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "new --server URL",
		Short: "On the new device: show a link code and wait for approval",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" {
				return usageError{errors.New("--server URL is required: the server of the account to link to")}
			}
			if err := checkServerURL("--server", server); err != nil {
				return err
			}
			dir, err := f.dir()
			if err != nil {
				return err
			}
			o, err := f.options()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			pl, err := client.NewLink(ctx, dir, server, o)
			if err != nil {
				switch {
				case errors.Is(err, client.ErrOffline):
					return cliErr(err, "cannot reach the Parley server at %s: check that it is running and that the URL is right", server)
				case errors.Is(err, store.ErrProfileExists):
					return cliErr(err, "a profile already exists in %s: use another --profile", dir)
				}
				return explain(err, nil)
			}
			req := pl.Request()
			p := &printer{w: e.stdout, json: f.json}
			if f.json {
				err = p.emit(struct {
					Code       string `json:"code"`
					Comparison string `json:"comparison"`
				}{req.Code(), req.Comparison()})
			} else {
				_, err = fmt.Fprintln(e.stdout, req.Code())
				fmt.Fprintf(e.stderr, "On a device of your account run:\n\n  parley link approve %s\n\nand check that it shows the comparison code %s\n", req.Code(), req.Comparison())
				if qr, qerr := qrText([]byte(req.Code())); qerr == nil {
					fmt.Fprint(e.stderr, qr)
				}
				fmt.Fprintln(e.stderr, "Waiting for approval...")
			}
			if err != nil {
				pl.Close()
				return err
			}
			c, err := pl.Wait(ctx)
			if err != nil {
				pl.Close()
				if errors.Is(err, context.DeadlineExceeded) {
					return cliErr(err, "no device approved the link within %s", timeout)
				}
				if errors.Is(err, client.ErrLinkRefused) {
					return cliErr(err, "the link was refused on the other device (the comparison codes did not match, or it was answered no): nothing was linked")
				}
				return explain(err, nil)
			}
			defer c.Close()
			if err := c.Sync(ctx); err != nil {
				return explain(err, c)
			}
			restoreLinked(ctx, e, c, f.json)
			me := meOf(c)
			if f.json {
				return p.emit(me)
			}
			fmt.Fprintf(e.stderr, "Linked: this device is %s of %s\n", me.DeviceID, me.Address)
			return nil
		},
	}
	addClientFlags(cmd, &f, true)
	cmd.Flags().StringVar(&server, "server", "", "the account's Parley server URL")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for approval")
	return cmd
}

func newLinkApproveCmd(e *env) *cobra.Command {
	var f clientFlags
	var yes bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "approve CODE",
		Short: "On an existing device: approve a new device of this account",
		Long: `Approve a new device. The command shows the short comparison code; the new
device must show the same one, or someone else made the link code: answer
no. With --yes it does not ask (for scripts that compared the codes).`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := client.ParseLinkCode(strings.TrimSpace(args[0]))
			if err != nil {
				return cliErr(err, "%q is not a valid link code: copy it exactly as `parley link new` printed it", args[0])
			}
			p := &printer{w: e.stdout, json: f.json}
			if f.json {
				err = p.emit(struct {
					Comparison string `json:"comparison"`
				}{req.Comparison()})
			} else {
				_, err = fmt.Fprintf(e.stdout, "comparison code: %s\n", req.Comparison())
			}
			if err != nil {
				return err
			}
			if !yes {
				fmt.Fprintf(e.stderr, "Does the new device show the comparison code %s? Type yes to approve: ", req.Comparison())
				line, rerr := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if rerr != nil && strings.TrimSpace(line) == "" {
					// No answer is not a "no": the new device keeps waiting.
					fmt.Fprintln(e.stderr)
					return cliErr(rerr, "no answer on standard input, so nothing was approved or refused: run it in a terminal, or pass --yes once the codes match")
				}
				if a := strings.ToLower(strings.TrimSpace(line)); a != "yes" && a != "y" {
					return refuseLink(cmd, e, &f, req)
				}
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			return withClient(cmd, &f, func(_ context.Context, c *client.Client) error {
				if err := c.ApproveLink(ctx, req); err != nil {
					if errors.Is(err, context.DeadlineExceeded) {
						return cliErr(err, "the new device did not finish linking within %s: is `parley link new` still running?", timeout)
					}
					return err
				}
				if !f.json {
					fmt.Fprintln(e.stderr, "Approved: the new device is linked and joins your conversations.")
				}
				return nil
			})
		},
	}
	addClientFlags(cmd, &f, true)
	cmd.Flags().BoolVar(&yes, "yes", false, "approve without asking (the comparison codes were checked)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for the new device")
	return cmd
}

// refuseLinkTimeout bounds telling a new device that its link was refused.
const refuseLinkTimeout = 30 * time.Second

// refuseLink tells the new device of req that the user answered no, so
// that its `link new` stops at once, and returns the not-approved error.
func refuseLink(cmd *cobra.Command, e *env, f *clientFlags, req *client.LinkRequest) error {
	notApproved := errors.New("not approved: the new device was not linked")
	ctx, cancel := context.WithTimeout(cmd.Context(), refuseLinkTimeout)
	defer cancel()
	c, err := f.open(ctx)
	if err == nil {
		defer c.Close()
		err = c.RefuseLink(ctx, req)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "could not tell the new device (it stops at its timeout): %v\n", err)
		return notApproved
	}
	return fmt.Errorf("%w; the new device was told", notApproved)
}
