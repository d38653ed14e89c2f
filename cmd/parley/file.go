package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/filecrypt/transfer"
)

func init() { addCommand(newFileCmd) }

func newFileCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "file",
		Short: "Send and fetch end-to-end encrypted files (up to the server's limit, 4 GiB by default)",
		Args:  usageArgs(cobra.NoArgs),
	}
	cmd.AddCommand(newFileSendCmd(e), newFileGetCmd(e))
	return cmd
}

func newFileSendCmd(e *env) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "send TO PATH",
		Short: "Encrypt a file, upload it and send it to an address or chat id",
		Long: `Encrypt the file at PATH on this device, upload the ciphertext to the
home server and send a file message (with the file's key, hash, size, name
and media type, end-to-end encrypted) to TO: a chat id, or an address
(ACCOUNTID@server or username@server), which starts a 1:1 chat if needed.

If the transfer is interrupted (network cut, process killed), run the same
command again: the upload resumes where the server stopped.`,
		Args: usageArgs(nonBlank(cobra.ExactArgs(2), 1, "the file path")),
		RunE: func(cmd *cobra.Command, args []string) error {
			to, path := args[0], args[1]
			if _, err := os.Stat(path); err != nil {
				return cliErr(err, "cannot read %s: %v", path, errors.Unwrap(err))
			}
			ctx := cmd.Context()
			c, err := f.open(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Sync(ctx); err != nil {
				return explain(err, c)
			}
			chat, err := fileChat(ctx, c, to)
			if err != nil {
				return err
			}
			bar := newProgressBar(e.stderr, f.json, "sending")
			id, err := c.SendFilePath(ctx, chat, path, bar.update)
			bar.done(err == nil)
			if err != nil {
				return explainFile(err, c)
			}
			if err := c.Sync(ctx); err != nil {
				if errors.Is(err, client.ErrOffline) {
					return cliErr(err, "cannot reach the Parley server at %s: the file is uploaded and its message queued; it is sent the next time this profile connects", c.Me().ServerURL)
				}
				return explain(err, c)
			}
			if f.json {
				return (&printer{w: e.stdout, json: true}).emit(struct {
					ID   string `json:"id"`
					Chat string `json:"chat"`
				}{id.String(), string(chat)})
			}
			_, err = fmt.Fprintf(e.stdout, "sent file %s to chat %s\n", id, chat)
			return err
		},
	}
	addClientFlags(cmd, &f, true)
	return cmd
}

