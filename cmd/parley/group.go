package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/client"
)

func init() { addCommand(newGroupCmd) }

func newGroupCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Create and change group chats",
		Long: `Create and change group chats. Members are addresses (ACCOUNTID@server or
username@server); every device of each member is in the group. Only admins
may add and remove members or rename the group; the creator is the first. The admins
are the listed ones still in the group; when none is left, every member is.`,
	}
	cmd.AddCommand(newGroupCreateCmd(e), newGroupAddCmd(e, true), newGroupAddCmd(e, false),
		newGroupLeaveCmd(e), newGroupRenameCmd(e), newGroupAdminsCmd(e))
	return cmd
}

func newGroupCreateCmd(e *env) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "create NAME MEMBER...",
		Short: "Create a group with these members",
		Args:  usageArgs(nonBlank(cobra.MinimumNArgs(1), 0, "the group name")),
		RunE: func(cmd *cobra.Command, args []string) error {
			var chat client.ChatID
			err := withClient(cmd, &f, func(ctx context.Context, c *client.Client) error {
				var err error
				chat, err = c.CreateGroup(ctx, args[0], args[1:])
				return err
			})
			if err != nil {
				return err
			}
			if f.json {
				return (&printer{w: e.stdout, json: true}).emit(struct {
					Chat string `json:"chat"`
				}{string(chat)})
			}
			_, err = fmt.Fprintln(e.stdout, chat)
			return err
		},
	}
	addClientFlags(cmd, &f, true)
	return cmd
}

// chatCmd builds a group subcommand whose first argument is a chat: it opens
// the profile, resolves the chat and runs act with the remaining arguments.
func chatCmd(use, short string, args cobra.PositionalArgs, act func(ctx context.Context, c *client.Client, chat client.ChatID, rest []string) error) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  usageArgs(args),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, &f, func(ctx context.Context, c *client.Client) error {
				chat, err := parseChat(ctx, c, args[0])
				if err != nil {
					return err
				}
				return act(ctx, c, chat, args[1:])
			})
		},
	}
	addClientFlags(cmd, &f, true) // --json accepted: nothing is printed
	return cmd
}

func newGroupAddCmd(_ *env, add bool) *cobra.Command {
	if add {
		return chatCmd("add CHAT MEMBER...", "Add members (admins only)", cobra.MinimumNArgs(2),
			func(ctx context.Context, c *client.Client, chat client.ChatID, members []string) error {
				return c.AddMembers(ctx, chat, members)
			})
	}
	return chatCmd("remove CHAT MEMBER...", "Remove members (admins only)", cobra.MinimumNArgs(2),
		func(ctx context.Context, c *client.Client, chat client.ChatID, members []string) error {
			// Removing an account that is not in the chat would change
			// nothing and say nothing: a mistyped address goes unnoticed.
			conv, err := c.Store().Conversation(ctx, chat)
			if err != nil {
				return err
			}
			for _, m := range members {
				acct, err := c.Resolve(ctx, m)
				if err != nil {
					return err
				}
				if acct.ID == c.Me().AccountID {
					return cliErr(client.ErrBadAddress, "%s is this account: to leave the chat, run `parley group leave %s`", m, chat)
				}
				if !slices.Contains(conv.Members, acct.ID) {
					return cliErr(client.ErrNotMember, "%s is not a member of chat %s: nothing was removed", m, chat)
				}
			}
			return c.RemoveMembers(ctx, chat, members)
		})
}

func newGroupLeaveCmd(_ *env) *cobra.Command {
	return chatCmd("leave CHAT", "Leave a chat on every device of this account", cobra.ExactArgs(1),
		func(ctx context.Context, c *client.Client, chat client.ChatID, _ []string) error {
			return c.Leave(ctx, chat)
		})
}

func newGroupRenameCmd(_ *env) *cobra.Command {
	return chatCmd("rename CHAT NAME", "Rename a group (admins only)", nonBlank(cobra.ExactArgs(2), 1, "the group name"),
		func(ctx context.Context, c *client.Client, chat client.ChatID, rest []string) error {
			return c.Rename(ctx, chat, rest[0])
		})
}

func newGroupAdminsCmd(_ *env) *cobra.Command {
	return chatCmd("admins CHAT MEMBER...", "Replace a group's admins (admins only)", cobra.MinimumNArgs(2),
		func(ctx context.Context, c *client.Client, chat client.ChatID, admins []string) error {
			return c.SetAdmins(ctx, chat, admins)
		})
}
