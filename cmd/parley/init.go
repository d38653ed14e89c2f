package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

func init() { addCommand(newInitCmd) }

func newInitCmd(e *env) *cobra.Command {
	var f clientFlags
	var server, username, invite string
	var recoverAccount bool
	cmd := &cobra.Command{
		Use:   "init --server URL [--username NAME] [--passphrase-file F] [--recover]",
		Short: "Create a new account and this device's profile",
		Long: `Create a new account: its keys are made on this device and never leave it
(except, sealed, to your own devices when you link them). The profile folder
must not hold a profile yet; if init fails, it removes what it wrote there.
With --passphrase-file the profile key is wrapped with that passphrase;
without, it is kept in a 0600 file in the profile folder. With --recover it
restores an existing account from its recovery words, read from standard
input, instead of creating one.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" {
				return usageError{errors.New("--server URL is required (for example --server http://127.0.0.1:8080)")}
			}
			if err := checkServerURL("--server", server); err != nil {
				return err
			}
			if recoverAccount {
				if username != "" {
					return usageError{errors.New("--username goes with a new account: --recover takes back the account's own username")}
				}
				return runRecoverInit(cmd, e, &f, server)
			}
			if username != "" {
				// Checked before anything is made or registered.
				if _, err := identity.FoldUsername(username); err != nil {
					why := strings.TrimPrefix(err.Error(), identity.ErrInvalidUsername.Error()+": ")
					return usageError{fmt.Errorf("%q is not a valid username: %s", username, why)}
				}
			}
			dir, err := f.dir()
			if err != nil {
				return err
			}
			o, err := f.options()
			if err != nil {
				return err
			}
			o.Username, o.Invite = username, invite
			existed, before := folderState(dir)
			c, err := client.Init(cmd.Context(), dir, server, o)
			if err != nil {
				if before != nil && !errors.Is(err, store.ErrProfileExists) {
					// A failed init (username taken, server refused) leaves
					// no half-made profile that blocks the next try.
					removeCreated(dir, existed, before)
				}
				switch {
				case errors.Is(err, client.ErrOffline):
					return cliErr(err, "cannot reach the Parley server at %s: check that it is running and that the URL is right", server)
				case errors.Is(err, store.ErrProfileExists):
					return cliErr(err, "a profile already exists in %s: use another --profile", dir)
				}
				return explain(err, nil)
			}
			defer c.Close()
			me := meOf(c)
			if f.json {
				return (&printer{w: e.stdout, json: true}).emit(me)
			}
			_, err = fmt.Fprintf(e.stdout, "%s\n", me.Address)
			fmt.Fprintf(e.stderr, "Created account %s in %s. Share your address: %s\n", me.AccountID, dir, me.Address)
			if c.HasArchive(cmd.Context()) {
				fmt.Fprintln(e.stderr, "Your history is backed up encrypted on the server. Run `parley recovery show` now to write down your recovery words (shown once).")
			}
			return err
		},
	}
	addClientFlags(cmd, &f, true)
	cmd.Flags().StringVar(&server, "server", "", "the Parley server's URL (http(s):// or ws(s)://)")
	cmd.Flags().StringVar(&username, "username", "", "a username to claim on the server (optional)")
	cmd.Flags().StringVar(&invite, "invite", "", "the server's invite token, if it is invite-only")
	cmd.Flags().BoolVar(&recoverAccount, "recover", false, "restore an existing account and its history from its recovery words (read from standard input)")
	return cmd
}

// folderState reports whether dir exists and, if it can be read, the
// names it holds, so that a failed init can remove exactly what it added.
func folderState(dir string) (existed bool, names map[string]bool) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, map[string]bool{}
	}
	if err != nil {
		return true, nil
	}
	names = make(map[string]bool, len(entries))
	for _, e := range entries {
		names[e.Name()] = true
	}
	return true, names
}

// removeCreated undoes what a failed init wrote: the folder itself if
// init made it, else the entries that were not there before.
func removeCreated(dir string, existed bool, before map[string]bool) {
	if !existed {
		_ = os.RemoveAll(dir)
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !before[e.Name()] {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}
