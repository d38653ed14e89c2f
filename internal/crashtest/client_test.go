package crashtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	ts "github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// msgID is a message id as the client sees it.
type msgID [16]byte

// payloadFor is the data sent with id, so a receiver can check that what
// arrives under an id is what was sent under it.
func payloadFor(id msgID) []byte {
	return fmt.Appendf(nil, "crash test payload %x", id[:])
}

// mailbox stands for the device's mailbox where a group id would be.
const mailbox = "(mailbox)"

// seen is what one device received under one message id.
type seen struct {
	group string
	seq   uint64
}

// device is one client device: it keeps one connection to whatever server
// runs, reconnecting after every crash, catches up with Fetch, receives
// pushes, and acks what it has recorded.
//
// Acks follow Fetch, never pushes: a Fetch answer holds each group's
// entries in order from the device's cursor, so acking its last seq never
// skips an entry, while pushes may arrive out of order or be lost in a
// crash (and sequence numbers may jump after a restart). A push only
// prompts the next Fetch.
type device struct {
	name   string
	d      *ts.Device
	groups map[string]bool // groups the device is a member of

	mu       sync.Mutex
	c        *wireclient.Client // current connection, nil between connections
	got      map[msgID]seen
	again    int      // deliveries of an id already received (same seq)
	problems []string // same id at two seqs, wrong data, unknown groups
}

func newDevice(name string, d *ts.Device) *device {
	return &device{name: name, d: d, groups: make(map[string]bool), got: make(map[msgID]seen)}
}

func (dv *device) problem(format string, args ...any) {
	if len(dv.problems) < 20 {
		dv.problems = append(dv.problems, dv.name+": "+fmt.Sprintf(format, args...))
	}
}

