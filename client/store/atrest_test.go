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
	"testing"

	"github.com/parley-im/parley/identity"
)

// grepDir counts occurrences of needle in every file of dir.
func grepDir(t *testing.T, dir string, needle []byte) int {
	t.Helper()
	n := 0
	for name, b := range snapshot(t, dir) {
		if c := bytes.Count(b, needle); c > 0 {
			t.Logf("%q found in %s", needle, name)
			n += c
		}
	}
	return n
}

func TestEncryptedAtRest(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	ak, err := identity.GenerateAccountKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := identity.NewDeviceID(rand.Reader)
	sigPub, sigPriv, _ := ed25519.GenerateKey(rand.Reader)
	cert, err := identity.IssueDeviceCertificate(ak, dev, sigPub, 1, t0)
	if err != nil {
		t.Fatal(err)
	}
	bob := newAccount(t)
	canaries := map[string][]byte{
		"account key":   ak.Bytes(),
		"signer key":    sigPriv.Seed(),
		"device id":     dev[:],
		"server":        []byte("canary-server.example"),
		"username":      []byte("canaryuser"),
		"body":          []byte("CANARY-BODY-7f3a1c"),
		"edit":          []byte("CANARY-EDIT-91bb02"),
		"group state":   []byte("CANARY-GROUP-STATE-5521"),
		"key package":   []byte("CANARY-KP-PRIVATE-0c0c"),
		"outbox":        []byte("CANARY-OUTBOX-8d8d"),
		"setting":       []byte("CANARY-SETTING-4242"),
		"contact":       []byte("CANARY-CONTACT-NAME-1337"),
		"safety number": []byte("CANARY-SAFETY-31415"),
		"chat name":     []byte("CANARY-CHAT-NAME-2718"),
		"sender":        []byte(bob),
	}
	update(t, s, func(tx *Tx) error {
		if err := tx.PutIdentity(&Identity{
			AccountKey: ak, Device: dev, DeviceSigner: DeviceSignerKey(sigPriv.Seed()), Certificate: cert,
			ServerURL: "https://canary-server.example", Address: "canaryuser@canary-server.example", Username: "canaryuser",
		}); err != nil {
			return err
		}
		g := GroupID("g1")
		c := &Conversation{ID: ChatIDFromGroup(g), Kind: ChatDirect, Group: g, Name: string(canaries["chat name"]), Members: []identity.AccountID{bob}}
		if err := tx.PutConversation(c); err != nil {
			return err
		}
		m := textMsg(c.ID, 1, bob, 1, string(canaries["body"]))
		if _, err := tx.InsertMessage(m); err != nil {
			return err
		}
		e := textMsg(c.ID, 2, bob, 2, string(canaries["edit"]))
		e.Kind, e.Target = KindEdit, m.ID
		if _, err := tx.InsertMessage(e); err != nil {
			return err
		}
		if err := tx.PutGroupState(g, canaries["group state"], t0); err != nil {
			return err
		}
		if err := tx.PutKeyPackage("ref1", canaries["key package"], t0); err != nil {
			return err
		}
		if _, err := tx.Enqueue(&OutboxItem{Chat: c.ID, Payload: canaries["outbox"]}); err != nil {
			return err
		}
		if err := tx.SetSetting("custom", string(canaries["setting"])); err != nil {
			return err
		}
		return tx.PutContact(&Contact{Account: bob, DisplayName: string(canaries["contact"]), SafetyNumber: string(canaries["safety number"])})
	})
	check := func(when string) {
		for what, c := range canaries {
			if n := grepDir(t, dir, c); n != 0 {
				t.Errorf("%s: %s found %d times in the profile folder", when, what, n)
			}
		}
	}
	check("while open") // in the WAL
	// Everything reads back.
	if c, err := s.Contact(ctx, bob); err != nil || c.DisplayName != string(canaries["contact"]) {
		t.Fatalf("contact: %+v, %v", c, err)
	}
	if v, ok, err := s.Setting(ctx, "custom"); err != nil || !ok || v != string(canaries["setting"]) {
		t.Fatalf("setting: %q %v %v", v, ok, err)
	}
	if m, err := s.Message(ctx, msgID(1)); err != nil || !bytes.Equal(m.Body, canaries["edit"]) {
		t.Fatalf("message: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("after close") // checkpointed into the database file
	// The test would see plaintext if it were there: an unencrypted SQLite
	// column holding the canary is found by the same grep.
	db, err := sql.Open("sqlite", filepath.Join(dir, DBFileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO meta (name, value) VALUES ('probe', ?)`, canaries["body"]); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if grepDir(t, dir, canaries["body"]) == 0 {
		t.Fatal("the grep cannot see plaintext written to the database")
	}
}

// rawDB opens the profile database directly, as an attacker with the files
// would.
func rawDB(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, DBFileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestRowSwapDetected(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	c := newChat(t, s, "swap")
	bob := newAccount(t)
	insert(t, s, textMsg(c.ID, 1, bob, 1, "first"))
	insert(t, s, textMsg(c.ID, 2, bob, 2, "second"))
	update(t, s, func(tx *Tx) error {
		if err := tx.PutGroupState("ga", GroupState("state a"), t0); err != nil {
			return err
		}
		if err := tx.PutGroupState("gb", GroupState("state b"), t0); err != nil {
			return err
		}
		if err := tx.SetSetting(SettingReadReceipts, On); err != nil {
			return err
		}
		return tx.SetSetting(SettingTyping, Off)
	})
	db := rawDB(t, dir)
	id1, id2 := msgID(1), msgID(2)
	for _, q := range []string{
		`UPDATE messages SET content = (SELECT content FROM messages WHERE id = ?1) WHERE id = ?2`,
		`UPDATE group_state SET state = (SELECT state FROM group_state WHERE group_id = CAST('ga' AS BLOB)) WHERE group_id = CAST('gb' AS BLOB)`,
		`UPDATE settings SET value = (SELECT value FROM settings WHERE name = 'read-receipts') WHERE name = 'typing'`,
		// Moving a message to another conversation is a swap too.
		`UPDATE messages SET chat = 'aaaaaaaaaaaaaaaaaaaaaaaaaa' WHERE id = ?1`,
	} {
		if _, err := db.Exec(q, id1[:], id2[:]); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := s.Message(ctx, msgID(2)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("swapped message body: %v, want ErrCorrupt", err)
	}
	if _, err := s.Message(ctx, msgID(1)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("message moved to another chat: %v, want ErrCorrupt", err)
	}
	if _, err := s.GroupState(ctx, "gb"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("swapped group state: %v, want ErrCorrupt", err)
	}
	if _, _, err := s.Setting(ctx, SettingTyping); !errors.Is(err, ErrCorrupt) {
		t.Errorf("swapped setting: %v, want ErrCorrupt", err)
	}
	var ce *CorruptError
	_, err := s.GroupState(ctx, "gb")
	if !errors.As(err, &ce) || ce.Table != "group_state" {
		t.Errorf("error %v does not name the table", err)
	}
	// Outbox payloads and conversations are bound the same way.
	other := newChat(t, s, "other")
	update(t, s, func(tx *Tx) error {
		_, err := tx.Enqueue(&OutboxItem{Chat: c.ID, Payload: []byte("for c only")})
		return err
	})
	if _, err := db.Exec(`UPDATE outbox SET chat = ?`, string(other.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Outbox(ctx, other.ID, 10); !errors.Is(err, ErrCorrupt) {
		t.Errorf("outbox payload moved to another chat: %v, want ErrCorrupt", err)
	}
	if _, err := db.Exec(`UPDATE conversations SET group_id = CAST('group-elsewhere' AS BLOB) WHERE chat = ?`, string(other.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Conversation(ctx, other.ID); !errors.Is(err, ErrCorrupt) {
		t.Errorf("conversation pointed at another group: %v, want ErrCorrupt", err)
	}
	// Untouched rows still read.
	if st, err := s.GroupState(ctx, "ga"); err != nil || string(st) != "state a" {
		t.Errorf("untouched group state: %q, %v", st, err)
	}
}

func TestKeysNeverInKeyFileWithPassphrase(t *testing.T) {
	// With a passphrase, the profile key itself is nowhere in the folder.
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "p")
	s, err := Create(ctx, dir, Options{Passphrase: []byte("pw"), KDF: fastKDF})
	if err != nil {
		t.Fatal(err)
	}
	key := s.key
	s.Close()
	if n := grepDir(t, dir, key[:]); n != 0 {
		t.Fatalf("profile key found %d times in a passphrase-protected profile", n)
	}
	raw, err := os.ReadFile(filepath.Join(dir, KeyFileName))
	if err != nil || len(raw) != argonFileSize {
		t.Fatalf("key file: %d bytes, %v", len(raw), err)
	}
}
