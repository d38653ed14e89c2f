package main

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/store/open"
	"github.com/parley-im/parley/server/store/sqlite"
)

func init() { addCommand(newAdminCmd) }

func newAdminCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Administer a Parley homeserver's data",
	}
	cmd.AddCommand(newAdminInviteCmd(e))
	return cmd
}

func newAdminInviteCmd(e *env) *cobra.Command {
	var data, db string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "invite",
		Short: "Create a one-use registration invite token and print it",
		Long: `Create a one-use registration invite token and print it on stdout.

Run it against the same --data directory or --db URL as the server; it can
run while the server runs.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			where, err := dsn(data, db)
			if err != nil {
				return err
			}
			// A token in a new folder opens no server unless one is
			// started on it: say so, in case --data was mistyped.
			fresh := false
			if db == "" {
				_, err := os.Stat(filepath.Join(data, sqlite.FileName))
				fresh = errors.Is(err, os.ErrNotExist)
			}
			st, err := open.Open(cmd.Context(), where, store.Options{})
			if err != nil {
				return fmt.Errorf("failed to open the store: %w", err)
			}
			defer st.Close()
			var raw [20]byte
			if _, err := rand.Read(raw[:]); err != nil {
				return fmt.Errorf("failed to read randomness: %w", err)
			}
			token := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw[:]))
			if err := st.CreateInvite(cmd.Context(), store.InviteToken(token), time.Now()); err != nil {
				return fmt.Errorf("failed to store the invite: %w", err)
			}
			if fresh {
				fmt.Fprintf(e.stderr, "parley: note: %s held no database, so a new one was made there: start the server with this --data for the token to work\n", data)
			}
			if asJSON {
				return json.NewEncoder(e.stdout).Encode(map[string]string{"token": token})
			}
			_, err = fmt.Fprintln(e.stdout, token)
			return err
		},
	}
	storeFlags(cmd, &data, &db)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
