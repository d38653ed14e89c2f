package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

func init() { addCommand(newChatsCmd) }

func newChatsCmd(e *env) *cobra.Command {
	var f clientFlags
	var all bool
	cmd := &cobra.Command{
		Use:   "chats",
		Short: "List the conversations, with unread counts",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withLocal(cmd, e, &f, func(ctx context.Context, c *client.Client) error {
				convs, unread, err := c.Chats(ctx)
				if err != nil {
					return err
				}
				p := &printer{w: e.stdout, json: f.json}
				for _, conv := range convs {
					if conv.Kind == store.ChatSelf || conv.Left && !all {
						continue
					}
					name := accountIDText
					if !p.json {
						name = func(a identity.AccountID) string { return p.accountName(ctx, c, a) }
					}
					j := chatJSON{Chat: string(conv.ID), Name: chatName(c, conv, name), Kind: conv.Kind.String(),
						Unread: unread[conv.ID], Left: conv.Left, Members: []string{}}
					for _, m := range conv.Members {
						j.Members = append(j.Members, string(m))
					}
					slices.Sort(j.Members)
					if p.json {
						if err := p.emit(j); err != nil {
							return err
						}
						continue
					}
					left := ""
					if conv.Left {
						left = "  (left)"
					}
					if conv.Kind == store.ChatDirect && !conv.Left && !slices.ContainsFunc(conv.Members,
						func(a identity.AccountID) bool { return a != c.Me().AccountID }) {
						left = "  (the other account left)"
					}
					if _, err := fmt.Fprintf(e.stdout, "%s  %-6s  %3d unread  %s%s\n", j.Chat, j.Kind, j.Unread, j.Name, left); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	addClientFlags(cmd, &f, true)
	cmd.Flags().BoolVar(&all, "all", false, "include chats this account has left")
	return cmd
}
