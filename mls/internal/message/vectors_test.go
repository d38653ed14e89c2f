package message

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/vectors"
)

func TestDeserializationVectors(t *testing.T) {
	var cases []struct {
		Header vectors.Hex `json:"vlbytes_header"`
		Length uint64      `json:"length"`
	}
	vectors.Load(t, "deserialization.json", &cases)
	var c vectors.Counter
	c.Report(t, "deserialization.json")
	for i, tc := range cases {
		var n uint64
		if err := codec.Unmarshal(tc.Header, "varint", func(s *cryptobyte.String) bool { return codec.ReadVarint(s, &n) }); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if n != tc.Length {
			t.Fatalf("case %d: decoded %d, want %d", i, n, tc.Length)
		}
		again, err := codec.Marshal(func(b *cryptobyte.Builder) { codec.AddVarint(b, n) })
		if err != nil || !bytes.Equal(again, tc.Header) {
			t.Fatalf("case %d: re-encoded %x, want %x (%v)", i, again, tc.Header, err)
		}
		c.Ran++
	}
}

// messagesCase is one case of messages.json.
type messagesCase struct {
	MLSWelcome                     vectors.Hex `json:"mls_welcome"`
	MLSGroupInfo                   vectors.Hex `json:"mls_group_info"`
	MLSKeyPackage                  vectors.Hex `json:"mls_key_package"`
	RatchetTree                    vectors.Hex `json:"ratchet_tree"`
	GroupSecrets                   vectors.Hex `json:"group_secrets"`
	AddProposal                    vectors.Hex `json:"add_proposal"`
	UpdateProposal                 vectors.Hex `json:"update_proposal"`
	RemoveProposal                 vectors.Hex `json:"remove_proposal"`
	PreSharedKeyProposal           vectors.Hex `json:"pre_shared_key_proposal"`
	ReInitProposal                 vectors.Hex `json:"re_init_proposal"`
	ExternalInitProposal           vectors.Hex `json:"external_init_proposal"`
	GroupContextExtensionsProposal vectors.Hex `json:"group_context_extensions_proposal"`
	Commit                         vectors.Hex `json:"commit"`
	PublicMessageApplication       vectors.Hex `json:"public_message_application"`
	PublicMessageProposal          vectors.Hex `json:"public_message_proposal"`
	PublicMessageCommit            vectors.Hex `json:"public_message_commit"`
	PrivateMessage                 vectors.Hex `json:"private_message"`
}

func TestMessagesVectors(t *testing.T) {
	var cases []messagesCase
	vectors.Load(t, "messages.json", &cases)
	var c vectors.Counter
	c.Report(t, "messages.json")
	structs := 0
	for i, tc := range cases {
		check := func(name string, data []byte, v codecValue) {
			t.Helper()
			if err := checkEncoding(data, v); err != nil {
				t.Fatalf("case %d, %s: %v", i, name, err)
			}
			structs++
		}
		wire := func(name string, data []byte, wf WireFormat, ct ContentType) {
			t.Helper()
			var m MLSMessage
			check(name, data, &m)
			if m.WireFormat != wf {
				t.Fatalf("case %d, %s: wire format %d, want %d", i, name, m.WireFormat, wf)
			}
			if ct != 0 && m.PublicMessage.Content.ContentType != ct {
				t.Fatalf("case %d, %s: content type %d, want %d", i, name, m.PublicMessage.Content.ContentType, ct)
			}
		}
		wire("mls_welcome", tc.MLSWelcome, WireFormatWelcome, 0)
		wire("mls_group_info", tc.MLSGroupInfo, WireFormatGroupInfo, 0)
		wire("mls_key_package", tc.MLSKeyPackage, WireFormatKeyPackage, 0)
		wire("public_message_application", tc.PublicMessageApplication, WireFormatPublicMessage, ContentApplication)
		wire("public_message_proposal", tc.PublicMessageProposal, WireFormatPublicMessage, ContentProposal)
		wire("public_message_commit", tc.PublicMessageCommit, WireFormatPublicMessage, ContentCommit)
		wire("private_message", tc.PrivateMessage, WireFormatPrivateMessage, 0)
		check("ratchet_tree", tc.RatchetTree, new(RatchetTree))
		check("group_secrets", tc.GroupSecrets, new(GroupSecrets))
		check("add_proposal", tc.AddProposal, new(Add))
		check("update_proposal", tc.UpdateProposal, new(Update))
		check("remove_proposal", tc.RemoveProposal, new(Remove))
		check("pre_shared_key_proposal", tc.PreSharedKeyProposal, new(PreSharedKey))
		check("re_init_proposal", tc.ReInitProposal, new(ReInit))
		check("external_init_proposal", tc.ExternalInitProposal, new(ExternalInit))
		check("group_context_extensions_proposal", tc.GroupContextExtensionsProposal, new(GroupContextExtensions))
		check("commit", tc.Commit, new(Commit))
		c.Ran++
	}
	t.Logf("messages.json: %d structures decoded and re-encoded byte for byte", structs)
}

