package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/wire"
)

// clientFlags are the flags every client command shares. Each command owns
// its own copy: no flag state is global.
type clientFlags struct {
	profile        string
	passphraseFile string
	json           bool
}

// addClientFlags declares --profile and --passphrase-file on cmd, and
// --json when the command prints data.
func addClientFlags(cmd *cobra.Command, f *clientFlags, withJSON bool) {
	cmd.Flags().StringVar(&f.profile, "profile", "", "profile folder (default: the OS config folder + /parley)")
	cmd.Flags().StringVar(&f.passphraseFile, "passphrase-file", "", "file holding the profile's passphrase")
	if withJSON {
		cmd.Flags().BoolVar(&f.json, "json", false, "print as JSON (one object per line)")
	}
}

// dir returns the profile folder.
func (f *clientFlags) dir() (string, error) {
	if f.profile != "" {
		return f.profile, nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no --profile given and no config folder known (%v)", err)
	}
	return filepath.Join(base, "parley"), nil
}

// options returns the client options, reading the passphrase file if given.
func (f *clientFlags) options() (client.Options, error) {
	var o client.Options
	if f.passphraseFile == "" {
		return o, nil
	}
	b, err := os.ReadFile(f.passphraseFile)
	if err != nil {
		return o, fmt.Errorf("cannot read the passphrase file: %w", err)
	}
	pass := strings.TrimRight(string(b), "\r\n")
	if pass == "" {
		return o, fmt.Errorf("the passphrase file %s is empty", f.passphraseFile)
	}
	o.Passphrase = []byte(pass)
	return o, nil
}

// open opens the profile.
func (f *clientFlags) open(ctx context.Context) (*client.Client, error) {
	dir, err := f.dir()
	if err != nil {
		return nil, err
	}
	o, err := f.options()
	if err != nil {
		return nil, err
	}
	c, err := client.Open(ctx, dir, o)
	if err != nil {
		return nil, explainOpen(err, dir)
	}
	return c, nil
}

// explainOpen turns an error from opening a profile into one sentence.
func explainOpen(err error, dir string) error {
	switch {
	case errors.Is(err, store.ErrNoProfile), errors.Is(err, os.ErrNotExist):
		return cliErr(err, "there is no profile in %s: run `parley init --server URL` first (or pass --profile)", dir)
	case errors.Is(err, store.ErrPassphraseRequired):
		return cliErr(err, "the profile in %s is protected by a passphrase: pass --passphrase-file", dir)
	case errors.Is(err, store.ErrWrongPassphrase):
		return cliErr(err, "wrong passphrase for the profile in %s", dir)
	}
	return cliErr(err, "cannot open the profile in %s: %s", dir, clientText(err))
}

// withClient opens the profile, catches up with the server, runs fn and
// then sends whatever fn queued. An unreachable server is an error.
func withClient(cmd *cobra.Command, f *clientFlags, fn func(ctx context.Context, c *client.Client) error) error {
	ctx := cmd.Context()
	c, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Sync(ctx); err != nil {
		return explain(err, c)
	}
	if err := fn(ctx, c); err != nil {
		return explain(err, c)
	}
	if err := c.Sync(ctx); err != nil {
		return explain(err, c)
	}
	archivePending(ctx, cmd.ErrOrStderr(), c)
	return nil
}

// withLocal opens the profile and tries to catch up; when the server cannot
// be reached it warns on stderr and runs fn on what is stored.
func withLocal(cmd *cobra.Command, e *env, f *clientFlags, fn func(ctx context.Context, c *client.Client) error) error {
	ctx := cmd.Context()
	c, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Sync(ctx); err != nil {
		if !errors.Is(err, client.ErrOffline) {
			return explain(err, c)
		}
		fmt.Fprintf(e.stderr, "parley: warning: cannot reach the server at %s; showing what this device has stored\n", c.Me().ServerURL)
	}
	if err := fn(ctx, c); err != nil {
		return explain(err, c)
	}
	return nil
}

// cliError is an error whose text is one sentence for a person; it keeps
// the cause for errors.Is.
type cliError struct {
	msg string
	err error
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.err }

// cliErr wraps err with a sentence.
func cliErr(err error, format string, args ...any) error {
	return &cliError{msg: fmt.Sprintf(format, args...), err: err}
}

// clientText is an SDK error's text without the package prefixes.
func clientText(err error) string {
	s := err.Error()
	for _, p := range []string{"client: ", "store: "} {
		s = strings.ReplaceAll(s, p, "")
	}
	return s
}

