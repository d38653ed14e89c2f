package archive_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/parley-im/parley/client/archive"
	"github.com/parley-im/parley/client/store"
	"github.com/parley-im/parley/identity"
)

// blobs is a minimal in-memory archive.Remote.
type blobs struct {
	mu sync.Mutex
	m  map[archive.BlobName][]byte
}

func (b *blobs) Put(_ context.Context, n archive.BlobName, d []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[n] = bytes.Clone(d)
	return nil
}

func (b *blobs) Get(_ context.Context, n archive.BlobName) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.m[n]
	if !ok {
		return nil, archive.ErrNotFound
	}
	return bytes.Clone(d), nil
}

func (b *blobs) List(_ context.Context, prefix string) ([]archive.BlobName, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []archive.BlobName
	for n := range b.m {
		if strings.HasPrefix(string(n), prefix) {
			out = append(out, n)
		}
	}
	return out, nil
}

func (b *blobs) Delete(_ context.Context, n archive.BlobName) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, n)
	return nil
}

// Archive one device's history, then restore it on a new device that has
// only the recovery words and the server's blobs.
func Example() {
	ctx := context.Background()
	dirA, _ := os.MkdirTemp("", "archive-example-a")
	dirB, _ := os.MkdirTemp("", "archive-example-b")
	defer os.RemoveAll(dirA)
	defer os.RemoveAll(dirB)

	account, _ := identity.GenerateAccountKey(rand.Reader)
	var dev identity.DeviceID
	dev[0] = 1
	old, err := store.Create(ctx, dirA, store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer old.Close()
	chat := store.ChatIDFromGroup("example group")
	id, _ := store.NewMessageID(rand.Reader)
	if _, err := old.Apply(ctx, &store.Batch{Messages: []*store.Message{{ID: id, Chat: chat, Seq: 1, Kind: store.KindText,
		Sender: account.ID(), SenderDevice: dev, Mine: true, State: store.StateSent, Body: []byte("hello, history"), SentAt: time.Now()}}}); err != nil {
		log.Fatal(err)
	}

	// Device A: keyring, recovery bundle, upload.
	server := &blobs{m: map[archive.BlobName][]byte{}}
	ring, _ := archive.NewKeyring(rand.Reader)
	rk, _ := identity.NewRecoveryKey(rand.Reader)
	pub, _ := archive.DeriveRecoveryPublicKey(rk) // devices keep only this
	bundle, _ := archive.SealRecoveryBundle(pub, &archive.RecoveryBundle{AccountKey: account, Keyring: ring})
	a, _ := archive.New(archive.Config{Store: old, Remote: server, Keyring: ring, Device: dev})
	if _, err := a.Upload(ctx); err != nil {
		log.Fatal(err)
	}

	// A new device: the words open the bundle; the keyring opens the archive.
	words := strings.Join(identity.RecoveryWords(rk), " ")
	opened, err := archive.OpenRecoveryBundle(words, bundle)
	if err != nil {
		log.Fatal(err)
	}
	fresh, err := store.Create(ctx, dirB, store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer fresh.Close()
	if _, err := archive.Restore(ctx, fresh, server, opened.Keyring, archive.RestoreOptions{}); err != nil {
		log.Fatal(err)
	}
	page, _ := fresh.History(ctx, chat, store.HistoryQuery{Limit: 10})
	fmt.Println(opened.AccountKey.ID() == account.ID(), string(page.Messages[0].Body))
	// Output: true hello, history
}
