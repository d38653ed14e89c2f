package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/client"
)

func init() { addCommand(newSettingsCmd) }

// settingDisappearing is the per-chat disappearing-message timer, set with
// --chat; its value is "off" or a duration such as 1h or 7d.
const settingDisappearing = "disappearing"

func newSettingsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "settings",
		Short: "Show and change privacy settings and disappearing messages",
		Long: `Privacy settings, synced to every device of the account (all off until
turned on): read-receipts, typing, last-seen, each on or off.

Disappearing messages are set per chat for every member:
  parley settings set disappearing 1h --chat CHAT     (off turns them off)`,
	}
	cmd.AddCommand(newSettingsGetCmd(e), newSettingsSetCmd(e))
	return cmd
}

// settingJSON is one setting, from settings get.
type settingJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Chat  string `json:"chat,omitempty"`
}

func newSettingsGetCmd(e *env) *cobra.Command {
	var f clientFlags
	var chatArg string
	cmd := &cobra.Command{
		Use:   "get [KEY]",
		Short: "Show one setting, or all",
		Args:  usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withLocal(cmd, e, &f, func(ctx context.Context, c *client.Client) error {
				var out []settingJSON
				key := ""
				if len(args) == 1 {
					key = args[0]
				}
				if key == settingDisappearing || chatArg != "" {
					if key != "" && key != settingDisappearing {
						return usageError{fmt.Errorf("--chat goes with the %s setting only", settingDisappearing)}
					}
					if chatArg == "" {
						return usageError{fmt.Errorf("the %s setting is per chat: pass --chat CHAT", settingDisappearing)}
					}
					chat, err := parseChat(ctx, c, chatArg)
					if err != nil {
						return err
					}
					conv, err := c.Store().Conversation(ctx, chat)
					if err != nil {
						return err
					}
					v := "off"
					if conv.DisappearAfter > 0 {
						v = conv.DisappearAfter.String()
					}
					out = append(out, settingJSON{Key: settingDisappearing, Value: v, Chat: string(chat)})
				} else {
					keys := []string{key}
					if key == "" {
						keys = keys[:0]
						for k := range client.Settings {
							keys = append(keys, k)
						}
						slices.Sort(keys)
					}
					for _, k := range keys {
						if _, ok := client.Settings[k]; !ok {
							return unknownSetting(k)
						}
						v, err := c.Setting(ctx, k)
						if err != nil {
							return err
						}
						out = append(out, settingJSON{Key: k, Value: v})
					}
				}
				p := &printer{w: e.stdout, json: f.json}
				for _, s := range out {
					var err error
					if f.json {
						err = p.emit(s)
					} else {
						_, err = fmt.Fprintf(e.stdout, "%s: %s\n", s.Key, s.Value)
					}
					if err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	addClientFlags(cmd, &f, true)
	cmd.Flags().StringVar(&chatArg, "chat", "", "the chat, for the disappearing setting")
	return cmd
}

func newSettingsSetCmd(e *env) *cobra.Command {
	var f clientFlags
	var chatArg string
	cmd := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Change a setting on every device of this account (or a chat's timer)",
		Args:  usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, value := args[0], args[1]
			if key == settingDisappearing {
				if chatArg == "" {
					return usageError{fmt.Errorf("the %s setting is per chat: pass --chat CHAT", settingDisappearing)}
				}
				after, err := parseTimer(value)
				if err != nil {
					return err
				}
				return withClient(cmd, &f, func(ctx context.Context, c *client.Client) error {
					chat, err := parseChat(ctx, c, chatArg)
					if err != nil {
						return err
					}
					return c.SetDisappearing(ctx, chat, after)
				})
			}
			if chatArg != "" {
				return usageError{fmt.Errorf("--chat goes with the %s setting only", settingDisappearing)}
			}
			if _, ok := client.Settings[key]; !ok {
				return unknownSetting(key)
			}
			if value != "on" && value != "off" {
				return usageError{fmt.Errorf("%s is on or off, not %q", key, value)}
			}
			return withClient(cmd, &f, func(ctx context.Context, c *client.Client) error {
				return c.SetSetting(ctx, key, value)
			})
		},
	}
	addClientFlags(cmd, &f, true) // --json accepted: nothing is printed
	cmd.Flags().StringVar(&chatArg, "chat", "", "the chat, for the disappearing setting")
	return cmd
}

func unknownSetting(k string) error {
	return usageError{fmt.Errorf("unknown setting %q: the settings are %s, %s, %s and %s (with --chat)",
		k, client.SettingReadReceipts, client.SettingTyping, client.SettingLastSeen, settingDisappearing)}
}

// parseTimer parses a disappearing timer: "off", a Go duration (90s, 1h30m)
// or a number of days (7d).
func parseTimer(s string) (time.Duration, error) {
	if s == "off" || s == "0" {
		return 0, nil
	}
	var days int
	if n, err := fmt.Sscanf(s, "%dd", &days); err == nil && n == 1 && fmt.Sprintf("%dd", days) == s {
		if days < 1 || days > 365 {
			return 0, usageError{errors.New("a disappearing timer is at most 365d")}
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		return 0, usageError{fmt.Errorf("%q is not a timer: use off, a duration such as 30s, 1h or 7d", s)}
	}
	if d > 365*24*time.Hour {
		return 0, usageError{errors.New("a disappearing timer is at most 365d")}
	}
	return d, nil
}