// explain turns an SDK error into one sentence, naming the server when it
// could not be reached. Errors already explained pass through.
func explain(err error, c *client.Client) error {
	var ce *cliError
	if errors.As(err, &ce) {
		return err
	}
	server := ""
	if c != nil {
		server = " at " + c.Me().ServerURL
	}
	switch {
	case errors.Is(err, client.ErrOffline):
		return cliErr(err, "cannot reach the Parley server%s: check that it is running and that the URL is right", server)
	case errors.Is(err, context.DeadlineExceeded):
		return cliErr(err, "timed out: %s", clientText(err))
	case errors.Is(err, client.ErrOwnAddress):
		return cliErr(err, "that address is this account's own: give another account's address")
	case errors.Is(err, client.ErrBadAddress) && strings.Contains(err.Error(), "federation"):
		return cliErr(err, "%s", strings.TrimPrefix(clientText(err), "malformed address: "))
	case errors.Is(err, client.ErrBadAddress):
		return cliErr(err, "%s (an address is ACCOUNTID@server or username@server)", clientText(err))
	case errors.Is(err, client.ErrUnknownAccount):
		if who, ok := strings.CutPrefix(clientText(err), "no such account: "); ok {
			return cliErr(err, "the server knows no account %s", who)
		}
		return cliErr(err, "%s on the server", clientText(err))
	case errors.Is(err, client.ErrUnknownChat), errors.Is(err, store.ErrNotFound):
		return cliErr(err, "unknown chat: this profile has no such chat (see `parley chats`)")
	case errors.Is(err, store.ErrInvalid):
		return cliErr(err, "%s", strings.TrimPrefix(clientText(err), "invalid argument: "))
	}
	var we *wire.Error
	if errors.As(err, &we) {
		switch we.GetCode() {
		case wire.ErrorCode_DEVICE_REVOKED:
			return cliErr(err, "this device was revoked from its account: link it again with `parley link new`")
		case wire.ErrorCode_USERNAME_TAKEN:
			return cliErr(err, "that username is taken on this server: choose another")
		case wire.ErrorCode_INVITE_REQUIRED:
			return cliErr(err, "the server%s is invite-only: pass --invite TOKEN", server)
		case wire.ErrorCode_RATE_LIMITED:
			return cliErr(err, "the server%s asks to slow down: try again in a moment", server)
		}
		if msg := we.GetMessage(); msg != "" {
			return cliErr(err, "the server refused: %s", msg)
		}
	}
	return cliErr(err, "%s", clientText(err))
}

// explainTo turns an error from starting a 1:1 chat with the address to
// (send, file send) into one sentence naming to.
func explainTo(err error, c *client.Client, to string) error {
	switch {
	case errors.Is(err, client.ErrOwnAddress):
		return cliErr(err, "%s is this account's own address: send to another account's address or to a chat id", to)
	case errors.Is(err, client.ErrBadAddress) && !strings.Contains(err.Error(), "federation"):
		return cliErr(err, "%q is not a valid address or chat id: an address is ACCOUNTID@server or username@server", to)
	case errors.Is(err, client.ErrUnknownAccount):
		return cliErr(err, "the server knows no account %s", to)
	}
	return explain(err, c)
}

// parseChat checks a chat id given on the command line and that the
// profile has that chat.
func parseChat(ctx context.Context, c *client.Client, s string) (client.ChatID, error) {
	id, err := store.ParseChatID(s)
	if err != nil {
		return "", cliErr(err, "%q is not a chat id (see `parley chats`)", s)
	}
	conv, err := c.Store().Conversation(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", cliErr(client.ErrUnknownChat, "unknown chat %s: this profile has no such chat (see `parley chats`)", id)
		}
		return "", explain(err, c)
	}
	if conv.Kind == store.ChatSelf {
		return "", cliErr(client.ErrUnknownChat, "chat %s is this account's private self chat, not a conversation", id)
	}
	return id, nil
}

// checkServerURL checks a --server value before anything is made: an
// http, https, ws or wss URL with a host. The flag names the flag in the
// error.
func checkServerURL(flag, s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || !slices.Contains([]string{"http", "https", "ws", "wss"}, u.Scheme) {
		return usageError{fmt.Errorf("%s %q is not a server URL: give it as http://HOST:PORT (or https://, ws://, wss://)", flag, s)}
	}
	return nil
}

// nonBlank checks, after f, that the argument at index i (when given) is
// not empty or only white space; what names it in the error ("the message
// text").
func nonBlank(f cobra.PositionalArgs, i int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := f(cmd, args); err != nil {
			return err
		}
		if i < len(args) && strings.TrimSpace(args[i]) == "" {
			return fmt.Errorf("%s is empty", what)
		}
		return nil
	}
}

// usageArgs makes a wrong number of arguments a usage error (exit status 2).
func usageArgs(f cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := f(cmd, args); err != nil {
			return usageError{fmt.Errorf("%w (see `%s --help`)", err, cmd.CommandPath())}
		}
		return nil
	}
}
