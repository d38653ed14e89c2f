package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
)

func init() { addCommand(newHistoryCmd) }

func newHistoryCmd(e *env) *cobra.Command {
	var f clientFlags
	var limit int
	cmd := &cobra.Command{
		Use:   "history CHAT [--limit N]",
		Short: "Print a chat's newest messages, oldest first",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > store.MaxPageSize {
				return usageError{errors.New("--limit must be between 1 and 1000")}
			}
			return withLocal(cmd, e, &f, func(ctx context.Context, c *client.Client) error {
				chat, err := parseChat(ctx, c, args[0])
				if err != nil {
					return err
				}
				page, err := c.History(ctx, chat, store.HistoryQuery{Limit: limit})
				if err != nil {
					return err
				}
				p := &printer{w: e.stdout, json: f.json, reactions: true}
				if err := p.loadNames(ctx, c); err != nil {
					return err
				}
				var newest *store.Message
				for _, m := range page.Messages {
					kind, ok := shownKind(m)
					if !ok {
						continue
					}
					if err := p.message(ctx, c, m, kind); err != nil {
						return err
					}
					if m.Seq != 0 && kind != "system" {
						newest = m
					}
				}
				conv, err := c.Store().Conversation(ctx, chat)
				if err != nil || newest == nil || newest.Seq <= conv.LastReadSeq {
					return err
				}
				// The chat has been read up to its newest message.
				if err := c.MarkRead(ctx, chat, newest.ID); err != nil {
					return err
				}
				if err := c.Sync(ctx); err != nil && !errors.Is(err, client.ErrOffline) {
					return err
				}
				return nil
			})
		},
	}
	addClientFlags(cmd, &f, true)
	cmd.Flags().IntVar(&limit, "limit", 50, "how many of the newest messages to print (1..1000)")
	return cmd
}
