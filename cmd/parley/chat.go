package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/tui"
)

func init() { addCommand(newChatCmd) }

func newChatCmd(e *env) *cobra.Command {
	var f clientFlags
	var bell bool
	var linkServer, downloads string
	cmd := &cobra.Command{
		Use:   "chat",
		Short: "Open the terminal messenger",
		Long: `Open Parley's full-screen terminal UI: the chat list, conversations,
groups, device linking, safety numbers and privacy settings. Press ? inside
for the keys. It stays open when the server cannot be reached: messages
wait in the outbox and go out when the connection is back. NO_COLOR turns
colours off.

With --link-server URL on a new device (an empty --profile), it first shows
a link code, its QR code and a comparison code, waits until a device of
your account approves it (key l in its parley chat), then opens the chats.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			opts := tui.Options{NoColor: e.getenv("NO_COLOR") != "", Bell: bell, DownloadDir: downloads}
			var c *client.Client
			if linkServer != "" {
				if err := checkServerURL("--link-server", linkServer); err != nil {
					return err
				}
			}
			if in, ok := cmd.InOrStdin().(*os.File); !ok || !isTerminal(in) || !isTerminal(e.stdout) {
				return cliErr(nil, "parley chat is the full-screen messenger and needs a terminal on standard input and output; in scripts use send, recv and the other commands")
			}
			if linkServer != "" {
				dir, err := f.dir()
				if err != nil {
					return err
				}
				o, err := f.options()
				if err != nil {
					return err
				}
				c, err = tui.RunLink(ctx, dir, linkServer, o, cmd.InOrStdin(), e.stdout, opts)
				switch {
				case errors.Is(err, client.ErrOffline):
					return cliErr(err, "cannot reach the Parley server at %s: check that it is running and that the URL is right", linkServer)
				case errors.Is(err, store.ErrProfileExists):
					return cliErr(err, "a profile already exists in %s: use another --profile, or leave out --link-server", dir)
				case err != nil:
					return explain(err, nil)
				}
			} else {
				var err error
				if c, err = f.open(ctx); err != nil {
					return err
				}
			}
			defer c.Close()
			return tui.Run(ctx, c, cmd.InOrStdin(), e.stdout, opts)
		},
	}
	addClientFlags(cmd, &f, false)
	cmd.Flags().BoolVar(&bell, "bell", true, "ring the terminal bell for new messages in other chats")
	cmd.Flags().StringVar(&downloads, "download-dir", ".", "where saved files go")
	cmd.Flags().StringVar(&linkServer, "link-server", "", "link this new device to an account on the server at URL first")
	return cmd
}
