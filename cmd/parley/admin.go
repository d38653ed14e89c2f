package main

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/store/open"
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
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			where, err := dsn(data, db)
			if err != nil {
				return err
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
