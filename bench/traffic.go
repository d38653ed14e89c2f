package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-im/parley/wire"
)

// traffic runs senders and receivers over authenticated devices and
// collects what happened inside the measured window.
//
// A message id carries what the receiver needs to measure latency without
// any shared map: bytes 0-3 are the sender's index, 4-11 the send time in
// nanoseconds since the run started (monotonic), 12-15 a per-sender counter,
// so every id is unique. The payload itself is one pre-made buffer.
type traffic struct {
	start       time.Time
	from, until time.Duration // the measured window, relative to start
	payload     []byte
	window      int
	perSender   float64         // target sends/s of one sender; 0 = as fast as possible
	tokens      []chan struct{} // each paced sender's send permits
	ownProcess  bool            // the server runs in another process

	hist      Histogram     // delivery: send to push received
	ackHist   Histogram     // durability: send to answer received
	sent      atomic.Uint64 // acknowledged (durable) sends in the window
	delivered atomic.Uint64 // deliveries to other devices in the window
	errs      atomic.Uint64
	behind    atomic.Uint64 // paced sends that could not start on time
	firstErr  error
	errOnce   sync.Once

	// serverCPU reads the server's CPU time; cpuServer and cpuSelf are the
	// server's and this process's CPU time during the window.
	serverCPU          func(context.Context) (time.Duration, error)
	cpuServer, cpuSelf time.Duration
}

func (t *traffic) now() time.Duration { return time.Since(t.start) }

func (t *traffic) inWindow(at time.Duration) bool { return at >= t.from && at < t.until }

func (t *traffic) fail(err error) {
	t.errs.Add(1)
	t.errOnce.Do(func() { t.firstErr = err })
}

// sender keeps up to t.window sends of the same payload in flight from
// dev to group until ctx ends. One goroutine per sender pipelines them, as
// a client with a send queue would: whenever answers come in it writes as
// many new sends as the window allows in one WebSocket message.
func (t *traffic) sender(ctx context.Context, wg *sync.WaitGroup, dev *device, idx uint32, group []byte, epoch uint64) {
	var tokens chan struct{}
	if t.perSender > 0 {
		tokens = make(chan struct{}, t.window)
		t.tokens = append(t.tokens, tokens) // paced by t.pace
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t.pipeline(ctx, dev, idx, group, epoch, tokens)
	}()
}

// outgoing is one reusable send request of a sender's window.
type outgoing struct {
	frame wire.Frame
	req   wire.Request
	kind  wire.Request_Send
	send  wire.Send
	id    [16]byte
	at    time.Duration // when it was written, relative to traffic.start
}

// pipeline is the body of sender. Sends whose answers have not arrived
// when ctx ends are abandoned (the connection is closed soon after).
func (t *traffic) pipeline(ctx context.Context, dev *device, idx uint32, group []byte, epoch uint64, tokens chan struct{}) {
	answers := make(chan *wire.Frame, t.window)
	free := make([]*outgoing, t.window)
	for i := range free {
		o := &outgoing{}
		o.send = wire.Send{GroupId: group, Epoch: epoch, Data: t.payload, Kind: wire.MessageKind_MESSAGE_KIND_APPLICATION}
		o.kind.Send = &o.send
		o.req.Kind = &o.kind
		o.frame.Body = &wire.Frame_Request{Request: &o.req}
		binary.BigEndian.PutUint32(o.id[0:], idx)
		free[i] = o
	}
	inflight := make(map[uint64]*outgoing, t.window)
	batch := make([]*wire.Frame, 0, t.window)
	written := make([]*outgoing, 0, t.window)
	var counter uint32
	var credit int // paced sends released but not yet written
	for {
		// Write as many sends as the window (and the pace) allows.
		batch, written = batch[:0], written[:0]
		for len(free) > 0 && (tokens == nil || credit > 0) {
			o := free[len(free)-1]
			free = free[:len(free)-1]
			counter++
			now := t.now()
			o.at = now
			binary.BigEndian.PutUint64(o.id[4:], uint64(now))
			binary.BigEndian.PutUint32(o.id[12:], counter)
			o.send.MessageId = o.id[:]
			o.frame.Id = 0
			batch, written = append(batch, &o.frame), append(written, o)
			if tokens != nil {
				credit--
			}
		}
		if len(batch) > 0 {
			if err := dev.c.Pipeline(ctx, answers, batch...); err != nil {
				if ctx.Err() == nil {
					t.fail(err)
				}
				return
			}
			for _, o := range written {
				inflight[o.frame.Id] = o
			}
		}
		// Wait for an answer (or, paced, a token), then take every answer
		// already there.
		var f *wire.Frame
		var ok bool
		select {
		case f, ok = <-answers:
		case <-tokenChan(tokens, len(free) > 0):
			credit++
			for credit < len(free) && len(tokens) > 0 {
				<-tokens // only this goroutine receives
				credit++
			}
			continue
		case <-ctx.Done():
			return
		}
		for {
			if !ok {
				if ctx.Err() == nil {
					t.fail(dev.c.Err())
				}
				return // the connection is gone
			}
			t.answered(f, inflight, &free)
			select {
			case f, ok = <-answers:
				continue
			default:
			}
			break
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// tokenChan is tokens while the window has room, else nil (never ready).
func tokenChan(tokens chan struct{}, room bool) chan struct{} {
	if room {
		return tokens
	}
	return nil
}

// answered records the answer f and returns its request to free.
func (t *traffic) answered(f *wire.Frame, inflight map[uint64]*outgoing, free *[]*outgoing) {
	o := inflight[f.GetId()]
	if o == nil {
		return
	}
	delete(inflight, f.GetId())
	*free = append(*free, o)
	if e := f.GetError(); e != nil {
		t.fail(e)
		return
	}
	if now := t.now(); t.inWindow(now) {
		t.sent.Add(1)
		t.ackHist.Record(now - o.at)
	}
}

// pace releases perSender tokens per second to each sender's channel in
// t.tokens until ctx ends: one goroutine and one timer for all senders,
// taking turns. A token that finds its sender's window full is counted in
// behind and dropped, so the achieved rate shows in the result rather than
// a growing backlog.
func (t *traffic) pace(ctx context.Context) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	begin := time.Now()
	rate := t.perSender * float64(len(t.tokens))
	var released uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := uint64(time.Since(begin).Seconds() * rate)
		for ; released < due; released++ {
			select {
			case t.tokens[released%uint64(len(t.tokens))] <- struct{}{}:
			default:
				t.behind.Add(1)
			}
		}
	}
}

// ackDelay is how long a receiver lets acks gather before sending them,
// as a client that stores in batches would; ackBatch sends them sooner.
const (
	ackDelay = 10 * time.Millisecond
	ackBatch = 256
)

// receiver reads dev's pushes until its connection closes: it records the
// latency of messages from other devices and acks everything in batches,
// as a real client does once it has stored them.
func (t *traffic) receiver(wg *sync.WaitGroup, dev *device, self uint32) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx := context.Background()
		events := dev.c.Events()
		var group []byte
		var top uint64
		pending := 0
		tick := time.NewTicker(ackDelay)
		defer tick.Stop()
		flush := func() {
			if pending == 0 {
				return
			}
			// A group cursor moves to the highest seq acked, so one ref
			// acknowledges the whole batch.
			_ = dev.c.Ack(ctx, []*wire.AckRef{{GroupId: group, Seq: top}}, false)
			pending = 0
		}
		for {
			var ev *wire.Event
			var ok bool
			select {
			case ev, ok = <-events:
			case <-tick.C:
				flush()
				continue
			}
			if !ok {
				return
			}
			d := ev.GetDelivery()
			if d == nil || len(d.GetGroupId()) == 0 {
				continue
			}
			group, top = d.GetGroupId(), max(top, d.GetSeq())
			pending++
			id := d.GetMessageId()
			if d.GetKind() == wire.MessageKind_MESSAGE_KIND_APPLICATION && len(id) == 16 &&
				binary.BigEndian.Uint32(id[0:]) != self {
				at := t.now()
				if t.inWindow(at) {
					t.delivered.Add(1)
					sentAt := time.Duration(binary.BigEndian.Uint64(id[4:]))
					t.hist.Record(at - sentAt)
				}
			}
			if pending >= ackBatch {
				flush()
			}
		}
	}()
}

