package testserver

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// Context returns a context that ends with the test or after 30 seconds.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Code returns the protocol error code of err, or ERROR_CODE_UNSPECIFIED
// if err is not a *wire.Error.
func Code(err error) wire.ErrorCode {
	var we *wire.Error
	if errors.As(err, &we) {
		return we.GetCode()
	}
	return wire.ErrorCode_ERROR_CODE_UNSPECIFIED
}

// WantCode fails the test unless err is a protocol error with code.
func WantCode(t testing.TB, err error, code wire.ErrorCode) *wire.Error {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) || we.GetCode() != code {
		t.Fatalf("got error %v, want code %v", err, code)
	}
	return we
}

// MessageID returns a fresh random message id.
func MessageID() [16]byte {
	var id [16]byte
	_, _ = rand.Read(id[:])
	return id
}

// Ref is the wire reference of a device.
func (d *Device) WireRef() *wire.DeviceRef {
	return &wire.DeviceRef{AccountId: string(d.Account.ID), DeviceId: d.ID[:]}
}

// Commit submits a commit adding and removing devices, with a placeholder
// Welcome (the given bytes) for each added device.
func Commit(ctx context.Context, c *wireclient.Client, group []byte, epoch uint64, commit []byte, welcome []byte, added, removed []*Device) (*wire.CommitResponse, error) {
	id := MessageID()
	req := &wire.Commit{GroupId: group, Epoch: epoch, MessageId: id[:], Commit: commit}
	for _, d := range added {
		req.Added = append(req.Added, d.WireRef())
		req.Welcomes = append(req.Welcomes, &wire.WelcomeFor{Device: d.WireRef(), Data: welcome})
	}
	for _, d := range removed {
		req.Removed = append(req.Removed, d.WireRef())
	}
	r, err := c.Do(ctx, &wire.Request{Kind: &wire.Request_Commit{Commit: req}})
	if err != nil {
		return nil, err
	}
	return r.GetCommit(), nil
}

// NextDelivery waits for the next pushed delivery, skipping wake events.
func NextDelivery(t testing.TB, c *wireclient.Client) *wire.Delivery {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("connection closed while waiting for a delivery: %v", c.Err())
			}
			if d := ev.GetDelivery(); d != nil {
				return d
			}
		case <-timeout:
			t.Fatal("no delivery pushed within 20s")
		}
	}
}
