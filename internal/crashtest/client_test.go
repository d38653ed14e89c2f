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

// seen is what one device received under one message id.
type seen struct {
	group string
	seq   uint64
}

// cursor follows one group for one device: every seq up to contig has been
// received, and the ones above it that arrived early wait in above. Only
// contig is acked, so the server never skips an entry the device lacks.
type cursor struct {
	contig uint64
	above  map[uint64]bool
	acked  uint64
}

// device is one client device: it keeps one connection to whatever server
// runs, reconnecting after every crash, catches up with Fetch, receives
// pushes, and acks what it has recorded.
type device struct {
	name string
	d    *ts.Device

	mu       sync.Mutex
	c        *wireclient.Client // current connection, nil between connections
	cursors  map[string]*cursor
	got      map[msgID]seen
	dups     int      // deliveries of an id already received, at the same seq
	problems []string // same id at two seqs, wrong data
}

func newDevice(name string, d *ts.Device) *device {
	return &device{name: name, d: d, cursors: make(map[string]*cursor), got: make(map[msgID]seen)}
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

// record notes deliveries and returns the acks they make possible.
func (dv *device) record(ds []*wire.Delivery) []*wire.AckRef {
	dv.mu.Lock()
	defer dv.mu.Unlock()
	var acks []*wire.AckRef
	moved := map[string]bool{}
	for _, d := range ds {
		if len(d.GetGroupId()) == 0 {
			// Mailbox entries (the setup's Welcomes) are only acked.
			acks = append(acks, wireclient.RefOf(d))
			continue
		}
		g := string(d.GetGroupId())
		cur := dv.cursors[g]
		if cur == nil {
			dv.problem("delivery for unknown group %q", g)
			continue
		}
		if d.GetKind() == wire.MessageKind_MESSAGE_KIND_APPLICATION {
			var id msgID
			copy(id[:], d.GetMessageId())
			if !bytes.Equal(d.GetData(), payloadFor(id)) {
				dv.problem("message %x arrived with other data than was sent", id)
			}
			if prev, ok := dv.got[id]; ok {
				if prev != (seen{g, d.GetSeq()}) {
					dv.problem("message %x stored twice: at %s/%d and %s/%d", id, prev.group, prev.seq, g, d.GetSeq())
				}
				dv.dups++
			} else {
				dv.got[id] = seen{g, d.GetSeq()}
			}
		}
		if s := d.GetSeq(); s > cur.contig {
			cur.above[s] = true
			for cur.above[cur.contig+1] {
				delete(cur.above, cur.contig+1)
				cur.contig++
				moved[g] = true
			}
		}
	}
	for g := range moved {
		if cur := dv.cursors[g]; cur.contig > cur.acked {
			cur.acked = cur.contig
			acks = append(acks, &wire.AckRef{GroupId: []byte(g), Seq: cur.contig})
		}
	}
	return acks
}

// fetchAll catches up with Fetch until the server has nothing more.
func (dv *device) fetchAll(ctx context.Context, c *wireclient.Client) error {
	for range 10000 {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := c.Fetch(fctx, 1024)
		cancel()
		if err != nil {
			return err
		}
		if acks := dv.record(r.GetDeliveries()); len(acks) > 0 {
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
		// Pushes are read concurrently with the catch-up Fetch, so a full
		// event buffer can never hold up the Fetch answers.
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			events := c.Events()
			var batch []*wire.Delivery
			for ev := range events {
				if d := ev.GetDelivery(); d != nil {
					batch = append(batch, d)
				}
				if len(batch) > 0 && (len(batch) >= 256 || len(events) == 0) {
					if acks := dv.record(batch); len(acks) > 0 {
						_ = c.Ack(ctx, acks, false)
					}
					batch = batch[:0]
				}
			}
		}()
		_ = dv.fetchAll(ctx, c)
		select {
		case <-c.Done():
		case <-ctx.Done():
			c.CloseNow()
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
	group []byte
	epoch uint64
	rec   *ledger

	retry chan msgID
}

// ledger is what the senders know: every id tried and every id the server
// acknowledged, with its group and sending device.
type ledger struct {
	mu        sync.Mutex
	attempted map[msgID]*device
	acked     map[msgID]string // id -> group
	ackedBy   map[msgID]*device
	resent    int
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

func (l *ledger) resend() {
	l.mu.Lock()
	l.resent++
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
	if _, err := c.SendMessage(sctx, s.group, s.epoch, id, payloadFor(id)); err != nil {
		var we *wire.Error
		if errors.As(err, &we) && we.GetCode() != wire.ErrorCode_UNAVAILABLE && we.GetCode() != wire.ErrorCode_INTERNAL {
			return fmt.Errorf("send refused: %w", err)
		}
		return errRetry
	}
	s.rec.ack(id, string(s.group), s.dev)
	return nil
}

var errRetry = errors.New("retry")

// loop sends fresh ids until ctx ends, resending failed ones first.
func (s *sender) loop(ctx context.Context, fail func(error)) {
	for ctx.Err() == nil {
		var id msgID
		select {
		case id = <-s.retry:
			s.rec.resend()
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
		s.rec.resend()
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
