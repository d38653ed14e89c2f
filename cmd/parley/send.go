package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
)

func init() { addCommand(newSendCmd) }

func newSendCmd(e *env) *cobra.Command {
	var f clientFlags
	var replyTo string
	cmd := &cobra.Command{
		Use:   "send TO TEXT",
		Short: "Send a message to an address (ACCOUNTID@server, username@server) or a chat id",
		Long: `Send a text message. TO is a chat id (see parley chats), or an address:
ACCOUNTID@server or username@server, which starts a 1:1 chat if there is none.
The message is stored and queued first; if the server cannot be reached it
stays queued and is sent the next time this profile connects.`,
		Args: usageArgs(nonBlank(cobra.ExactArgs(2), 1, "the message text")),
		RunE: func(cmd *cobra.Command, args []string) error {
			to, text := args[0], args[1]
			ctx := cmd.Context()
			c, err := f.open(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			// Catch up first; when the server cannot be reached the message
			// is still stored and queued (to a chat this profile has), and
			// the final sync below says so.
			if err := c.Sync(ctx); err != nil && !errors.Is(err, client.ErrOffline) {
				return explain(err, c)
			}
			chat, id, err := sendText(ctx, c, to, text, replyTo)
			if err != nil {
				return err
			}
			if err := c.Sync(ctx); err != nil {
				if errors.Is(err, client.ErrOffline) {
					return cliErr(err, "cannot reach the Parley server at %s: the message is queued and will be sent the next time this profile connects", c.Me().ServerURL)
				}
				return explain(err, c)
			}
			if f.json {
				return (&printer{w: e.stdout, json: true}).emit(struct {
					ID   string `json:"id"`
					Chat string `json:"chat"`
				}{id.String(), string(chat)})
			}
			_, err = fmt.Fprintf(e.stdout, "sent %s to chat %s\n", id, chat)
			return err
		},
	}
	addClientFlags(cmd, &f, true)
	cmd.Flags().StringVar(&replyTo, "reply-to", "", "id of the message this one replies to (TO must then be its chat)")
	return cmd
}

// sendText sends text to a chat id or an address.
func sendText(ctx context.Context, c *client.Client, to, text, replyTo string) (client.ChatID, client.MessageID, error) {
	var none client.MessageID
	if id, err := store.ParseChatID(to); err == nil {
		if _, err := c.Store().Conversation(ctx, id); err == nil || !strings.Contains(to, "@") {
			chat, err := parseChat(ctx, c, to)
			if err != nil {
				return "", none, err
			}
			var mid client.MessageID
			if replyTo != "" {
				target, err := parseMessageID(replyTo)
				if err != nil {
					return "", none, err
				}
				m, err := c.Store().Message(ctx, target)
				if errors.Is(err, store.ErrNotFound) || err == nil && (m.Chat != chat || m.Deleted) {
					return "", none, cliErr(store.ErrNotFound, "chat %s has no message %s to reply to (see `parley history %s --json`)", chat, target, chat)
				}
				if err != nil {
					return "", none, err
				}
				mid, err = c.Reply(ctx, chat, target, text)
				if err != nil {
					return "", none, explain(err, c)
				}
			} else if mid, err = c.Send(ctx, chat, text); err != nil {
				return "", none, explain(err, c)
			}
			return chat, mid, nil
		}
	}
	if replyTo != "" {
		return "", none, usageError{errors.New("--reply-to needs a chat id as TO")}
	}
	chat, mid, err := c.SendTo(ctx, to, text)
	if err != nil {
		return "", none, explainTo(err, c, to)
	}
	return chat, mid, nil
}

// parseMessageID parses a message id in hex.
func parseMessageID(s string) (client.MessageID, error) {
	var id client.MessageID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, usageError{fmt.Errorf("%q is not a message id (32 hex digits)", s)}
	}
	copy(id[:], b)
	return id, nil
}
