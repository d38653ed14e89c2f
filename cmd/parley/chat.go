package main

import (
	"github.com/spf13/cobra"

	"github.com/parley-im/parley/tui"
)

func init() { addCommand(newChatCmd) }

func newChatCmd(e *env) *cobra.Command {
	var f clientFlags
	var bell bool
	cmd := &cobra.Command{
		Use:   "chat",
		Short: "Open the terminal messenger",
		Long: `Open Parley's full-screen terminal UI: the chat list, conversations,
groups, device linking, safety numbers and privacy settings. Press ? inside
for the keys. It stays open when the server cannot be reached: messages
wait in the outbox and go out when the connection is back. NO_COLOR turns
colours off.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, err := f.open(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			return tui.Run(ctx, c, cmd.InOrStdin(), e.stdout, tui.Options{
				NoColor: e.getenv("NO_COLOR") != "",
				Bell:    bell,
			})
		},
	}
	addClientFlags(cmd, &f, false)
	cmd.Flags().BoolVar(&bell, "bell", true, "ring the terminal bell for new messages in other chats")
	return cmd
}
