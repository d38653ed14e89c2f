package main

import (
	"context"
	"fmt"

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
may add and remove members or rename the group; the creator is the first.`,
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
		Args:  usageArgs(cobra.MinimumNArgs(1)),
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

func newGroupAddCmd(e *env, add bool) *cobra.Command {
	var f clientFlags
	use, short := "add CHAT MEMBER...", "Add members (admins only)"
	if !add {
		use, short = "remove CHAT MEMBER...", "Remove members (admins only)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  usageArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, &f, func(ctx context.Context, c *client.Client) error {
				chat, err := parseChat(ctx, c, args[0])
				if err != nil {
					return err
				}
				if add {
					return c.AddMembers(ctx, chat, args[1:])
				}
				return c.RemoveMembers(ctx, chat, args[1:])
			})
		},
	}
	addClientFlags(cmd, &f, false)
	return cmd
}

func newGroupLeaveCmd(e *env) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "leave CHAT",
		Short: "Leave a chat on every device of this account",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, &f, func(ctx context.Context, c *client.Client) error {
				chat, err := parseChat(ctx, c, args[0])
				if err != nil {
					return err
				}
				return c.Leave(ctx, chat)
			})
		},
	}
	addClientFlags(cmd, &f, false)
	return cmd
}

func newGroupRenameCmd(e *env) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "rename CHAT NAME",
		Short: "Rename a group (admins only)",
		Args:  usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, &f, func(ctx context.Context, c *client.Client) error {
				chat, err := parseChat(ctx, c, args[0])
				if err != nil {
					return err
				}
				return c.Rename(ctx, chat, args[1])
			})
		},
	}
	addClientFlags(cmd, &f, false)
	return cmd
}

func newGroupAdminsCmd(e *env) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "admins CHAT MEMBER...",
		Short: "Replace a group's admins (admins only)",
		Args:  usageArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, &f, func(ctx context.Context, c *client.Client) error {
				chat, err := parseChat(ctx, c, args[0])
				if err != nil {
					return err
				}
				return c.SetAdmins(ctx, chat, args[1:])
			})
		},
	}
	addClientFlags(cmd, &f, false)
	return cmd
}