func newFileGetCmd(e *env) *cobra.Command {
	var f clientFlags
	var out string
	cmd := &cobra.Command{
		Use:   "get MESSAGE_ID",
		Short: "Download, decrypt and verify the file of a file message",
		Long: `Download the file of a file message (its id from recv or history --json),
decrypt it and check it against the hash in the message. The file is written
to --out (default: its own name in the current folder) only once it is fully
verified; a tampered or truncated download is refused and nothing is written.
If the download is interrupted, run the same command again to resume it.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseMessageID(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := f.open(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Sync(ctx); err != nil && !errors.Is(err, client.ErrOffline) {
				return explain(err, c)
			}
			// --out may name a folder to save the file in under its own
			// name; otherwise its folder must exist. Both are checked
			// before anything is downloaded.
			dir := ""
			if out != "" {
				if fi, err := os.Stat(out); err == nil && fi.IsDir() {
					dir, out = out, ""
				} else if fi, err := os.Stat(filepath.Dir(out)); err != nil || !fi.IsDir() {
					return cliErr(os.ErrNotExist, "cannot save to %s: the folder %s does not exist", out, filepath.Dir(out))
				}
			}
			if out == "" {
				// The name comes from the sender: never replace a file
				// already there without being asked to.
				if m, err := c.Store().Message(ctx, id); err == nil {
					if fi, err := client.FileOf(m); err == nil {
						name := filepath.Join(dir, client.SafeFileName(fi.Name))
						if _, err := os.Stat(name); err == nil {
							return cliErr(os.ErrExist, "%s already exists: pass --out PATH to choose where to save the file", name)
						}
						out = name
					}
				}
			}
			bar := newProgressBar(e.stderr, f.json, "receiving")
			path, err := c.GetFile(ctx, id, out, bar.update)
			bar.done(err == nil)
			if err != nil {
				return explainFile(err, c)
			}
			if f.json {
				return (&printer{w: e.stdout, json: true}).emit(struct {
					ID   string `json:"id"`
					Path string `json:"path"`
				}{id.String(), path})
			}
			_, err = fmt.Fprintf(e.stdout, "saved %s\n", path)
			return err
		},
	}
	addClientFlags(cmd, &f, true)
	cmd.Flags().StringVarP(&out, "out", "o", "", "where to write the file, or a folder to write it in under its name (default: its name, in the current folder)")
	return cmd
}

// fileChat resolves TO: a chat id this profile has, else an address.
func fileChat(ctx context.Context, c *client.Client, to string) (client.ChatID, error) {
	if id, err := store.ParseChatID(to); err == nil {
		if _, err := c.Store().Conversation(ctx, id); err == nil || !strings.Contains(to, "@") {
			return parseChat(ctx, c, to)
		}
	}
	chat, err := c.StartDirect(ctx, to)
	if err != nil {
		return "", explainTo(err, c, to)
	}
	return chat, nil
}

// explainFile turns file transfer errors into messages for people.
func explainFile(err error, c *client.Client) error {
	switch {
	case errors.Is(err, client.ErrFileTooLarge):
		return cliErr(err, "the file is too large: the server at %s does not accept files of this size", c.Me().ServerURL)
	case errors.Is(err, client.ErrFileQuota):
		return cliErr(err, "your file storage quota on the server is used up: wait for older files to expire")
	case errors.Is(err, client.ErrNotFile):
		return cliErr(err, "that message is not a file message (see `parley recv --json`: kind \"file\")")
	case errors.Is(err, store.ErrNotFound):
		return cliErr(err, "this profile has no such message (see `parley recv` or `parley history`)")
	case errors.Is(err, transfer.ErrNotFound):
		return cliErr(err, "the server no longer has this file (it expired or was deleted)")
	case errors.Is(err, transfer.ErrHashMismatch), errors.Is(err, transfer.ErrProtocol):
		return cliErr(err, "the downloaded file failed verification and was not saved: %s", clientText(err))
	case errors.Is(err, transfer.ErrUnauthorized):
		return cliErr(err, "the server refused this device's file upload token (was the device revoked?)")
	}
	var netErr *net.OpError
	if errors.As(err, &netErr) {
		return cliErr(err, "cannot reach the Parley server at %s for the file transfer: check that it is running, then run the same command again (it resumes)", c.Me().ServerURL)
	}
	if strings.Contains(err.Error(), "filecrypt") {
		return cliErr(err, "the downloaded file failed verification (tampered or truncated on the server) and was not saved: %s", clientText(err))
	}
	return explain(err, c)
}

// sizeText formats a byte count for people.
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// progressBar draws transfer progress on a terminal: bytes, percent, rate
// and time left, redrawn at most every 200 ms. It draws nothing when w is
// not a terminal or in --json mode.
type progressBar struct {
	w     io.Writer
	label string
	start time.Time
	mu    sync.Mutex
	last  time.Time
	drawn bool
	// first is the first progress reported (a resumed transfer starts
	// there), so the rate counts only this run's bytes.
	first    int64
	seen     bool
	lastDone int64
	total    int64
}

func newProgressBar(w io.Writer, quiet bool, label string) *progressBar {
	if quiet || !isTerminal(w) {
		return &progressBar{}
	}
	return &progressBar{w: w, label: label, start: time.Now()}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (b *progressBar) update(done, total int64) {
	if b.w == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.seen {
		b.first, b.seen = done, true
	}
	b.lastDone, b.total = done, total
	now := time.Now()
	if now.Sub(b.last) < 200*time.Millisecond && done != total {
		return
	}
	b.last = now
	b.draw(now)
}

func (b *progressBar) draw(now time.Time) {
	const width = 30
	pct := 1.0
	if b.total > 0 {
		pct = float64(b.lastDone) / float64(b.total)
	}
	filled := int(pct * width)
	elapsed := now.Sub(b.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(b.lastDone-b.first) / elapsed
	}
	left := "--"
	if rate > 0 {
		left = time.Duration(float64(b.total-b.lastDone) / rate * float64(time.Second)).Round(time.Second).String()
	}
	fmt.Fprintf(b.w, "\r%s [%s%s] %3.0f%%  %s / %s  %s/s  %s left ", b.label,
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), pct*100,
		sizeText(b.lastDone), sizeText(b.total), sizeText(int64(rate)), left)
	b.drawn = true
}

// done ends the bar's line.
func (b *progressBar) done(ok bool) {
	if b.w == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok && b.seen {
		b.draw(time.Now())
	}
	if b.drawn {
		fmt.Fprintln(b.w)
	}
}
