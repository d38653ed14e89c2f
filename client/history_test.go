package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/archive"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/blob"

	"net/http/httptest"
)

// archiveServer runs the homeserver's archive storage on 127.0.0.1; the
// bearer token "tok-X" authorises account X.
func archiveServer(t *testing.T) (url, dir string) {
	t.Helper()
	dir = t.TempDir()
	h, err := blob.NewArchiveHandler(dir, blob.AuthorizerFunc(func(_ context.Context, tok string) (identity.AccountID, error) {
		if acct, ok := strings.CutPrefix(tok, "tok-"); ok {
			return identity.AccountID(acct), nil
		}
		return "", blob.ErrUnauthorized
	}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, dir
}

func token(acct identity.AccountID) client.TokenSource {
	return func(context.Context) (string, error) { return "tok-" + string(acct), nil }
}

func newHistoryStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Create(context.Background(), t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func dev(b byte) identity.DeviceID {
	var d identity.DeviceID
	for i := range d {
		d[i] = b
	}
	return d
}

// account history written into a store: n text messages over several
// conversations, some deleted for me and some expiring.
type accountHistory struct {
	chats   []*store.Conversation
	texts   map[store.MessageID]string // live messages
	secrets []string                   // deleted or expired texts
}

func writeHistory(t *testing.T, st *store.Store, me identity.AccountID, n int, rnd *mrand.ChaCha8) *accountHistory {
	t.Helper()
	ctx := context.Background()
	base := time.Unix(1_800_000_000, 0).UTC()
	h := &accountHistory{texts: map[store.MessageID]string{}}
	for i := range 5 {
		g := store.GroupID(fmt.Sprintf("group-%d", i))
		h.chats = append(h.chats, &store.Conversation{ID: store.ChatIDFromGroup(g), Kind: store.ChatGroup, Group: g,
			Name: fmt.Sprintf("chat %d", i), CreatedAt: base})
	}
	putChats(t, st, h.chats)
	seq := map[store.ChatID]uint64{}
	var batch []*store.Message
	var forMe []store.MessageID
	for i := range n {
		c := h.chats[i%len(h.chats)].ID
		seq[c]++
		id, err := store.NewMessageID(rnd)
		if err != nil {
			t.Fatal(err)
		}
		text := fmt.Sprintf("canary-text-%d-%x", i, rnd.Uint64())
		m := &store.Message{ID: id, Chat: c, Seq: seq[c], Kind: store.KindText, Body: []byte(text),
			Sender: me, SenderDevice: dev(1), Mine: true, State: store.StateSent, SentAt: base.Add(time.Duration(i) * time.Second)}
		switch {
		case i%101 == 5:
			forMe = append(forMe, id)
			h.secrets = append(h.secrets, text)
		case i%113 == 9:
			m.ExpiresAt = base.Add(time.Hour)
			h.secrets = append(h.secrets, text)
		default:
			h.texts[id] = text
		}
		batch = append(batch, m)
		if len(batch) == 1000 || i == n-1 {
			if _, err := st.Apply(ctx, &store.Batch{Now: base, Messages: batch}); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := st.Update(ctx, func(tx *store.Tx) error {
		for _, id := range forMe {
			if err := tx.DeleteMessage(id, base.Add(2*time.Hour)); err != nil {
				return err
			}
		}
		for {
			done, err := tx.ExpireMessages(base.Add(3*time.Hour), store.MaxPageSize)
			if err != nil || len(done) < store.MaxPageSize {
				return err
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	return h
}

func putChats(t *testing.T, st *store.Store, chats []*store.Conversation) {
	t.Helper()
	if err := st.Update(context.Background(), func(tx *store.Tx) error {
		for _, c := range chats {
			if err := tx.PutConversation(c); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// checkRestored asserts that st holds exactly the live messages of h, in
// sequence order per conversation, and no deleted or expired text.
func checkRestored(t *testing.T, st *store.Store, h *accountHistory) {
	t.Helper()
	seen := 0
	for _, c := range h.chats {
		var after store.Position
		var last uint64
		for {
			page, err := st.Scan(context.Background(), c.ID, after, store.MaxPageSize)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page {
				if m.Seq <= last {
					t.Fatalf("chat %s: seq %d after %d", c.ID, m.Seq, last)
				}
				last = m.Seq
				want, live := h.texts[m.ID]
				switch {
				case live && string(m.Body) != want:
					t.Fatalf("message %x: body %q, want %q", m.ID, m.Body, want)
				case live:
					seen++
				case len(m.Body) != 0:
					t.Fatalf("deleted message %x came back with content %q", m.ID, m.Body)
				}
			}
			if len(page) < store.MaxPageSize {
				break
			}
			after = page[len(page)-1].Position
		}
	}
	if seen != len(h.texts) {
		t.Fatalf("restored %d live messages, want %d", seen, len(h.texts))
	}
}

// checkCanary asserts that no file under dir holds any of the texts.
func checkCanary(t *testing.T, dir string, texts []string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, s := range texts {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s holds message text %q", p, s)
			}
		}
		if bytes.Contains(data, []byte("canary-text-")) {
			t.Errorf("%s holds a message text prefix", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHistoryOverHTTP archives 10,000 messages of device A through the
// homeserver's archive storage and restores them on a device linked later
// and on a device recovered from the recovery words.
func TestHistoryOverHTTP(t *testing.T) {
	ctx := context.Background()
	rnd := mrand.NewChaCha8([32]byte{5})
	url, dir := archiveServer(t)
	ak, err := identity.GenerateAccountKey(rnd)
	if err != nil {
		t.Fatal(err)
	}
	me := ak.ID()
	remote := client.NewArchiveRemote(url, nil, token(me))

	a := newHistoryStore(t)
	h := writeHistory(t, a, me, 10_000, rnd)
	ring, err := archive.NewKeyring(rnd)
	if err != nil {
		t.Fatal(err)
	}
	arch, err := archive.New(archive.Config{Store: a, Remote: remote, Keyring: ring, Device: dev(1), Rand: rnd})
	if err != nil {
		t.Fatal(err)
	}
	up, err := arch.Upload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if up.Segments == 0 {
		t.Fatal("nothing uploaded")
	}
	if _, err := arch.Compact(ctx, time.Unix(1_800_000_000, 0).Add(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	t.Logf("uploaded %d segments, %d records, %d bytes (%.1f bytes/message)", up.Segments, up.Records, up.Bytes, float64(up.Bytes)/10_000)

	// Device B, linked afterwards (it has the conversations and the keyring
	// from the link transfer), restores everything with progress.
	b := newHistoryStore(t)
	putChats(t, b, h.chats)
	var progress []archive.Progress
	start := time.Now()
	res, err := archive.Restore(ctx, b, remote, ring, archive.RestoreOptions{Progress: func(p archive.Progress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(progress) < 2 || progress[len(progress)-1].SegmentsDone != progress[len(progress)-1].SegmentsTotal {
		t.Fatalf("progress %+v", progress)
	}
	t.Logf("restored %d messages over HTTP in %v", res.Inserted, time.Since(start).Round(time.Millisecond))
	checkRestored(t, b, h)

	// The recovery key seals the account key and keyring into the server's
	// slot; a fresh device knowing only the words gets them back.
	rk, err := identity.NewRecoveryKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := archive.DeriveRecoveryPublicKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := archive.SealRecoveryBundle(pub, &archive.RecoveryBundle{AccountKey: ak, Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	slot, err := client.DeriveRecoveryBundleID(rk)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.PutRecoveryBundle(ctx, slot, sealed); err != nil {
		t.Fatal(err)
	}
	words := strings.Join(identity.RecoveryWords(rk), " ")
	anon := client.NewArchiveRemote(url, nil, nil)
	bundle, err := client.FetchRecovery(ctx, anon, words)
	if err != nil {
		t.Fatal(err)
	}
	if bundle.AccountKey.ID() != me {
		t.Fatal("recovered another account")
	}
	c := newHistoryStore(t)
	putChats(t, c, h.chats)
	if _, err := archive.Restore(ctx, c, client.NewArchiveRemote(url, nil, token(bundle.AccountKey.ID())), bundle.Keyring, archive.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	checkRestored(t, c, h)

	// Wrong words fail cleanly: words of another key find no slot, a
	// changed word fails the checksum.
	other, err := identity.NewRecoveryKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.FetchRecovery(ctx, anon, strings.Join(identity.RecoveryWords(other), " ")); !errors.Is(err, archive.ErrWrongRecoveryKey) {
		t.Fatalf("other words: %v", err)
	}
	w := identity.RecoveryWords(rk)
	w[3], w[4] = w[4], w[3]
	if w[3] != w[4] {
		if _, err := client.FetchRecovery(ctx, anon, strings.Join(w, " ")); !errors.Is(err, archive.ErrWrongRecoveryKey) {
			t.Fatalf("swapped words: %v", err)
		}
	}
	// Another account cannot replace the bundle.
	mallory := client.NewArchiveRemote(url, nil, token("mallory"))
	if err := mallory.PutRecoveryBundle(ctx, slot, sealed); !errors.Is(err, client.ErrArchiveServer) {
		t.Fatalf("mallory overwrote the bundle: %v", err)
	}
	if err := mallory.DeleteRecoveryBundle(ctx, slot); !errors.Is(err, client.ErrArchiveServer) {
		t.Fatalf("mallory deleted the bundle: %v", err)
	}
	if _, err := client.FetchRecovery(ctx, anon, words); err != nil {
		t.Fatalf("bundle gone after mallory's attempts: %v", err)
	}
	if err := remote.DeleteRecoveryBundle(ctx, slot); err != nil {
		t.Fatal(err)
	}
	if _, err := client.FetchRecovery(ctx, anon, words); !errors.Is(err, archive.ErrWrongRecoveryKey) {
		t.Fatalf("deleted bundle: %v", err)
	}
	if err := remote.DeleteRecoveryBundle(ctx, slot); err != nil {
		t.Fatalf("deleting a missing bundle: %v", err)
	}

	// Canary: the server's storage holds none of the texts.
	var all []string
	for _, s := range h.texts {
		all = append(all, s)
	}
	checkCanary(t, dir, append(all, h.secrets...))
}