// client returns the current connection, waiting for one.
func (dv *device) client(ctx context.Context) (*wireclient.Client, error) {
	for {
		dv.mu.Lock()
		c := dv.c
		dv.mu.Unlock()
		if c != nil && c.Err() == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// connect dials, says hello and authenticates.
func (dv *device) connect(ctx context.Context, url string) (*wireclient.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := wireclient.Dial(ctx, url, &wireclient.Options{EventBuffer: 4096})
	if err != nil {
		return nil, err
	}
	if _, err := c.Hello(ctx); err == nil {
		err = c.Authenticate(ctx, dv.d.Account.ID, dv.d.ID, dv.d.Key)
		if err == nil {
			return c, nil
		}
	}
	c.CloseNow()
	return nil, err
}

// record notes deliveries: a message id must always come with the same
// group, seq and data.
func (dv *device) record(ds []*wire.Delivery) {
	dv.mu.Lock()
	defer dv.mu.Unlock()
	for _, d := range ds {
		var id msgID
		copy(id[:], d.GetMessageId())
		var where seen
		switch {
		case len(d.GetGroupId()) > 0 && d.GetKind() == wire.MessageKind_MESSAGE_KIND_APPLICATION:
			where = seen{string(d.GetGroupId()), d.GetSeq()}
			if !dv.groups[where.group] {
				dv.problem("delivery for a group it is not in: %q", where.group)
				continue
			}
		case len(d.GetGroupId()) == 0 && d.GetKind() == wire.MessageKind_MESSAGE_KIND_OTHER:
			where = seen{mailbox, d.GetMailboxSeq()}
		default:
			continue // Welcomes and commits of the setup
		}
		if !bytes.Equal(d.GetData(), payloadFor(id)) {
			dv.problem("message %x arrived with other data than was sent", id)
		}
		if prev, ok := dv.got[id]; ok {
			// A mailbox entry is deleted once acked, so a resend that
			// reaches the server after the ack is stored again: the id is
			// what tells the client it has it already.
			if prev != where && where.group != mailbox {
				dv.problem("message %x stored twice: at %s/%d and %s/%d", id, prev.group, prev.seq, where.group, where.seq)
			}
			dv.again++
		} else {
			dv.got[id] = where
		}
	}
}

// acksFor acknowledges a Fetch answer: each group up to the last seq it
// returned (in order from the cursor), and every mailbox entry.
func acksFor(ds []*wire.Delivery) []*wire.AckRef {
	var acks []*wire.AckRef
	top := map[string]uint64{}
	for _, d := range ds {
		if len(d.GetGroupId()) == 0 {
			acks = append(acks, wireclient.RefOf(d))
			continue
		}
		top[string(d.GetGroupId())] = max(top[string(d.GetGroupId())], d.GetSeq())
	}
	for g, seq := range top {
		acks = append(acks, &wire.AckRef{GroupId: []byte(g), Seq: seq})
	}
	return acks
}

// fetchAll catches up with Fetch until the server has nothing more,
// acking each answer.
func (dv *device) fetchAll(ctx context.Context, c *wireclient.Client) error {
	for range 10000 {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := c.Fetch(fctx, 1024)
		cancel()
		if err != nil {
			return err
		}
		dv.record(r.GetDeliveries())
		if acks := acksFor(r.GetDeliveries()); len(acks) > 0 {
			if err := c.Ack(ctx, acks, false); err != nil {
				return err
			}
		}
		if !r.GetMore() {
			return nil
		}
	}
	return errors.New("fetch did not end")
}

// run keeps the device connected to ep's server until ctx ends.
func (dv *device) run(ctx context.Context, ep *endpoint) {
	for ctx.Err() == nil {
		c, err := dv.connect(ctx, ep.get())
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		dv.mu.Lock()
		dv.c = c
		dv.mu.Unlock()
		// Pushes are read by their own goroutine, so a full event buffer
		// can never hold up the Fetch answers; each batch of pushes asks
		// for a Fetch, which acks.
		kick := make(chan struct{}, 1)
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			events := c.Events()
			var batch []*wire.Delivery
			for ev := range events {
				if d := ev.GetDelivery(); d != nil {
					batch = append(batch, d)
				}
				if len(events) == 0 || len(batch) >= 256 {
					dv.record(batch)
					batch = batch[:0]
					select {
					case kick <- struct{}{}:
					default:
					}
				}
			}
		}()
		kick <- struct{}{}
	conn:
		for {
			select {
			case <-kick:
				if dv.fetchAll(ctx, c) != nil {
					c.CloseNow()
					break conn
				}
				// Let pushes gather before the next Fetch.
				select {
				case <-time.After(20 * time.Millisecond):
				case <-c.Done():
				}
			case <-c.Done():
				break conn
			case <-ctx.Done():
				c.CloseNow()
				break conn
			}
		}
		<-readDone
		dv.mu.Lock()
		dv.c = nil
		dv.mu.Unlock()
	}
}

// sender sends messages from one device to one group: every id it tries is
// noted in attempted before it is sent; an id the server answered goes to
// acked. An id whose send failed (the server died) is sent again, with the
// same id, once the device has reconnected.
type sender struct {
	dev   *device
	group []byte  // a group to send to, or
	to    *device // a device whose mailbox to send to
	epoch uint64
	rec   *ledger

	retry chan msgID
}

// ledger is what the senders know: every id tried and every id the server
// acknowledged, with its group and sending device.
type ledger struct {
	mu        sync.Mutex
	attempted map[msgID]*device
	acked     map[msgID]string // id -> group, or mailbox+device name
	ackedBy   map[msgID]*device
	resent    map[msgID]bool // ids sent more than once
}

func (l *ledger) attempt(id msgID, from *device) {
	l.mu.Lock()
	l.attempted[id] = from
	l.mu.Unlock()
}

func (l *ledger) ack(id msgID, group string, from *device) {
	l.mu.Lock()
	l.acked[id] = group
	l.ackedBy[id] = from
	l.mu.Unlock()
}

func (l *ledger) resend(id msgID) {
	l.mu.Lock()
	l.resent[id] = true
	l.mu.Unlock()
}

func (l *ledger) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// send sends one id until ctx ends or the server answers; a failure on a
// broken connection is retried on the next one.
func (s *sender) send(ctx context.Context, id msgID) error {
	c, err := s.dev.client(ctx)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if s.to != nil {
		_, err = c.Do(sctx, &wire.Request{Kind: &wire.Request_MailboxSend{MailboxSend: &wire.MailboxSend{
			Items: []*wire.MailboxItem{{To: s.to.d.WireRef(), MessageId: id[:], Kind: wire.MessageKind_MESSAGE_KIND_OTHER, Data: payloadFor(id)}},
		}}})
	} else {
		_, err = c.SendMessage(sctx, s.group, s.epoch, id, payloadFor(id))
	}
	if err != nil {
		var we *wire.Error
		if errors.As(err, &we) && we.GetCode() != wire.ErrorCode_UNAVAILABLE && we.GetCode() != wire.ErrorCode_INTERNAL {
			return fmt.Errorf("send refused: %w", err)
		}
		return errRetry
	}
	if s.to != nil {
		s.rec.ack(id, mailbox+s.to.name, s.dev)
	} else {
		s.rec.ack(id, string(s.group), s.dev)
	}
	return nil
}

var errRetry = errors.New("retry")

// loop sends fresh ids until ctx ends, resending failed ones first.
func (s *sender) loop(ctx context.Context, fail func(error)) {
	for ctx.Err() == nil {
		var id msgID
		select {
		case id = <-s.retry:
			s.rec.resend(id)
		default:
			id = ts.MessageID()
			s.rec.attempt(id, s.dev)
		}
		switch err := s.send(ctx, id); {
		case err == nil:
		case errors.Is(err, errRetry) || ctx.Err() != nil:
			s.retry <- id
		default:
			fail(err)
			return
		}
	}
}

// drain resends every failed id until each is acknowledged.
func (s *sender) drain(ctx context.Context) error {
	for {
		var id msgID
		select {
		case id = <-s.retry:
		default:
			return nil
		}
		s.rec.resend(id)
		for {
			err := s.send(ctx, id)
			if err == nil {
				break
			}
			if !errors.Is(err, errRetry) {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
}
