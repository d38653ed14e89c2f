package store

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/identity"
)

// fastKDF keeps Argon2id cheap in tests; the parameters are recorded in the
// key file like any others.
var fastKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newStore(t testing.TB) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "profile")
	s, err := Create(context.Background(), dir, Options{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, dir
}

func update(t testing.TB, s *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func newAccount(t testing.TB) identity.AccountID {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return identity.AccountIDFromKey(pub)
}

func msgID(n int) MessageID {
	var id MessageID
	id[0] = 0xee
	id[14] = byte(n >> 8)
	id[15] = byte(n)
	return id
}

func newChat(t testing.TB, s *Store, name string) *Conversation {
	t.Helper()
	g := GroupID("group-" + name)
	c := &Conversation{ID: ChatIDFromGroup(g), Kind: ChatGroup, Group: g, Name: name, CreatedAt: t0}
	update(t, s, func(tx *Tx) error { return tx.PutConversation(c) })
	return c
}

func textMsg(chat ChatID, n int, sender identity.AccountID, seq uint64, body string) *Message {
	return &Message{
		ID: msgID(n), Chat: chat, Seq: seq, Sender: sender, Kind: KindText, Body: []byte(body),
		SentAt: t0.Add(time.Duration(n) * time.Second), ReceivedAt: t0.Add(time.Duration(n) * time.Second),
		State: StateReceived,
	}
}

func insert(t testing.TB, s *Store, m *Message) bool {
	t.Helper()
	var ok bool
	update(t, s, func(tx *Tx) error {
		var err error
		ok, err = tx.InsertMessage(m)
		return err
	})
	return ok
}

func TestCreateOpenRefusesExisting(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	if _, err := Create(ctx, dir, Options{}); !errors.Is(err, ErrProfileExists) {
		t.Fatalf("Create over a profile: %v, want ErrProfileExists", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := Open(ctx, t.TempDir(), Options{}); !errors.Is(err, ErrNoProfile) {
		t.Fatalf("Open of an empty folder: %v, want ErrNoProfile", err)
	}
	for _, name := range []string{KeyFileName, DBFileName} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("profile folder mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	s2, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Identity(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Identity of a new profile: %v, want ErrNotFound", err)
	}
}

func TestIdentityRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	ak, err := identity.GenerateAccountKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := identity.NewDeviceID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sigPub, sigPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := identity.IssueDeviceCertificate(ak, dev, sigPub, 1, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := &Identity{
		AccountKey: ak, Device: dev, DeviceSigner: DeviceSignerKey(sigPriv.Seed()), Certificate: cert,
		ServerURL: "https://example.org", Address: "alice@example.org", Username: "alice", CreatedAt: t0,
	}
	update(t, s, func(tx *Tx) error { return tx.PutIdentity(want) })
	// A certificate for another device is refused.
	other, _ := identity.NewDeviceID(rand.Reader)
	bad := *want
	bad.Device = other
	if err := s.Update(ctx, func(tx *Tx) error { return tx.PutIdentity(&bad) }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("mismatched certificate: %v, want ErrInvalid", err)
	}
	s.Close()
	s, err = Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.AccountKey.Bytes(), ak.Bytes()) || got.Device != dev || !bytes.Equal(got.DeviceSigner, want.DeviceSigner) ||
		!bytes.Equal(got.Certificate.Marshal(), cert.Marshal()) || got.ServerURL != want.ServerURL ||
		got.Address != want.Address || got.Username != want.Username || !got.CreatedAt.Equal(t0) {
		t.Fatalf("identity changed on the way through the store: %+v", got)
	}
}

// TestDurabilitySettings checks the pragmas behind "acknowledged means on
// disk": a SIGKILL test cannot tell synchronous=FULL from NORMAL, since the
// OS keeps the page cache; only a power loss could.
func TestDurabilitySettings(t *testing.T) {
	s, _ := newStore(t)
	for _, db := range []interface {
		QueryRow(string, ...any) *sql.Row
	}{s.writeDB, s.readDB} {
		var sync, secure int
		var mode string
		if err := db.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow("PRAGMA secure_delete").Scan(&secure); err != nil {
			t.Fatal(err)
		}
		if sync != 2 || mode != "wal" || secure != 1 {
			t.Fatalf("synchronous=%d journal_mode=%s secure_delete=%d, want 2 (FULL), wal, 1", sync, mode, secure)
		}
	}
}

func TestPendingBaseLiteral(t *testing.T) {
	if !strings.Contains(qMaxPendingPos, strconv.FormatInt(int64(pendingBase), 10)) {
		t.Fatal("qMaxPendingPos does not spell out pendingBase")
	}
}
