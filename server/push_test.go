package server

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/wire"
)

// TestAppendDeliveryFrame checks the hand-written wrappers against the
// frame protobuf builds, for small and large payloads (multi-byte lengths).
func TestAppendDeliveryFrame(t *testing.T) {
	for _, size := range []int{0, 1, 200, 20000, wire.MaxDataSize} {
		e := store.LogEntry{
			Group: "group", Seq: 42, ID: store.MessageID{1, 2, 3}, Epoch: 7, Kind: store.KindApplication,
			Sender: store.DeviceRef{Account: identity.AccountID("abcdefghijklmnopqrstuvwxyz234567"), Device: identity.DeviceID{9}},
			Data:   make([]byte, size), CreatedAt: time.Unix(1700000000, 0),
		}
		want := &wire.Frame{Body: &wire.Frame_Event{Event: deliveryEvent(logDelivery(e))}}
		b, err := appendDeliveryFrame([]byte("prefix"), logDelivery(e))
		if err != nil {
			t.Fatal(err)
		}
		if string(b[:6]) != "prefix" {
			t.Fatal("prefix overwritten")
		}
		var got wire.Frame
		if err := proto.Unmarshal(b[6:], &got); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !proto.Equal(&got, want) {
			t.Fatalf("size %d: decoded frame differs", size)
		}
		plain, _ := proto.Marshal(want)
		if len(plain) != len(b)-6 {
			t.Fatalf("size %d: %d bytes, protobuf makes %d", size, len(b)-6, len(plain))
		}
	}
}
