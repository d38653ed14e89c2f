package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

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
		Long: `Your history is kept on the server as ciphertext only your devices can open;
every command uploads this device's new messages when it is done. The
account's recovery key is made with the account: 'recovery show' prints it
(32 words and a checksum word) once, after which no device keeps it. With
it, 'parley init --recover --server URL' restores the account and its
history on a fresh machine even when every device is lost. If the words are
lost or may have leaked, 'recovery rotate' makes new ones and retires the
old.`,
	}
	var f clientFlags
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the recovery words (once; this device then forgets them)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(cmd, &f, func(ctx context.Context, c *client.Client) error {
				words, err := c.RecoveryWords(ctx)
				if errors.Is(err, client.ErrRecoveryShown) {
					return cliErr(err, "the recovery words of this account were already shown once and no device keeps them; if you lost them, run `parley recovery rotate` for new ones")
				}
				if err != nil {
					return err
				}
				return printWords(e, f.json, words)
			})
		},
	}
	addClientFlags(show, &f, true)
	var rof clientFlags
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Make new recovery words and retire the old ones (lost or leaked words)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(cmd, &rof, func(ctx context.Context, c *client.Client) error {
				words, err := c.RotateRecovery(ctx)
				if errors.Is(err, client.ErrRecoveryDevice) {
					return cliErr(err, "this device was restored with the recovery words by an earlier Parley and its key derives from them, so it cannot retire them: link a new device, revoke this one from it, and run `parley recovery rotate` there")
				}
				if err != nil && words != nil {
					if perr := printWords(e, rof.json, words); perr != nil {
						return perr
					}
					return cliErr(err, "the words above are your recovery words now, but the old ones could not be retired yet (%s); this device retries whenever it syncs", clientText(err))
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(e.stderr, "The old recovery words no longer open anything.")
				return printWords(e, rof.json, words)
			})
		},
	}
	addClientFlags(rotate, &rof, true)
	var sf clientFlags
	sync := &cobra.Command{
		Use:   "sync",
		Short: "Upload this device's new history to the server's archive (encrypted) and compact it",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(cmd, &sf, func(ctx context.Context, c *client.Client) error {
				res, err := c.ArchiveHistory(ctx)
				if errors.Is(err, client.ErrArchiveQuota) {
					return cliErr(err, "your encrypted history on the server is over its quota: new messages are not backed up until the server operator raises --archive-quota (deleting messages makes room)")
				}
				if err != nil {
					return err
				}
				if sf.json {
					return (&printer{w: e.stdout, json: true}).emit(struct {
						Records  int `json:"records"`
						Segments int `json:"segments"`
					}{res.Records, res.Segments})
				}
				fmt.Fprintf(e.stderr, "Archived %d records in %d segments.\n", res.Records, res.Segments)
				return nil
			})
		},
	}
	addClientFlags(sync, &sf, true)
	var rf clientFlags
	restore := &cobra.Command{
		Use:   "restore",
		Short: "Download the account's whole history from the archive into this device",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(cmd, &rf, func(ctx context.Context, c *client.Client) error {
				p := newRestoreProgress(e.stderr, rf.json)
				res, err := c.RestoreHistory(ctx, p.update)
				p.done()
				if err != nil {
					return err
				}
				if rf.json {
					return (&printer{w: e.stdout, json: true}).emit(struct {
						Messages int `json:"messages"`
						Segments int `json:"segments"`
					}{res.Inserted, res.SegmentsTotal})
				}
				fmt.Fprintf(e.stderr, "Restored %d messages from %d segments.\n", res.Inserted, res.SegmentsTotal)
				return nil
			})
		},
	}
	addClientFlags(restore, &rf, true)
	cmd.AddCommand(show, rotate, sync, restore)
	return cmd
}

// printWords prints the recovery words on stdout (with --json as
// {"words":"..."}, space-separated as init --recover reads them) and the
// warning on stderr.
func printWords(e *env, asJSON bool, words []string) error {
	fmt.Fprintln(e.stderr, "Write these words down and keep them offline. Anyone with them can take over your account and read your history. They are shown only this once; no device keeps them.")
	if asJSON {
		return (&printer{w: e.stdout, json: true}).emit(struct {
			Words string `json:"words"`
		}{strings.Join(words, " ")})
	}
	_, err := fmt.Fprintln(e.stdout, strings.Join(words, " "))
	return err
}

// archiveTimeout bounds the upload a client command does before it exits.
const archiveTimeout = 30 * time.Second