func TestWelcomeVectors(t *testing.T) {
	var cases []struct {
		CipherSuite suite.ID    `json:"cipher_suite"`
		InitPriv    vectors.Hex `json:"init_priv"`
		SignerPub   vectors.Hex `json:"signer_pub"`
		KeyPackage  vectors.Hex `json:"key_package"`
		Welcome     vectors.Hex `json:"welcome"`
	}
	vectors.Load(t, "welcome.json", &cases)
	var c vectors.Counter
	c.Report(t, "welcome.json")
	for i, tc := range cases {
		cs, err := suite.Get(tc.CipherSuite)
		if err != nil {
			c.Unsupported++
			continue
		}
		kpMsg, err := DecodeMLSMessage(tc.KeyPackage)
		if err != nil || kpMsg.KeyPackage == nil {
			t.Fatalf("case %d: key package: %v", i, err)
		}
		kp := kpMsg.KeyPackage
		if err := kp.Validate(cs, LeafNodeCheck{}); err != nil {
			t.Fatalf("case %d: key package invalid: %v", i, err)
		}
		ref, err := kp.Ref(cs)
		if err != nil {
			t.Fatal(err)
		}
		wMsg, err := DecodeMLSMessage(tc.Welcome)
		if err != nil || wMsg.Welcome == nil {
			t.Fatalf("case %d: welcome: %v", i, err)
		}
		w := wMsg.Welcome
		if w.CipherSuite != tc.CipherSuite {
			t.Fatalf("case %d: welcome suite %d", i, w.CipherSuite)
		}
		gs, err := w.OpenGroupSecrets(cs, ref, tc.InitPriv)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if len(gs.PSKs) != 0 {
			t.Fatalf("case %d: unexpected PSKs", i)
		}
		// RFC 9420, Section 8, with no PSKs: psk_secret is Nh zero bytes.
		member := cs.Extract(gs.JoinerSecret, make([]byte, cs.HashSize()))
		welcomeSecret, err := cs.DeriveSecret(member, "welcome")
		if err != nil {
			t.Fatal(err)
		}
		gi, err := w.OpenGroupInfo(cs, welcomeSecret)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if err := gi.Verify(cs, SignaturePublicKey(tc.SignerPub)); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		// The confirmation tag binds the epoch secret to the transcript.
		ctx, err := gi.GroupContext.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		epochSecret, err := cs.ExpandWithLabel(member, "epoch", ctx, cs.HashSize())
		if err != nil {
			t.Fatal(err)
		}
		confirmKey, err := cs.DeriveSecret(epochSecret, "confirm")
		if err != nil {
			t.Fatal(err)
		}
		if !cs.VerifyMAC(confirmKey, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag) {
			t.Fatalf("case %d: confirmation tag mismatch", i)
		}
		// A tampered group info must not verify.
		gi.Signer++
		if err := gi.Verify(cs, SignaturePublicKey(tc.SignerPub)); err == nil {
			t.Fatalf("case %d: tampered group info verified", i)
		}
		// The same secrets under another key package reference are absent.
		if _, err := w.OpenGroupSecrets(cs, KeyPackageRef("nope"), tc.InitPriv); err == nil {
			t.Fatalf("case %d: unknown reference opened", i)
		}
		c.Ran++
	}
}
