package server

import (
	"context"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/parley-im/parley/server/bus"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/wire"
)

// Field numbers of the wrappers around a pushed delivery: Frame.event and
// Event.delivery, read from the schema.
var (
	frameEventField    = (&wire.Frame{}).ProtoReflect().Descriptor().Fields().ByName("event").Number()
	eventDeliveryField = (&wire.Event{}).ProtoReflect().Descriptor().Fields().ByName("delivery").Number()
)

// appendDeliveryFrame appends the encoding of Frame{event: Event{delivery:
// d}}. Only d is marshalled; the two wrappers are written as the tag and
// length that protobuf encodes a nested message with, so they need not be
// allocated per push.
func appendDeliveryFrame(b []byte, d *wire.Delivery) ([]byte, error) {
	n := proto.Size(d)
	event := protowire.SizeTag(eventDeliveryField) + protowire.SizeBytes(n)
	b = protowire.AppendTag(b, frameEventField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(event))
	b = protowire.AppendTag(b, eventDeliveryField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	return proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, d)
}

// pushScratch is what encoding one pushed group entry needs; pooled, so a
// push allocates nothing of its own.
type pushScratch struct {
	d      wire.Delivery
	sender wire.DeviceRef
	buf    []byte
}

var pushPool = sync.Pool{New: func() any { return new(pushScratch) }}

// maxPooledPush is the largest encoding buffer kept in the pool.
const maxPooledPush = 64 << 10

// pushLogEntry publishes one group-log entry to devices, encoding it once
// into a pooled buffer. The bus does not keep the bytes after Publish (see
// bus.Bus), so the buffer is reused.
func (s *Server) pushLogEntry(ctx context.Context, to []store.DeviceRef, e *store.LogEntry) {
	if len(to) == 0 {
		return
	}
	sc := pushPool.Get().(*pushScratch)
	sc.sender.AccountId = string(e.Sender.Account)
	sc.sender.DeviceId = append(sc.sender.DeviceId[:0], e.Sender.Device[:]...)
	sc.d.GroupId = append(sc.d.GroupId[:0], e.Group...)
	sc.d.Seq = e.Seq
	sc.d.MessageId = append(sc.d.MessageId[:0], e.ID[:]...)
	sc.d.Kind = wireLogKind(e.Kind)
	sc.d.Epoch = e.Epoch
	sc.d.Sender = &sc.sender
	sc.d.Data = e.Data
	sc.d.UnixTime = e.CreatedAt.Unix()
	var err error
	sc.buf, err = appendDeliveryFrame(sc.buf[:0], &sc.d)
	if err != nil {
		s.log.Error("failed to encode push", "err", err)
	} else if err := s.cfg.Bus.Publish(ctx, to, bus.Message{Frame: sc.buf}); err != nil {
		s.log.Warn("failed to publish push", "err", err)
	}
	sc.d.Data = nil // do not keep the payload alive in the pool
	if cap(sc.buf) <= maxPooledPush {
		pushPool.Put(sc)
	}
}
