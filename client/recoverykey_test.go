package client_test

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/parley-im/parley/client"
	"github.com/parley-im/parley/client/archive"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"
)

// archivedTexts restores the archive of c's account with ring into a fresh
// store and returns chat's texts there, oldest first.
func archivedTexts(ctx context.Context, t *testing.T, url string, c *client.Client, ring *archive.Keyring, chat client.ChatID) ([]string, error) {
	st := newHistoryStore(t)
	remote := client.NewArchiveRemote(url, nil, c.ArchiveToken)
	if _, err := archive.Restore(ctx, st, remote, ring, archive.RestoreOptions{}); err != nil {
		return nil, err
	}
	var out []string
	var after store.Position
	for {
		page, err := st.Scan(ctx, chat, after, store.MaxPageSize)
		if err != nil {
			return nil, err
		}
		for _, m := range page {
			if m.Kind == store.KindText && !m.Deleted {
				out = append(out, string(m.Body))
			}
		}
		if len(page) < store.MaxPageSize {
			return out, nil
		}
		after = page[len(page)-1].Position
	}
}

func keyringOf(t *testing.T, c *client.Client) *archive.Keyring {
	t.Helper()
	raw, ok, err := c.AccountData(context.Background(), client.AccountDataArchiveKeyring)
	if err != nil || !ok {
		t.Fatalf("no archive keyring: %v", err)
	}
	ring, err := archive.ParseKeyring(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// TestArchiveFromAccountCreation: an account made by Init has a cloud
// history at once; its running client uploads in the background without
// any ArchiveHistory or RecoveryWords call; the recovery words are shown
// once and then kept by no device; after the only device is wiped, the
// words restore the account and the history, reporting progress as events.
func TestArchiveFromAccountCreation(t *testing.T) {
	e := newLinkEnv(t)
	ctx := e.ctx
	alice, bob := e.account("alice"), e.account("bob")
	if !alice.HasArchive(ctx) {
		t.Fatal("a new account has no archive")
	}
	// The recovery device sleeps: it is not one of alice's devices yet.
	devs, err := alice.Devices(ctx)
	if err != nil || len(devs) != 1 || !devs[0].Current {
		t.Fatalf("devices %+v (%v)", devs, err)
	}
	chat, err := alice.CreateGroup(ctx, "day one", []string{"bob@127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 120
	var want []string
	for i := range n {
		text := fmt.Sprintf("day-one-canary %d", i)
		if _, err := alice.Send(ctx, chat, text); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "bob has alice's messages", func() error {
		got, err := texts(ctx, bob, chat)
		if err != nil || len(got) != n {
			return fmt.Errorf("bob has %d: %v", len(got), err)
		}
		want, err = texts(ctx, alice, chat)
		return err
	})
	ring := keyringOf(t, alice)
	eventually(t, "the background uploads the history", func() error {
		got, err := archivedTexts(ctx, t, e.srv.HTTP, alice, ring, chat)
		if err != nil {
			return err
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			return fmt.Errorf("archive holds %d of %d", len(got), len(want))
		}
		return nil
	})

	// The words: once; then the device holds neither the key nor a way to
	// show it again, and no account data holds it.
	words, err := alice.RecoveryWords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.RecoveryWords(ctx); !errors.Is(err, client.ErrRecoveryShown) {
		t.Fatalf("second RecoveryWords: %v", err)
	}
	rk, err := identity.ParseRecoveryWords(strings.Join(words, " "))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := alice.Store().Setting(ctx, "recovery.pending"); ok {
		t.Fatal("the recovery key is still on the device after its words were shown")
	}
	if _, ok, _ := alice.AccountData(ctx, client.AccountDataRecoveryKey); ok {
		t.Fatal("the recovery key is shared as account data")
	}
	infoRaw, ok, err := alice.AccountData(ctx, client.AccountDataRecoveryInfo)
	if err != nil || !ok {
		t.Fatalf("no recovery info: %v", err)
	}
	if strings.Contains(string(infoRaw), string(rk[:])) {
		t.Fatal("the recovery info holds the recovery key")
	}
	account := alice.Me().AccountID
	alice.Close() // every device of the account is gone

	rec, err := client.Recover(ctx, t.TempDir(), e.srv.HTTP, strings.Join(words, " "), e.opts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e.run(rec)
	if rec.Me().AccountID != account {
		t.Fatalf("recovered account %s, want %s", rec.Me().AccountID, account)
	}
	// A restore reports progress to subscribers, ending complete.
	events, cancel := rec.Subscribe(1024)
	defer cancel()
	if _, err := rec.RestoreHistory(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var last *archive.Progress
	for done := false; !done; {
		select {
		case ev := <-events:
			if ev.Kind == client.EventHistoryRestore {
				last = ev.Restore
				done = last.SegmentsTotal > 0 && last.SegmentsDone == last.SegmentsTotal && last.MessagesMerged == last.MessagesTotal
			}
		case <-ctx.Done():
			t.Fatalf("no final restore event; last %+v", last)
		}
	}
	var got []string
	var after store.Position
	for {
		page, err := rec.Store().Scan(ctx, chat, after, store.MaxPageSize)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			if m.Kind == store.KindText && !m.Deleted {
				got = append(got, string(m.Body))
			}
		}
		if len(page) < store.MaxPageSize {
			break
		}
		after = page[len(page)-1].Position
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("recovered %d messages, want %d", len(got), len(want))
	}
	// The recovered device keeps the recovery info, not the key.
	if _, ok, _ := rec.AccountData(ctx, client.AccountDataRecoveryKey); ok {
		t.Fatal("the recovered device holds the recovery key")
	}
	// The restored device is a device like any other: it can replace the
	// words it was restored with.
	if words, err := rec.RotateRecovery(ctx); err != nil || len(words) == 0 {
		t.Fatalf("rotate on the restored device: %v", err)
	}
	checkCanary(t, e.archDir, want)
	checkCanary(t, e.srv.Dir, want)
}

// TestRecoveryAfterRevokeAndRotate: revoking a device rotates the archive
// key and re-seals the recovery bundle without the recovery key: the same
// words still recover, the revoked device's keyring cannot open what is
// archived afterwards. Rotating the recovery words retires the old ones
// (their bundle is gone, their recovery device revoked) and the new ones
// recover the account.
func TestRecoveryAfterRevokeAndRotate(t *testing.T) {
	e := newLinkEnv(t)
	ctx := e.ctx
	alice, bob := e.account("alice"), e.account("bob")
	words, err := alice.RecoveryWords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chat, err := alice.CreateGroup(ctx, "rotation", []string{"bob@127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	say := func(text string) {
		t.Helper()
		if _, err := alice.Send(ctx, chat, text); err != nil {
			t.Fatal(err)
		}
		eventually(t, "bob has "+text, func() error {
			got, err := texts(ctx, bob, chat)
			if err != nil || !slices.Contains(got, text) {
				return fmt.Errorf("not yet (%v)", err)
			}
			return nil
		})
	}
	say("rotate-canary before")
	// Archived before the link, so the new device's one restore has it.
	eventually(t, "alice archives", func() error {
		_, err := alice.ArchiveHistory(ctx)
		return err
	})
	a2 := e.link(alice)
	eventually(t, "the linked device joins the chat", func() error {
		got, err := texts(ctx, a2, chat)
		if err != nil || !slices.Contains(got, "rotate-canary before") {
			return fmt.Errorf("not yet (%v)", err)
		}
		return nil
	})
	oldRing := keyringOf(t, a2)
	anon := client.NewArchiveRemote(e.srv.HTTP, nil, nil)

	if err := alice.RevokeDevice(ctx, a2.Me().DeviceID); err != nil {
		t.Fatal(err)
	}
	say("rotate-canary after revoke")
	eventually(t, "alice archives", func() error {
		_, err := alice.ArchiveHistory(ctx)
		return err
	})
	bundle, err := client.FetchRecovery(ctx, anon, strings.Join(words, " "))
	if err != nil {
		t.Fatalf("the same words after the rotation: %v", err)
	}
	if bundle.Keyring.Current() == oldRing.Current() || bundle.Keyring.Current() != keyringOf(t, alice).Current() {
		t.Fatalf("bundle keyring generation %d, revoked device's %d", bundle.Keyring.Current(), oldRing.Current())
	}
	got, err := archivedTexts(ctx, t, e.srv.HTTP, alice, bundle.Keyring, chat)
	if err != nil || !slices.Contains(got, "rotate-canary after revoke") || !slices.Contains(got, "rotate-canary before") {
		t.Fatalf("restore with the re-sealed keyring: %q, %v", got, err)
	}
	if _, err := archivedTexts(ctx, t, e.srv.HTTP, alice, oldRing, chat); !errors.Is(err, archive.ErrUnknownGeneration) {
		t.Fatalf("the revoked device's keyring: %v", err)
	}

	// New words retire the old: the old fail cleanly, the new recover.
	oldInfo, _, _ := alice.AccountData(ctx, client.AccountDataRecoveryInfo)
	oldParsed, err := archive.ParseRecoveryInfo(oldInfo)
	if err != nil {
		t.Fatal(err)
	}
	newWords, err := alice.RotateRecovery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(newWords, " ") == strings.Join(words, " ") {
		t.Fatal("rotation kept the words")
	}
	if _, err := client.FetchRecovery(ctx, anon, strings.Join(words, " ")); !errors.Is(err, archive.ErrWrongRecoveryKey) {
		t.Fatalf("old words after rotation: %v", err)
	}
	dir := t.TempDir() + "/old"
	if _, err := client.Recover(ctx, dir, e.srv.HTTP, strings.Join(words, " "), e.opts(), nil); !errors.Is(err, archive.ErrWrongRecoveryKey) {
		t.Fatalf("recover with the old words: %v", err)
	}
	acct, err := alice.Resolve(ctx, string(alice.Me().AccountID))
	if err != nil {
		t.Fatal(err)
	}
	for _, cert := range acct.Devices {
		if cert.DeviceID() == oldParsed.Device {
			t.Fatal("the old recovery device is still active")
		}
	}
	if _, err := alice.RecoveryWords(ctx); !errors.Is(err, client.ErrRecoveryShown) {
		t.Fatalf("RecoveryWords after rotation: %v", err)
	}
	rec, err := client.Recover(ctx, t.TempDir(), e.srv.HTTP, strings.Join(newWords, " "), e.opts(), nil)
	if err != nil {
		t.Fatalf("recover with the new words: %v", err)
	}
	e.run(rec)
	if rec.Me().AccountID != alice.Me().AccountID {
		t.Fatal("the new words recovered another account")
	}
	got, err = archivedTexts(ctx, t, e.srv.HTTP, rec, keyringOf(t, rec), chat)
	if err != nil || !slices.Contains(got, "rotate-canary after revoke") {
		t.Fatalf("history with the new words: %q, %v", got, err)
	}
}

// TestRecoveryForOlderAccounts: an account without a recovery key (made
// before accounts got one at creation, or while the server had no archive
// storage) gets one from RecoveryWords; an account whose devices still
// hold the recovery key itself (the earlier scheme, with a version 1
// bundle) is converted on first use: the key is erased from account data,
// the devices keep the recovery info, the bundle is re-sealed as version 2
// and the same words still open it.
func TestRecoveryForOlderAccounts(t *testing.T) {
	e := newLinkEnv(t)
	ctx := e.ctx
	alice := e.account("alice")
	forget := func() {
		t.Helper()
		if err := alice.Store().Update(ctx, func(tx *store.Tx) error {
			for _, k := range []string{"acct." + client.AccountDataRecoveryInfo, "recovery.pending"} {
				if err := tx.DeleteSetting(k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	anon := client.NewArchiveRemote(e.srv.HTTP, nil, nil)

	forget()
	words, err := alice.RecoveryWords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.FetchRecovery(ctx, anon, strings.Join(words, " ")); err != nil {
		t.Fatalf("words made on demand: %v", err)
	}
	if _, err := alice.RecoveryWords(ctx); !errors.Is(err, client.ErrRecoveryShown) {
		t.Fatalf("second RecoveryWords: %v", err)
	}

	// The earlier scheme: the raw key shared as account data, a v1 bundle.
	forget()
	rk, err := identity.NewRecoveryKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	slot, err := client.DeriveRecoveryBundleID(rk)
	if err != nil {
		t.Fatal(err)
	}
	remote, err := alice.HistoryRemote()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.PutRecoveryBundle(ctx, slot, sealV1(t, rk, alice)); err != nil {
		t.Fatal(err)
	}
	if err := alice.ShareAccountData(ctx, client.AccountDataRecoveryKey, rk[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.RecoveryWords(ctx); !errors.Is(err, client.ErrRecoveryShown) {
		t.Fatalf("RecoveryWords on a converted account: %v", err)
	}
	if v, _, _ := alice.AccountData(ctx, client.AccountDataRecoveryKey); len(v) != 0 {
		t.Fatal("the recovery key is still in account data")
	}
	raw, ok, err := alice.AccountData(ctx, client.AccountDataRecoveryInfo)
	if err != nil || !ok {
		t.Fatalf("no recovery info after the conversion: %v", err)
	}
	info, err := archive.ParseRecoveryInfo(raw)
	if err != nil || info.Slot != slot {
		t.Fatalf("recovery info %+v (%v), want slot %s", info, err, slot)
	}
	sealed, err := anon.FetchRecoveryBundle(ctx, rk)
	if err != nil || sealed[0] != 2 {
		t.Fatalf("bundle after the conversion: version %d (%v)", sealed[0], err)
	}
	b, err := client.FetchRecovery(ctx, anon, strings.Join(identity.RecoveryWords(rk), " "))
	if err != nil || b.AccountKey.ID() != alice.Me().AccountID {
		t.Fatalf("the same words after the conversion: %v", err)
	}
}

// sealV1 seals c's account key and keyring as a version 1 recovery bundle
// (XChaCha20-Poly1305 under a key derived from rk).
func sealV1(t *testing.T, rk identity.RecoveryKey, c *client.Client) []byte {
	t.Helper()
	ring, err := keyringOf(t, c).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	ak := c.Store()
	id, err := ak.Identity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var pb cryptobyte.Builder
	pb.AddUint16LengthPrefixed(func(p *cryptobyte.Builder) { p.AddBytes(id.AccountKey.Bytes()) })
	pb.AddUint16LengthPrefixed(func(p *cryptobyte.Builder) { p.AddBytes(ring) })
	plain, err := pb.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	k, err := hkdf.Key(sha256.New, rk[:], nil, "parley/archive/recovery-bundle/v1", chacha20poly1305.KeySize)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 1+chacha20poly1305.NonceSizeX)
	out[0] = 1
	if _, err := rand.Read(out[1:]); err != nil {
		t.Fatal(err)
	}
	return aead.Seal(out, out[1:], plain, []byte("parley/archive/recovery-bundle/v1"))
}

// TestRecoveryWordsRetiredElsewhere: words not shown yet on the first
// device are never shown once another device has rotated them away.
func TestRecoveryWordsRetiredElsewhere(t *testing.T) {
	e := newLinkEnv(t)
	ctx := e.ctx
	alice := e.account("alice")
	a2 := e.link(alice)
	newWords, err := a2.RotateRecovery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := a2.AccountData(ctx, client.AccountDataRecoveryInfo)
	eventually(t, "alice gets the new recovery info", func() error {
		got, _, err := alice.AccountData(ctx, client.AccountDataRecoveryInfo)
		if err != nil || string(got) != string(want) {
			return fmt.Errorf("not yet (%v)", err)
		}
		return nil
	})
	if words, err := alice.RecoveryWords(ctx); !errors.Is(err, client.ErrRecoveryShown) {
		t.Fatalf("alice's retired words: %d words, %v", len(words), err)
	}
	anon := client.NewArchiveRemote(e.srv.HTTP, nil, nil)
	if _, err := client.FetchRecovery(ctx, anon, strings.Join(newWords, " ")); err != nil {
		t.Fatalf("the new words: %v", err)
	}
}
