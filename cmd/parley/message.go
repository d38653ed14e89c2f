package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
)

func init() { addCommand(newMessageCmd) }

func newMessageCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "message",
		Short: "Edit, delete or react to a message (ids from recv or history --json)",
	}
	cmd.AddCommand(
		newMessageActionCmd(e, "edit", "edit CHAT ID TEXT", "Replace the text of your message, for everyone", nonBlank(cobra.ExactArgs(3), 2, "the new text")),
		newMessageActionCmd(e, "delete", "delete CHAT ID", "Delete your message for everyone", cobra.ExactArgs(2)),
		newMessageActionCmd(e, "react", "react CHAT ID [REACTION]", "React to a message (no REACTION withdraws yours)", cobra.RangeArgs(2, 3)),
	)
	return cmd
}

// newMessageActionCmd builds the message command verb (edit, delete or
// react).
func newMessageActionCmd(e *env, verb, use, short string, args cobra.PositionalArgs) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  usageArgs(args),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, err := parseMessageID(args[1])
			if err != nil {
				return err
			}
			var chat client.ChatID
			var id client.MessageID
			err = withClient(cmd, &f, func(ctx context.Context, c *client.Client) error {
				if chat, err = parseChat(ctx, c, args[0]); err != nil {
					return err
				}
				m, err := c.Store().Message(ctx, target)
				if errors.Is(err, store.ErrNotFound) || err == nil && m.Chat != chat {
					return cliErr(store.ErrNotFound, "chat %s has no message %s (see `parley history %s --json`)", chat, target, chat)
				}
				if err != nil {
					return err
				}
				if m.Deleted {
					return cliErr(nil, "message %s was deleted", target)
				}
				if verb != "react" && !m.Mine {
					return cliErr(nil, "message %s is not yours: you can only %s your own messages", target, verb)
				}
				switch verb {
				case "edit":
					id, err = c.Edit(ctx, chat, target, args[2])
				case "delete":
					id, err = c.Delete(ctx, chat, target)
				default:
					reaction := ""
					if len(args) == 3 {
						reaction = args[2]
					}
					id, err = c.React(ctx, chat, target, reaction)
				}
				return err
			})
			if err != nil {
				return err
			}
			if f.json {
				return (&printer{w: e.stdout, json: true}).emit(struct {
					ID   string `json:"id"`
					Chat string `json:"chat"`
				}{id.String(), string(chat)})
			}
			return nil
		},
	}
	addClientFlags(cmd, &f, true)
	return cmd
}

// reactionJSON is one account's reaction to a message, in history.
type reactionJSON struct {
	Sender   string `json:"sender"`
	Reaction string `json:"reaction"`
}

// reactionsOf returns the current reactions to a message.
func reactionsOf(ctx context.Context, c *client.Client, m *store.Message) ([]reactionJSON, error) {
	rs, err := c.Store().Reactions(ctx, m.Chat, m.ID)
	if err != nil {
		return nil, fmt.Errorf("failed to read reactions: %w", err)
	}
	var out []reactionJSON
	for _, r := range rs {
		out = append(out, reactionJSON{Sender: string(r.Sender), Reaction: string(r.Body)})
	}
	return out, nil
}
