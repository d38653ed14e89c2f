package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/store"
)

func init() { addCommand(newRecvCmd) }

// recvCursorFile is the file in the profile folder where recv remembers,
// per chat, the position of the last message it has shown. It holds chat
// ids and positions only.
const recvCursorFile = "recv-cursor.json"

// recvPage is how many stored messages recv reads at a time.
const recvPage = 500

func newRecvCmd(e *env) *cobra.Command {
	var f clientFlags
	var follow bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "recv [--follow] [--timeout DUR]",
		Short: "Fetch and print new messages",
		Long: `Fetch what the server holds for this device and print the messages this
device has not shown before (from every chat, other people's and those this
account sent from its other devices). With --timeout and no new message,
wait up to that long for the first ones. With --follow, stay connected and
print messages as they arrive, until interrupted (or until --timeout).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout < 0 {
				return usageError{errors.New("--timeout must not be negative")}
			}
			ctx := cmd.Context()
			c, err := f.open(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			r := &receiver{c: c, p: &printer{w: e.stdout, json: f.json}, path: filepath.Join(c.Store().Dir(), recvCursorFile)}
			if err := r.load(); err != nil {
				return err
			}
			if !follow && timeout == 0 {
				if err := c.Sync(ctx); err != nil {
					return explain(err, c)
				}
				n, err := r.printNew(ctx)
				if err != nil || n == 0 {
					return err
				}
				// Send the read marks.
				if err := c.Sync(ctx); err != nil {
					return explain(err, c)
				}
				return nil
			}
			return r.wait(ctx, e, follow, timeout)
		},
	}
	addClientFlags(cmd, &f, true)
	cmd.Flags().BoolVar(&follow, "follow", false, "stay connected and print messages as they arrive")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long to wait for messages (0: do not wait, or with --follow: forever)")
	return cmd
}

// receiver prints the messages a profile has not shown yet.
type receiver struct {
	c      *client.Client
	p      *printer
	path   string
	cursor map[client.ChatID]store.Position
}

// load reads the cursor file; a missing file means nothing was shown yet.
func (r *receiver) load() error {
	r.cursor = map[client.ChatID]store.Position{}
	b, err := os.ReadFile(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", r.path, err)
	}
	if err := json.Unmarshal(b, &r.cursor); err != nil {
		return fmt.Errorf("%s is damaged (delete it to show every message again): %w", r.path, err)
	}
	return nil
}

// save writes the cursor file atomically.
func (r *receiver) save() error {
	b, err := json.Marshal(r.cursor)
	if err != nil {
		return err
	}
	tmp := r.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("failed to save the receive position: %w", err)
	}
	if err := os.Rename(tmp, r.path); err != nil {
		return fmt.Errorf("failed to save the receive position: %w", err)
	}
	return nil
}

// printNew prints every stored message past the cursor that is shown on
// its own and was not sent by this device, advances the cursor and saves
// it. Pending messages (ours, not yet ordered by the server) end a chat's
// scan, since everything ordered sorts before them.
func (r *receiver) printNew(ctx context.Context) (int, error) {
	convs, err := r.c.Store().Conversations(ctx)
	if err != nil {
		return 0, err
	}
	if err := r.p.loadNames(ctx, r.c); err != nil {
		return 0, err
	}
	me := r.c.Me().DeviceID
	n, moved := 0, false
	read := map[client.ChatID]client.MessageID{}
	for _, conv := range convs {
		if conv.Kind == store.ChatSelf {
			continue
		}
		after := r.cursor[conv.ID]
	scan:
		for {
			msgs, err := r.c.Store().Scan(ctx, conv.ID, after, recvPage)
			if err != nil {
				return n, err
			}
			for _, m := range msgs {
				if m.Position.Pending() {
					break scan
				}
				after = m.Position
				kind, ok := shownKind(m)
				// This device's own posts were seen when sent; its system
				// messages (a member it removed after they left, a rename) are
				// shown as on every other device.
				if !ok || m.Mine && m.SenderDevice == me && kind != "system" {
					continue
				}
				if err := r.p.message(ctx, r.c, m, kind); err != nil {
					return n, err
				}
				n++
				if m.Seq != 0 && kind != "system" {
					read[conv.ID] = m.ID
				}
			}
			if len(msgs) < recvPage {
				break
			}
		}
		if after != r.cursor[conv.ID] {
			r.cursor[conv.ID] = after
			moved = true
		}
	}
	if !moved {
		return n, nil
	}
	if err := r.save(); err != nil {
		return n, err
	}
	// What was shown has been read: on every device of the account, and
	// for the senders if read receipts are on.
	for chat, id := range read {
		if err := r.c.MarkRead(ctx, chat, id); err != nil {
			return n, err
		}
	}
	return n, nil
}

// wait keeps the client online and prints messages as they are stored:
// until the first ones (follow false) or until ctx ends or the timeout
// passes (follow true).
func (r *receiver) wait(ctx context.Context, e *env, follow bool, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	// Catch up before printing, as recv without flags does: what was
	// already stored (for example the history a newly linked device
	// downloaded) must not end the wait before what waits on the server is
	// fetched. An unreachable server is not an error here: Run keeps trying.
	offline := false
	if err := r.c.Sync(ctx); err != nil && ctx.Err() == nil {
		if !errors.Is(err, client.ErrOffline) {
			return explain(err, r.c)
		}
		offline = true
	}
	events, unsubscribe := r.c.Subscribe(256)
	defer unsubscribe()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.c.Run(runCtx)
	}()
	defer func() {
		stop()
		<-done
	}()
	// A poll as well as events, so nothing waits on a dropped event.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// Run does not report a first connection that fails: say so here.
	warned := offline
	if warned {
		fmt.Fprintf(e.stderr, "parley: cannot reach the server at %s; still trying\n", r.c.Me().ServerURL)
	}
	// Reading the local store must not fail because the wait ended.
	local := context.WithoutCancel(ctx)
	for {
		n, err := r.printNew(local)
		if err != nil {
			return err
		}
		if n > 0 && !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			// The timeout passed or the user interrupted: both end normally.
			return nil
		case ev := <-events:
			if ev.Kind == client.EventConnection && ev.State == client.Reconnecting && !warned {
				warned = true
				fmt.Fprintf(e.stderr, "parley: cannot reach the server at %s; still trying\n", r.c.Me().ServerURL)
			}
			if ev.Kind == client.EventConnection && ev.State == client.Online && warned {
				warned = false
				fmt.Fprintln(e.stderr, "parley: connected again")
			}
		case <-tick.C:
		}
	}
}
