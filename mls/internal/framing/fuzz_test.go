package framing

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
)

// FuzzUnprotect feeds arbitrary MLSMessage bytes to a member: whatever
// arrives, unprotecting must not panic, and a rejected message must leave the
// secret tree as it was.
func FuzzUnprotect(f *testing.F) {
	g := newGroup(f, suite.X25519AES128GCMSHA256Ed25519, 2)
	sender := g.member(f, Keys{})
	for _, data := range [][]byte{nil, []byte("hello"), bytes.Repeat([]byte{0}, 40)} {
		pm := g.sendApp(f, sender, 0, data)
		raw, err := message.NewPrivateMessage(pm).Bytes()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	remove := &message.FramedContent{
		GroupID: g.gc.GroupID, Epoch: g.gc.Epoch,
		Sender:      message.Sender{Type: message.SenderMember, LeafIndex: 1},
		ContentType: message.ContentProposal,
		Proposal:    &message.Proposal{Type: message.ProposalRemove, Remove: &message.Remove{Removed: 0}},
	}
	ac, err := sender.Sign(g.signers[1], message.WireFormatPublicMessage, remove)
	if err != nil {
		f.Fatal(err)
	}
	pub, err := sender.ProtectPublic(ac)
	if err != nil {
		f.Fatal(err)
	}
	raw, err := message.NewPublicMessage(pub).Bytes()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	ac, err = sender.Sign(g.signers[1], message.WireFormatPrivateMessage, remove)
	if err != nil {
		f.Fatal(err)
	}
	priv, err := sender.ProtectPrivate(rand.Reader, ac)
	if err != nil {
		f.Fatal(err)
	}
	raw, err = message.NewPrivateMessage(priv).Bytes()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)

	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := message.DecodeMLSMessage(data)
		if err != nil {
			return
		}
		receiver := g.member(t, Keys{})
		before, err := receiver.tree.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case m.PrivateMessage != nil:
			if _, err := receiver.UnprotectPrivate(m.PrivateMessage, g.sigKey); err == nil {
				return
			}
		case m.PublicMessage != nil:
			key := g.signers[0].Public()
			if s := m.PublicMessage.Content.Sender; s.Type == message.SenderMember && s.LeafIndex == 1 {
				key = g.signers[1].Public()
			}
			_, _ = receiver.UnprotectPublic(m.PublicMessage, key)
		}
		after, err := receiver.tree.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Fatal("a rejected message changed the secret tree")
		}
	})
}
