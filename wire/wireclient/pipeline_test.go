package wireclient_test

import (
	"testing"
	"time"

	ts "github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/wire"
)

func sendFrame(group []byte, epoch uint64, id [16]byte) *wire.Frame {
	return &wire.Frame{Body: &wire.Frame_Request{Request: &wire.Request{Kind: &wire.Request_Send{Send: &wire.Send{
		GroupId: group, Epoch: epoch, MessageId: id[:], Data: []byte("opaque"),
	}}}}}
}

// TestPipeline sends batches of requests on one answer channel: every
// request gets its own id and exactly one answer, errors included, and the
// shared channel is closed once when the connection ends.
func TestPipeline(t *testing.T) {
	srv := ts.Start(t)
	ctx := ts.Context(t)
	a := srv.NewAccount(t)
	c := srv.Connect(t, a.Devices[0])
	group := []byte("pipelined")
	if err := c.CreateGroup(ctx, group); err != nil {
		t.Fatal(err)
	}
	const batches, per = 5, 20
	answers := make(chan *wire.Frame, batches*per+1)
	ids := map[uint64]bool{}
	for range batches {
		frames := make([]*wire.Frame, per)
		for i := range frames {
			frames[i] = sendFrame(group, 0, ts.MessageID())
		}
		if err := c.Pipeline(ctx, answers, frames...); err != nil {
			t.Fatal(err)
		}
		for _, f := range frames {
			if f.Id == 0 || ids[f.Id] {
				t.Fatalf("request id %d is zero or repeated", f.Id)
			}
			ids[f.Id] = true
		}
	}
	// One request the server refuses: its error comes on the same channel.
	bad := sendFrame([]byte("no-such-group"), 0, ts.MessageID())
	if err := c.Pipeline(ctx, answers, bad); err != nil {
		t.Fatal(err)
	}
	seqs := map[uint64]bool{}
	for range batches*per + 1 {
		f := <-answers
		if !ids[f.GetId()] && f.GetId() != bad.Id {
			t.Fatalf("answer for unknown id %d", f.GetId())
		}
		if f.GetId() == bad.Id {
			if ts.Code(f.GetError()) != wire.ErrorCode_NOT_FOUND {
				t.Fatalf("refused request answered %v, want NOT_FOUND", f)
			}
			continue
		}
		delete(ids, f.GetId())
		seq := f.GetResponse().GetSend().GetSeq()
		if seq == 0 || seqs[seq] {
			t.Fatalf("answer %v: seq zero or repeated", f)
		}
		seqs[seq] = true
	}
	if len(ids) != 0 {
		t.Fatalf("%d requests not answered", len(ids))
	}
	// Requests in flight when the connection ends: the channel is closed
	// once (closing it for each pending id would panic).
	const inFlight = 50
	frames := make([]*wire.Frame, inFlight)
	for i := range frames {
		frames[i] = sendFrame(group, 0, ts.MessageID())
	}
	if err := c.Pipeline(ctx, answers, frames...); err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	<-c.Done()
	got := 0 // answers that arrived before the close
	for closed := false; !closed; {
		select {
		case _, ok := <-answers:
			if ok {
				got++
			}
			closed = !ok
		case <-time.After(5 * time.Second):
			if got < inFlight {
				t.Fatalf("answer channel not closed after the connection ended (%d of %d answered)", got, inFlight)
			}
			t.Log("every request was answered before the close; the close path was not exercised")
			closed = true
		}
	}
	if err := c.Pipeline(ctx, answers, sendFrame(group, 0, ts.MessageID())); err == nil {
		t.Fatal("Pipeline on a closed connection succeeded")
	}
}
