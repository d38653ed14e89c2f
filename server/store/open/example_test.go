package open_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"time"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/server/store/open"
)

// Open a store in a data folder, register an account, and append a message
// to a group log; the seq comes back once the message is durable.
func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "parley-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	st, err := open.Open(ctx, dir, store.Options{}) // or "postgres://..."
	if err != nil {
		panic(err)
	}
	defer st.Close()

	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pub := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	acct := store.Account{ID: identity.AccountIDFromKey(pub), PublicKey: pub, CreatedAt: now}
	dev := store.Device{Account: acct.ID, ID: identity.DeviceID{1}, Certificate: []byte("cert"), SigningKey: []byte("key"), CreatedAt: now}
	if err := st.CreateAccount(ctx, store.NewAccount{Account: acct, FirstDevice: dev}); err != nil {
		panic(err)
	}
	group := store.GroupID("mls group id")
	if err := st.CreateGroup(ctx, group, dev.Ref(), now); err != nil {
		panic(err)
	}
	seq, err := st.AppendMessage(ctx, store.Message{Group: group, ID: store.MessageID{7}, Kind: store.KindApplication,
		Sender: dev.Ref(), Data: []byte("ciphertext"), At: now})
	if err != nil {
		panic(err)
	}
	fmt.Println("stored as seq", seq)
	// Output: stored as seq 1
}
