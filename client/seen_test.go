package client

import (
	"errors"
	"slices"
	"testing"

	"github.com/parley-im/parley/client/store"
)

// TestUnseen: each reader keeps its own place in the change feed, across
// restarts, and a place never moves backwards.
func TestUnseen(t *testing.T) {
	h := newHarness(t)
	a := h.account("alice")
	bob, dir := h.offline("bob")
	chat, err := a.CreateGroup(h.ctx, "seen", []string{"bob@" + a.host})
	if err != nil {
		t.Fatal(err)
	}
	unseen := func(reader string) ([]string, ChangeSeq) {
		t.Helper()
		ms, err := bob.Unseen(h.ctx, reader, store.MaxPageSize)
		if err != nil {
			t.Fatal(err)
		}
		var texts []string
		var last ChangeSeq
		for _, m := range ms {
			last = m.Change
			if m.Kind == store.KindText && m.Chat == chat {
				texts = append(texts, string(m.Body))
			}
		}
		return texts, last
	}
	h.send(a, chat, "one")
	h.send(a, chat, "two")
	h.flushed(a)
	h.sync(bob)
	got, last := unseen("recv")
	if !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("unseen %q", got)
	}
	if err := bob.MarkSeen(h.ctx, "recv", last); err != nil {
		t.Fatal(err)
	}
	if got, _ := unseen("recv"); len(got) != 0 {
		t.Fatalf("unseen after marking: %q", got)
	}
	if got, _ := unseen("tui"); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("another reader sees %q", got)
	}

	h.send(a, chat, "three")
	h.flushed(a)
	bob = h.reopen(bob, dir)
	h.sync(bob)
	got, last = unseen("recv")
	if !slices.Equal(got, []string{"three"}) {
		t.Fatalf("unseen after restart %q", got)
	}
	if err := bob.MarkSeen(h.ctx, "recv", last); err != nil {
		t.Fatal(err)
	}
	if err := bob.MarkSeen(h.ctx, "recv", 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := unseen("recv"); len(got) != 0 {
		t.Fatalf("the place moved backwards: %q", got)
	}
	for _, bad := range []string{"", "Recv", "a b", "0123456789012345678901234567890123"} {
		if _, err := bob.Unseen(h.ctx, bad, 10); !errors.Is(err, ErrBadReader) {
			t.Errorf("reader %q: %v", bad, err)
		}
	}
	h.noUndecryptable(a, bob)
}