// run lets the senders work for warmup+duration, then stops them, waits
// briefly for the last pushes and closes every connection.
func (t *traffic) run(ctx context.Context, devs []*device, startSenders func(ctx context.Context, wg *sync.WaitGroup)) error {
	if t.ownProcess {
		defer debug.SetGCPercent(debug.SetGCPercent(loadGenGOGC))
	}
	sctx, stop := context.WithCancel(ctx)
	var swg, rwg sync.WaitGroup
	for i, d := range devs {
		t.receiver(&rwg, d, uint32(i))
	}
	startSenders(sctx, &swg)
	if len(t.tokens) > 0 {
		swg.Add(1)
		go func() {
			defer swg.Done()
			t.pace(sctx)
		}()
	}
	if sleep(ctx, time.Until(t.start.Add(t.from))) == nil {
		s0, _ := t.serverCPU(ctx)
		c0, _ := selfCPU()
		if sleep(ctx, time.Until(t.start.Add(t.until))) == nil {
			s1, err1 := t.serverCPU(ctx)
			c1, err2 := selfCPU()
			if err1 == nil && err2 == nil {
				t.cpuServer, t.cpuSelf = s1-s0, c1-c0
			}
		}
	}
	stop()
	swg.Wait()
	time.Sleep(200 * time.Millisecond)
	closeDevices(devs)
	rwg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.sent.Load() == 0 && t.firstErr != nil {
		return errors.Join(errors.New("bench: no message was sent"), t.firstErr)
	}
	return nil
}

// fill sets the traffic part of a result.
func (t *traffic) fill(r *Result) {
	secs := (t.until - t.from).Seconds()
	r.Sent = t.sent.Load()
	r.Delivered = t.delivered.Load()
	r.SendRate = float64(r.Sent) / secs
	r.DeliveryRate = float64(r.Delivered) / secs
	r.Errors = t.errs.Load()
	r.Behind = t.behind.Load()
	if t.firstErr != nil {
		r.FirstError = t.firstErr.Error()
	}
	if r.Sent > 0 && t.cpuServer > 0 {
		r.CPU = &CPUUse{
			ServerCores:    t.cpuServer.Seconds() / secs,
			ServerPerMsgUs: float64(t.cpuServer.Microseconds()) / float64(r.Sent),
			ClientCores:    t.cpuSelf.Seconds() / secs,
			ClientPerMsgUs: float64(t.cpuSelf.Microseconds()) / float64(r.Sent),
			SameProcess:    r.Target == "in-process",
		}
	}
	r.Latency = t.hist.summary()
	r.AckLatency = t.ackHist.summary()
}
