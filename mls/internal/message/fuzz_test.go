package message

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/vectors"
)

// vectorSeeds returns the messages.json cases when the vectors are
// available, so fuzzing starts from real implementations' encodings. A
// missing file only means fewer seeds.
func vectorSeeds(f *testing.F) []messagesCase {
	dir, err := vectors.Dir()
	if err != nil {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, "messages.json"))
	if err != nil {
		return nil
	}
	var cases []messagesCase
	if err := json.Unmarshal(data, &cases); err != nil {
		f.Fatalf("failed to decode messages.json: %v", err)
	}
	if len(cases) > 20 {
		cases = cases[:20]
	}
	return cases
}

// mustBytes encodes a sample for seeding.
func mustBytes(f *testing.F, v interface{ Bytes() ([]byte, error) }) []byte {
	b, err := v.Bytes()
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// reencode fails the fuzz run unless a successfully decoded value encodes
// back to exactly its input.
func reencode(t *testing.T, data []byte, b []byte, err error) {
	if err != nil {
		t.Fatalf("decoded value does not encode: %v", err)
	}
	if !bytes.Equal(b, data) {
		t.Fatalf("re-encoding differs:\n got %x\nwant %x", b, data)
	}
}

func FuzzMLSMessage(f *testing.F) {
	s := newSamples(f)
	for _, m := range s.messages() {
		f.Add(mustBytes(f, m))
	}
	for _, c := range vectorSeeds(f) {
		for _, d := range [][]byte{c.MLSWelcome, c.MLSGroupInfo, c.MLSKeyPackage, c.PublicMessageApplication,
			c.PublicMessageProposal, c.PublicMessageCommit, c.PrivateMessage} {
			f.Add([]byte(d))
		}
	}
	cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMLSMessage(data)
		if err != nil {
			return
		}
		b, err := m.Bytes()
		reencode(t, data, b, err)
		// Everything derived from a decoded message must work without
		// panicking.
		switch {
		case m.KeyPackage != nil:
			_, _ = m.KeyPackage.Ref(cs)
			_ = m.KeyPackage.Validate(cs, LeafNodeCheck{})
		case m.PublicMessage != nil:
			ac := m.PublicMessage.AuthenticatedContent()
			if _, err := ac.Bytes(); err != nil {
				t.Fatal(err)
			}
			_, _ = ac.ProposalRef(cs)
			tbs := &FramedContentTBS{WireFormat: m.WireFormat, Content: &ac.Content, Context: &s.groupInfo.GroupContext}
			if _, err := tbs.Bytes(); err != nil {
				t.Fatal(err)
			}
		case m.GroupInfo != nil:
			_ = m.GroupInfo.Verify(cs, s.signer.Public())
		case m.Welcome != nil:
			_, _ = m.Welcome.OpenGroupSecrets(cs, nil, s.initPriv)
		}
	})
}

func FuzzKeyPackage(f *testing.F) {
	s := newSamples(f)
	f.Add(mustBytes(f, s.keyPackage))
	for _, c := range vectorSeeds(f) {
		if len(c.MLSKeyPackage) > 4 {
			f.Add([]byte(c.MLSKeyPackage[4:]))
		}
	}
	cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := DecodeKeyPackage(data)
		if err != nil {
			return
		}
		b, err := k.Bytes()
		reencode(t, data, b, err)
		_ = k.Validate(cs, LeafNodeCheck{})
	})
}

func FuzzWelcome(f *testing.F) {
	s := newSamples(f)
	f.Add(mustBytes(f, s.welcome))
	for _, c := range vectorSeeds(f) {
		if len(c.MLSWelcome) > 4 {
			f.Add([]byte(c.MLSWelcome[4:]))
		}
	}
	cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	ref, err := s.keyPackage.Ref(cs)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := DecodeWelcome(data)
		if err != nil {
			return
		}
		b, err := w.Bytes()
		reencode(t, data, b, err)
		_, _ = w.OpenGroupSecrets(cs, ref, s.initPriv)
		_, _ = w.OpenGroupInfo(cs, make([]byte, 32))
	})
}

func FuzzGroupInfo(f *testing.F) {
	s := newSamples(f)
	f.Add(mustBytes(f, s.groupInfo))
	for _, c := range vectorSeeds(f) {
		if len(c.MLSGroupInfo) > 4 {
			f.Add([]byte(c.MLSGroupInfo[4:]))
		}
	}
	cs, _ := suite.Get(suite.X25519AES128GCMSHA256Ed25519)
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := DecodeGroupInfo(data)
		if err != nil {
			return
		}
		b, err := g.Bytes()
		reencode(t, data, b, err)
		_ = g.Verify(cs, s.signer.Public())
		var rt RatchetTree
		_, _ = DecodeExtension(g.Extensions, ExtensionRatchetTree, &rt)
		var rc RequiredCapabilities
		_, _ = DecodeExtension(g.GroupContext.Extensions, ExtensionRequiredCapabilities, &rc)
		var es ExternalSenders
		_, _ = DecodeExtension(g.GroupContext.Extensions, ExtensionExternalSenders, &es)
	})
}

func FuzzRatchetTree(f *testing.F) {
	s := newSamples(f)
	f.Add(mustBytes(f, s.tree))
	for _, c := range vectorSeeds(f) {
		f.Add([]byte(c.RatchetTree))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := DecodeRatchetTree(data)
		if err != nil {
			return
		}
		b, err := tr.Bytes()
		reencode(t, data, b, err)
		for i, n := range tr {
			if n != nil && n.Leaf != nil {
				if _, err := n.Leaf.ToBeSigned(GroupID("g"), 0); err != nil {
					t.Fatalf("node %d: %v", i, err)
				}
			}
		}
	})
}

func FuzzGroupSecrets(f *testing.F) {
	s := newSamples(f)
	f.Add(mustBytes(f, s.secrets))
	for _, c := range vectorSeeds(f) {
		f.Add([]byte(c.GroupSecrets))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := DecodeGroupSecrets(data)
		if err != nil {
			return
		}
		b, err := g.Bytes()
		reencode(t, data, b, err)
	})
}

func FuzzPrivateMessageContent(f *testing.F) {
	s := newSamples(f)
	for _, p := range []*PrivateMessageContent{
		{ContentType: ContentApplication, ApplicationData: []byte("x"), Auth: FramedContentAuthData{Signature: []byte{1}}, Padding: 4},
		{ContentType: ContentProposal, Proposal: s.proposals[1], Auth: FramedContentAuthData{Signature: []byte{1}}},
		{ContentType: ContentCommit, Commit: s.commit, Auth: FramedContentAuthData{Signature: []byte{1}, ConfirmationTag: []byte{2}}},
	} {
		f.Add(uint8(p.ContentType), mustBytes(f, p))
	}
	f.Fuzz(func(t *testing.T, ct uint8, data []byte) {
		p, err := DecodePrivateMessageContent(data, ContentType(ct))
		if err != nil {
			return
		}
		b, err := p.Bytes()
		reencode(t, data, b, err)
	})
}
