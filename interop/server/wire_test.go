package server

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls"
)

func TestVarintMinimal(t *testing.T) {
	for _, n := range []int{0, 63, 64, 16383, 16384, 1 << 29} {
		var b cryptobyte.Builder
		addVarint(&b, n)
		s := cryptobyte.String(b.BytesOrPanic())
		got, ok := readVarint(&s)
		if !ok || got != n || !s.Empty() {
			t.Fatalf("varint %d: got %d ok=%v", n, got, ok)
		}
	}
	for _, bad := range [][]byte{{0x40, 0x01}, {0x80, 0x00, 0x00, 0x01}, {0xc0}, {0x40}} {
		s := cryptobyte.String(bad)
		if _, ok := readVarint(&s); ok {
			t.Fatalf("non-minimal or invalid varint %x accepted", bad)
		}
	}
}

func TestExternalSenderRoundTrip(t *testing.T) {
	e := &externalSender{signatureKey: bytes.Repeat([]byte{7}, 32), identity: []byte("eve")}
	enc := marshalExternalSender(e)
	got, err := parseExternalSender(enc)
	if err != nil || !bytes.Equal(got.signatureKey, e.signatureKey) || !bytes.Equal(got.identity, e.identity) {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	if _, err := parseExternalSender(append(enc, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	list, err := parseExternalSenders(marshalExternalSenders([]externalSender{*e, *e}))
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v, %d senders", err, len(list))
	}
	if l, err := parseExternalSenders([]byte{0}); err != nil || len(l) != 0 {
		t.Fatalf("empty list: %v %v", l, err)
	}
}

func FuzzWire(f *testing.F) {
	f.Add([]byte{0, 0, 0})
	f.Add(marshalExternalSender(&externalSender{signatureKey: []byte{1, 2}, identity: []byte("x")}))
	f.Add([]byte{0, 1, 0, 4, 0, 1, 0, 1, 1, 'g', 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if e, err := parseExternalSender(data); err == nil {
			if !bytes.Equal(marshalExternalSender(e), data) {
				t.Fatal("external sender does not re-encode to its input")
			}
		}
		parseExternalSenders(data)
		parseGroupInfoContext(data)
		leafIdentities(data)
	})
}

// TestReadRealGroup reads a GroupInfo and a ratchet tree made by package
// mls: ids, epoch, suite and the identities of the leaves.
func TestReadRealGroup(t *testing.T) {
	for _, cs := range supported {
		cfg := &mls.Config{Suite: cs}
		signer, err := mls.GenerateSigner(cfg)
		if err != nil {
			t.Fatal(err)
		}
		g, err := mls.Create(cfg, mls.GroupID("g"), mls.Credential{Identity: []byte("alice")}, signer, &mls.GroupOptions{
			ExternalSenders: []mls.ExternalSender{{SignatureKey: signer.PublicKey(), Credential: mls.Credential{Identity: []byte("ds")}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		bobSigner, _ := mls.GenerateSigner(cfg)
		bob, err := mls.NewKeyPackage(cfg, mls.Credential{Identity: []byte("bob")}, bobSigner)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Commit(&mls.CommitOptions{Add: []*mls.KeyPackage{bob.KeyPackage}}); err != nil {
			t.Fatal(err)
		}
		if err := g.MergePendingCommit(); err != nil {
			t.Fatal(err)
		}
		gi, err := g.GroupInfo(true, true)
		if err != nil {
			t.Fatal(err)
		}
		head, err := parseGroupInfoContext(gi)
		if err != nil {
			t.Fatal(err)
		}
		if string(head.groupID) != "g" || head.epoch != 1 || head.cipherSuite != uint16(cs) {
			t.Fatalf("suite %d: read id %q epoch %d suite %d", cs, head.groupID, head.epoch, head.cipherSuite)
		}
		data, ok := findExtension(head.extensions, extExternalSenders)
		if !ok {
			t.Fatal("no external_senders extension read")
		}
		senders, err := parseExternalSenders(data)
		if err != nil || len(senders) != 1 || string(senders[0].identity) != "ds" || !bytes.Equal(senders[0].signatureKey, signer.PublicKey()) {
			t.Fatalf("external senders %+v, %v", senders, err)
		}
		inline, ok := findExtension(head.infoExtensions, extRatchetTree)
		if !ok {
			t.Fatal("no inline ratchet tree read")
		}
		tree, err := g.RatchetTree()
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range [][]byte{inline, tree} {
			ids, err := leafIdentities(tr)
			if err != nil || len(ids) != 2 || string(ids[0]) != "alice" || string(ids[1]) != "bob" {
				t.Fatalf("suite %d: leaves %q, %v", cs, ids, err)
			}
		}
	}
}
