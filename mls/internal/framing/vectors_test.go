package framing

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/keyschedule"
	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
	"github.com/parley-im/parley/mls/internal/vectors"
)

type hex = vectors.Hex

type protectionCase struct {
	CipherSuite             suite.ID `json:"cipher_suite"`
	GroupID                 hex      `json:"group_id"`
	Epoch                   uint64   `json:"epoch"`
	TreeHash                hex      `json:"tree_hash"`
	ConfirmedTranscriptHash hex      `json:"confirmed_transcript_hash"`
	SignaturePriv           hex      `json:"signature_priv"`
	SignaturePub            hex      `json:"signature_pub"`
	EncryptionSecret        hex      `json:"encryption_secret"`
	SenderDataSecret        hex      `json:"sender_data_secret"`
	MembershipKey           hex      `json:"membership_key"`
	Proposal                hex      `json:"proposal"`
	ProposalPub             hex      `json:"proposal_pub"`
	ProposalPriv            hex      `json:"proposal_priv"`
	Commit                  hex      `json:"commit"`
	CommitPub               hex      `json:"commit_pub"`
	CommitPriv              hex      `json:"commit_priv"`
	Application             hex      `json:"application"`
	ApplicationPriv         hex      `json:"application_priv"`
}

// epochFor builds the framing epoch of a message-protection case with a
// fresh secret tree of two members.
func epochFor(t testing.TB, s *suite.Suite, tc *protectionCase) *Epoch {
	t.Helper()
	tree, err := keyschedule.NewSecretTree(s, tc.EncryptionSecret, 2, keyschedule.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gc := &message.GroupContext{
		Version: message.MLS10, CipherSuite: tc.CipherSuite, GroupID: message.GroupID(tc.GroupID),
		Epoch: tc.Epoch, TreeHash: tc.TreeHash, ConfirmedTranscriptHash: tc.ConfirmedTranscriptHash,
	}
	e, err := NewEpoch(s, gc, Keys{MembershipKey: tc.MembershipKey, SenderDataSecret: tc.SenderDataSecret, Tree: tree})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func decodeMLSMessage(t *testing.T, data []byte) *message.MLSMessage {
	t.Helper()
	m, err := message.DecodeMLSMessage(data)
	if err != nil {
		t.Fatalf("failed to decode MLSMessage: %v", err)
	}
	return m
}

// sameContent reports whether ac carries the raw proposal, commit or
// application data.
func sameContent(t *testing.T, ac *message.AuthenticatedContent, ct message.ContentType, raw []byte) bool {
	t.Helper()
	var got []byte
	var err error
	switch ct {
	case message.ContentApplication:
		got = ac.Content.ApplicationData
	case message.ContentProposal:
		got, err = codec.Marshal(ac.Content.Proposal.Encode)
	case message.ContentCommit:
		got, err = ac.Content.Commit.Bytes()
	}
	if err != nil {
		t.Fatal(err)
	}
	return ac.Content.ContentType == ct && bytes.Equal(got, raw)
}

func TestMessageProtectionVectors(t *testing.T) {
	var cases []protectionCase
	vectors.Load(t, "message-protection.json", &cases)
	var c vectors.Counter
	c.Report(t, "message-protection.json")
	for _, tc := range cases {
		s, err := suite.Get(tc.CipherSuite)
		if err != nil {
			c.Unsupported++
			continue
		}
		c.Ran++
		signer, err := s.NewSigner(tc.SignaturePriv)
		if err != nil {
			t.Fatal(err)
		}
		pub := message.SignaturePublicKey(tc.SignaturePub)
		sigKey := func(leaf treemath.LeafIndex) (message.SignaturePublicKey, error) {
			if leaf != 1 {
				return nil, fmt.Errorf("leaf %d is blank", leaf)
			}
			return pub, nil
		}
		for _, kind := range []struct {
			name      string
			ct        message.ContentType
			raw       []byte
			pub, priv []byte
		}{
			{"proposal", message.ContentProposal, tc.Proposal, tc.ProposalPub, tc.ProposalPriv},
			{"commit", message.ContentCommit, tc.Commit, tc.CommitPub, tc.CommitPriv},
			{"application", message.ContentApplication, tc.Application, nil, tc.ApplicationPriv},
		} {
			t.Run(fmt.Sprintf("suite%d/%s", tc.CipherSuite, kind.name), func(t *testing.T) {
				e := epochFor(t, s, &tc)
				if kind.pub != nil {
					m := decodeMLSMessage(t, kind.pub)
					if m.PublicMessage == nil {
						t.Fatal("not a PublicMessage")
					}
					ac, err := e.UnprotectPublic(m.PublicMessage, pub)
					if err != nil {
						t.Fatalf("UnprotectPublic: %v", err)
					}
					if !sameContent(t, ac, kind.ct, kind.raw) {
						t.Fatal("PublicMessage content differs from the raw value")
					}
				}
				content := rawContent(t, &tc, kind.ct, kind.raw)

				// Protect as a PublicMessage and unprotect again.
				ac, err := e.Sign(signer, message.WireFormatPublicMessage, content)
				if err != nil {
					t.Fatal(err)
				}
				if kind.ct == message.ContentCommit {
					ac.Auth.ConfirmationTag = ConfirmationTag(s, tc.MembershipKey, tc.ConfirmedTranscriptHash)
				}
				pm, err := e.ProtectPublic(ac)
				if kind.ct == message.ContentApplication {
					if !errors.Is(err, ErrInvalidMessage) {
						t.Fatalf("application data as PublicMessage: %v, want ErrInvalidMessage", err)
					}
				} else {
					if err != nil {
						t.Fatal(err)
					}
					data, err := message.NewPublicMessage(pm).Bytes()
					if err != nil {
						t.Fatal(err)
					}
					back, err := e.UnprotectPublic(decodeMLSMessage(t, data).PublicMessage, pub)
					if err != nil {
						t.Fatalf("UnprotectPublic of our message: %v", err)
					}
					if !sameContent(t, back, kind.ct, kind.raw) {
						t.Fatal("round trip changed the content")
					}
				}

				// The vector's PrivateMessage opens with a fresh tree.
				m := decodeMLSMessage(t, kind.priv)
				if m.PrivateMessage == nil {
					t.Fatal("not a PrivateMessage")
				}
				got, err := e.UnprotectPrivate(m.PrivateMessage, sigKey)
				if err != nil {
					t.Fatalf("UnprotectPrivate: %v", err)
				}
				if !sameContent(t, got, kind.ct, kind.raw) {
					t.Fatal("PrivateMessage content differs from the raw value")
				}
				if _, err := e.UnprotectPrivate(m.PrivateMessage, sigKey); !errors.Is(err, keyschedule.ErrGenerationConsumed) {
					t.Fatalf("replayed PrivateMessage: %v, want ErrGenerationConsumed", err)
				}

				// Protect as a PrivateMessage with a sender tree and open it
				// with a receiver tree.
				sender, receiver := epochFor(t, s, &tc), epochFor(t, s, &tc)
				ac, err = sender.Sign(signer, message.WireFormatPrivateMessage, content)
				if err != nil {
					t.Fatal(err)
				}
				if kind.ct == message.ContentCommit {
					ac.Auth.ConfirmationTag = ConfirmationTag(s, tc.MembershipKey, tc.ConfirmedTranscriptHash)
				}
				priv, err := sender.ProtectPrivate(rand.Reader, ac)
				if err != nil {
					t.Fatal(err)
				}
				data, err := message.NewPrivateMessage(priv).Bytes()
				if err != nil {
					t.Fatal(err)
				}
				got, err = receiver.UnprotectPrivate(decodeMLSMessage(t, data).PrivateMessage, sigKey)
				if err != nil {
					t.Fatalf("UnprotectPrivate of our message: %v", err)
				}
				if !sameContent(t, got, kind.ct, kind.raw) {
					t.Fatal("round trip changed the content")
				}
			})
		}
	}
}

// rawContent builds the FramedContent the vector's messages carry: sender
// leaf 1, no authenticated data.
func rawContent(t *testing.T, tc *protectionCase, ct message.ContentType, raw []byte) *message.FramedContent {
	t.Helper()
	c := &message.FramedContent{
		GroupID: message.GroupID(tc.GroupID), Epoch: tc.Epoch,
		Sender:      message.Sender{Type: message.SenderMember, LeafIndex: 1},
		ContentType: ct,
	}
	switch ct {
	case message.ContentApplication:
		c.ApplicationData = raw
	case message.ContentProposal:
		c.Proposal = new(message.Proposal)
		if err := codec.Unmarshal(raw, "proposal", c.Proposal.Decode); err != nil {
			t.Fatal(err)
		}
	case message.ContentCommit:
		c.Commit = new(message.Commit)
		if err := codec.Unmarshal(raw, "commit", c.Commit.Decode); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestTranscriptHashVectors(t *testing.T) {
	var cases []struct {
		CipherSuite                  suite.ID `json:"cipher_suite"`
		ConfirmationKey              hex      `json:"confirmation_key"`
		AuthenticatedContent         hex      `json:"authenticated_content"`
		InterimTranscriptHashBefore  hex      `json:"interim_transcript_hash_before"`
		ConfirmedTranscriptHashAfter hex      `json:"confirmed_transcript_hash_after"`
		InterimTranscriptHashAfter   hex      `json:"interim_transcript_hash_after"`
	}
	vectors.Load(t, "transcript-hashes.json", &cases)
	var c vectors.Counter
	c.Report(t, "transcript-hashes.json")
	for _, tc := range cases {
		s, err := suite.Get(tc.CipherSuite)
		if err != nil {
			c.Unsupported++
			continue
		}
		c.Ran++
		var ac message.AuthenticatedContent
		if err := codec.Unmarshal(tc.AuthenticatedContent, "authenticated content", ac.Decode); err != nil {
			t.Fatal(err)
		}
		if ac.Content.ContentType != message.ContentCommit {
			t.Fatalf("suite %d: content type %d, want commit", tc.CipherSuite, ac.Content.ContentType)
		}
		if err := VerifyConfirmationTag(s, tc.ConfirmationKey, tc.ConfirmedTranscriptHashAfter, ac.Auth.ConfirmationTag); err != nil {
			t.Errorf("suite %d: %v", tc.CipherSuite, err)
		}
		confirmed, err := ConfirmedTranscriptHash(s, tc.InterimTranscriptHashBefore, &ac)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(confirmed, tc.ConfirmedTranscriptHashAfter) {
			t.Errorf("suite %d: confirmed transcript hash %x, want %x", tc.CipherSuite, confirmed, []byte(tc.ConfirmedTranscriptHashAfter))
		}
		interim, err := InterimTranscriptHash(s, confirmed, ac.Auth.ConfirmationTag)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(interim, tc.InterimTranscriptHashAfter) {
			t.Errorf("suite %d: interim transcript hash %x, want %x", tc.CipherSuite, interim, []byte(tc.InterimTranscriptHashAfter))
		}
		bad := append([]byte(nil), ac.Auth.ConfirmationTag...)
		bad[0] ^= 1
		if err := VerifyConfirmationTag(s, tc.ConfirmationKey, tc.ConfirmedTranscriptHashAfter, bad); !errors.Is(err, ErrConfirmationTag) {
			t.Errorf("altered confirmation tag: %v", err)
		}
	}
}
