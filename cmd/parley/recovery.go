package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/archive"
	"github.com/parley-im/parley/client/store"
)

func init() { addCommand(newRecoveryCmd) }

// maxRecoveryInput bounds what `init --recover` reads from standard input.
const maxRecoveryInput = 4 << 10

func newRecoveryCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "recovery",
		Short: "Cloud history and the recovery key",
		Long: `Your history is kept on the server as ciphertext only your devices can open.
'recovery show' prints the recovery key (24 words and a checksum word) once;
with it, 'parley init --recover --server URL' restores the account and its
history on a fresh machine even when every device is lost.`,
	}
	var f clientFlags
	show := &cobra.Command{
		Use:   "show",
		Short: "Upload the history and print the recovery words (once)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(cmd, &f, func(ctx context.Context, c *client.Client) error {
				if _, err := c.ArchiveHistory(ctx); err != nil {
					return err
				}
				words, err := c.RecoveryWords(ctx)
				if errors.Is(err, client.ErrRecoveryShown) {
					return cliErr(err, "the recovery words of this account were already shown once; they are not stored in readable form and cannot be shown again")
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(e.stderr, "Write these words down and keep them offline. Anyone with them can take over your account and read your history. They are shown only this once.")
				_, err = fmt.Fprintln(e.stdout, strings.Join(words, " "))
				return err
			})
		},
	}
	addClientFlags(show, &f, false)
	var sf clientFlags
	sync := &cobra.Command{
		Use:   "sync",
		Short: "Upload this device's new history to the server's archive (encrypted)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(cmd, &sf, func(ctx context.Context, c *client.Client) error {
				res, err := c.ArchiveHistory(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "Archived %d records in %d segments.\n", res.Records, res.Segments)
				return nil
			})
		},
	}
	addClientFlags(sync, &sf, false)
	var rf clientFlags
	restore := &cobra.Command{
		Use:   "restore",
		Short: "Download the account's whole history from the archive into this device",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(cmd, &rf, func(ctx context.Context, c *client.Client) error {
				res, err := c.RestoreHistory(ctx, progressPrinter(e.stderr))
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "Restored %d messages.\n", res.Inserted)
				return nil
			})
		},
	}
	addClientFlags(restore, &rf, false)
	cmd.AddCommand(show, sync, restore)
	return cmd
}

// progressPrinter reports restore progress on w, one line per segment.
func progressPrinter(w io.Writer) func(archive.Progress) {
	last := -1
	return func(p archive.Progress) {
		if p.SegmentsDone != last {
			last = p.SegmentsDone
			fmt.Fprintf(w, "history: %d/%d segments\n", p.SegmentsDone, p.SegmentsTotal)
		}
	}
}

// runRecoverInit is `parley init --recover`: the words come from standard
// input; wrong words create nothing.
func runRecoverInit(cmd *cobra.Command, e *env, f *clientFlags, server string) error {
	dir, err := f.dir()
	if err != nil {
		return err
	}
	o, err := f.options()
	if err != nil {
		return err
	}
	o.LinkData = []string{client.AccountDataArchiveKeyring, client.AccountDataRecoveryKey}
	in, err := io.ReadAll(io.LimitReader(bufio.NewReader(cmd.InOrStdin()), maxRecoveryInput))
	if err != nil {
		return fmt.Errorf("cannot read the recovery words: %w", err)
	}
	words := strings.TrimSpace(string(in))
	if words == "" {
		return usageError{errors.New("type or pipe the recovery words on standard input")}
	}
	c, err := client.Recover(cmd.Context(), dir, server, words, o, progressPrinter(e.stderr))
	if err != nil {
		switch {
		case errors.Is(err, archive.ErrWrongRecoveryKey):
			return cliErr(err, "these recovery words do not open an account on %s: %s", server, clientText(err))
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
	fmt.Fprintf(e.stderr, "Recovered account %s in %s, with its history.\n", me.AccountID, dir)
	return err
}