// archivePending uploads what the command changed to the account's cloud
// history, if Sync left anything (it uploads too, but only logs failures).
// A failure is a warning: the next command (or `parley recv --follow`, the
// TUI) uploads it.
func archivePending(ctx context.Context, stderr io.Writer, c *client.Client) {
	ctx, cancel := context.WithTimeout(ctx, archiveTimeout)
	defer cancel()
	_, err := c.ArchivePending(ctx)
	if errors.Is(err, client.ErrArchiveQuota) {
		fmt.Fprintln(stderr, "parley: warning: your encrypted history on the server is over its quota: new messages are not backed up until the server operator raises --archive-quota (deleting messages makes room)")
		return
	}
	if err != nil {
		fmt.Fprintf(stderr, "parley: warning: could not upload to the cloud history (will retry next time): %s\n", clientText(err))
	}
}

// restoreLinked downloads the account's cloud history onto a newly linked
// device, showing progress on a terminal. A failure is a warning: the
// device restores it the next time it runs (`parley recv --follow`, the
// TUI) or with `parley recovery restore`.
func restoreLinked(ctx context.Context, e *env, c *client.Client, quiet bool) {
	if !c.HasArchive(ctx) {
		return
	}
	p := newRestoreProgress(e.stderr, quiet)
	res, err := c.RestoreHistory(ctx, p.update)
	p.done()
	if err != nil {
		fmt.Fprintf(e.stderr, "parley: warning: could not download the history yet (will retry): %s\n", clientText(err))
		return
	}
	if !quiet {
		fmt.Fprintf(e.stderr, "History: %d messages from %d segments.\n", res.Inserted, res.SegmentsTotal)
	}
}

// restoreProgress shows a restore's progress: one updating line on a
// terminal, nothing otherwise (or with --json).
type restoreProgress struct {
	w     io.Writer
	last  time.Time
	drawn bool
}

func newRestoreProgress(w io.Writer, quiet bool) *restoreProgress {
	if quiet || !isTerminal(w) {
		return &restoreProgress{}
	}
	return &restoreProgress{w: w}
}

func (p *restoreProgress) update(pr archive.Progress) {
	if p.w == nil {
		return
	}
	now := time.Now()
	if p.drawn && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last, p.drawn = now, true
	line := fmt.Sprintf("history: %d/%d segments", pr.SegmentsDone, pr.SegmentsTotal)
	if pr.MessagesTotal > 0 {
		line += fmt.Sprintf(", %d/%d messages", pr.MessagesMerged, pr.MessagesTotal)
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
}

// done ends the progress line.
func (p *restoreProgress) done() {
	if p.w != nil && p.drawn {
		fmt.Fprintln(p.w)
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
	o.LinkData = []string{client.AccountDataArchiveKeyring, client.AccountDataRecoveryInfo}
	in, err := io.ReadAll(io.LimitReader(bufio.NewReader(cmd.InOrStdin()), maxRecoveryInput))
	if err != nil {
		return fmt.Errorf("cannot read the recovery words: %w", err)
	}
	words := strings.TrimSpace(string(in))
	if words == "" {
		return usageError{errors.New("type or pipe the recovery words on standard input")}
	}
	p := newRestoreProgress(e.stderr, f.json)
	var last archive.Progress
	c, err := client.Recover(cmd.Context(), dir, server, words, o, func(pr archive.Progress) { last = pr; p.update(pr) })
	p.done()
	if err != nil {
		switch {
		case errors.Is(err, archive.ErrWrongRecoveryKey):
			// The reason without the SDK's error prefixes: `recovery word 1
			// "abandon" is not in the word list`, `the checksum does not
			// match; ...`, `no recovery bundle on this server ...`.
			why := strings.TrimPrefix(clientText(err), archive.ErrWrongRecoveryKey.Error()+": ")
			why = strings.NewReplacer("identity: invalid recovery words: ", "", "identity: ", "").Replace(why)
			return cliErr(err, "these recovery words do not open an account on %s: %s", server, why)
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
	fmt.Fprintf(e.stderr, "Recovered account %s in %s, with its history (%d messages from %d segments).\n", me.AccountID, dir, last.MessagesTotal, last.SegmentsTotal)
	fmt.Fprintln(e.stderr, "The account's other devices were revoked. The other members of your chats add this device back when their apps next sync; until then sending to a chat fails with \"not back in the chat yet\".")
	return err
}
