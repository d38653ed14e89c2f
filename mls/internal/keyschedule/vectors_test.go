package keyschedule

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-im/parley/mls/internal/codec"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/treemath"
	"github.com/parley-im/parley/mls/internal/vectors"
)

type hex = vectors.Hex

func eq(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %x, want %x", what, got, want)
	}
}

// groupContext encodes a GroupContext with empty extensions, as the
// key-schedule vectors define it.
func groupContext(t *testing.T, id suite.ID, groupID []byte, epoch uint64, treeHash, cth []byte) []byte {
	t.Helper()
	b, err := codec.Marshal(func(b *cryptobyte.Builder) {
		b.AddUint16(1)
		b.AddUint16(uint16(id))
		codec.AddOpaque(b, groupID)
		b.AddUint64(epoch)
		codec.AddOpaque(b, treeHash)
		codec.AddOpaque(b, cth)
		codec.AddOpaque(b, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeyScheduleVectors(t *testing.T) {
	var cases []struct {
		CipherSuite       suite.ID `json:"cipher_suite"`
		GroupID           hex      `json:"group_id"`
		InitialInitSecret hex      `json:"initial_init_secret"`
		Epochs            []struct {
			TreeHash                hex `json:"tree_hash"`
			CommitSecret            hex `json:"commit_secret"`
			PSKSecret               hex `json:"psk_secret"`
			ConfirmedTranscriptHash hex `json:"confirmed_transcript_hash"`
			GroupContext            hex `json:"group_context"`
			JoinerSecret            hex `json:"joiner_secret"`
			WelcomeSecret           hex `json:"welcome_secret"`
			InitSecret              hex `json:"init_secret"`
			SenderDataSecret        hex `json:"sender_data_secret"`
			EncryptionSecret        hex `json:"encryption_secret"`
			ExporterSecret          hex `json:"exporter_secret"`
			EpochAuthenticator      hex `json:"epoch_authenticator"`
			ExternalSecret          hex `json:"external_secret"`
			ConfirmationKey         hex `json:"confirmation_key"`
			MembershipKey           hex `json:"membership_key"`
			ResumptionPSK           hex `json:"resumption_psk"`
			ExternalPub             hex `json:"external_pub"`
			Exporter                struct {
				Label   string `json:"label"`
				Context hex    `json:"context"`
				Length  int    `json:"length"`
				Secret  hex    `json:"secret"`
			} `json:"exporter"`
		} `json:"epochs"`
	}
	vectors.Load(t, "key-schedule.json", &cases)
	var c vectors.Counter
	c.Report(t, "key-schedule.json")
	for _, tc := range cases {
		s, err := suite.Get(tc.CipherSuite)
		if err != nil {
			c.Unsupported++
			continue
		}
		c.Ran++
		init := InitSecret(tc.InitialInitSecret)
		for i, ep := range tc.Epochs {
			gc := groupContext(t, tc.CipherSuite, tc.GroupID, uint64(i), ep.TreeHash, ep.ConfirmedTranscriptHash)
			eq(t, "group_context", gc, ep.GroupContext)
			joiner, e, err := NewEpoch(s, init, CommitSecret(ep.CommitSecret), PSKSecret(ep.PSKSecret), gc)
			if err != nil {
				t.Fatalf("suite %d epoch %d: %v", tc.CipherSuite, i, err)
			}
			eq(t, "joiner_secret", joiner, ep.JoinerSecret)
			welcome, err := WelcomeSecret(s, joiner, PSKSecret(ep.PSKSecret))
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "welcome_secret", welcome, ep.WelcomeSecret)
			// A joiner reaches the same secrets from joiner_secret alone.
			j, err := FromJoiner(s, JoinerSecret(ep.JoinerSecret), PSKSecret(ep.PSKSecret), gc)
			if err != nil {
				t.Fatal(err)
			}
			for _, got := range []*EpochSecrets{e, j} {
				eq(t, "init_secret", got.Init, ep.InitSecret)
				eq(t, "sender_data_secret", got.SenderData, ep.SenderDataSecret)
				eq(t, "encryption_secret", got.Encryption, ep.EncryptionSecret)
				eq(t, "exporter_secret", got.Exporter, ep.ExporterSecret)
				eq(t, "epoch_authenticator", got.EpochAuthenticator, ep.EpochAuthenticator)
				eq(t, "external_secret", got.External, ep.ExternalSecret)
				eq(t, "confirmation_key", got.Confirmation, ep.ConfirmationKey)
				eq(t, "membership_key", got.Membership, ep.MembershipKey)
				eq(t, "resumption_psk", got.Resumption, ep.ResumptionPSK)
			}
			_, pub, err := e.ExternalKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "external_pub", pub, ep.ExternalPub)
			exported, err := e.Export(ep.Exporter.Label, ep.Exporter.Context, ep.Exporter.Length)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "exporter.secret", exported, ep.Exporter.Secret)

			// Persisted secrets come back identical.
			data, err := e.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			back, err := UnmarshalEpochSecrets(data)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "unmarshalled membership_key", back.Membership, ep.MembershipKey)
			eq(t, "unmarshalled init_secret", back.Init, ep.InitSecret)
			init = e.Init
		}
	}
}

func TestPSKSecretVectors(t *testing.T) {
	var cases []struct {
		CipherSuite suite.ID `json:"cipher_suite"`
		PSKs        []struct {
			PSKID    hex `json:"psk_id"`
			PSK      hex `json:"psk"`
			PSKNonce hex `json:"psk_nonce"`
		} `json:"psks"`
		PSKSecret hex `json:"psk_secret"`
	}
	vectors.Load(t, "psk_secret.json", &cases)
	var c vectors.Counter
	c.Report(t, "psk_secret.json")
	for _, tc := range cases {
		s, err := suite.Get(tc.CipherSuite)
		if err != nil {
			c.Unsupported++
			continue
		}
		c.Ran++
		var psks []PSK
		for _, p := range tc.PSKs {
			// PreSharedKeyID{psktype = external(1), psk_id, psk_nonce}.
			id, err := codec.Marshal(func(b *cryptobyte.Builder) {
				b.AddUint8(1)
				codec.AddOpaque(b, p.PSKID)
				codec.AddOpaque(b, p.PSKNonce)
			})
			if err != nil {
				t.Fatal(err)
			}
			psks = append(psks, PSK{ID: id, Secret: p.PSK})
		}
		got, err := CombinePSKs(s, psks)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "psk_secret", got, tc.PSKSecret)
	}
}

func TestSecretTreeVectors(t *testing.T) {
	type leafCase struct {
		Generation       uint32 `json:"generation"`
		HandshakeKey     hex    `json:"handshake_key"`
		HandshakeNonce   hex    `json:"handshake_nonce"`
		ApplicationKey   hex    `json:"application_key"`
		ApplicationNonce hex    `json:"application_nonce"`
	}
	var cases []struct {
		CipherSuite suite.ID `json:"cipher_suite"`
		SenderData  struct {
			SenderDataSecret hex `json:"sender_data_secret"`
			Ciphertext       hex `json:"ciphertext"`
			Key              hex `json:"key"`
			Nonce            hex `json:"nonce"`
		} `json:"sender_data"`
		EncryptionSecret hex          `json:"encryption_secret"`
		Leaves           [][]leafCase `json:"leaves"`
	}
	vectors.Load(t, "secret-tree.json", &cases)
	var c vectors.Counter
	c.Report(t, "secret-tree.json")
	for _, tc := range cases {
		s, err := suite.Get(tc.CipherSuite)
		if err != nil {
			c.Unsupported++
			continue
		}
		c.Ran++
		key, nonce, err := SenderDataKeyNonce(s, tc.SenderData.SenderDataSecret, tc.SenderData.Ciphertext)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, "sender data key", key, tc.SenderData.Key)
		eq(t, "sender data nonce", nonce, tc.SenderData.Nonce)

		n := treemath.LeafCount(len(tc.Leaves))
		// Three trees: one read with Key only (no state change), one that
		// consumes in order, and one that is persisted and restored between
		// every step.
		peek, err := NewSecretTree(s, tc.EncryptionSecret, n, Options{})
		if err != nil {
			t.Fatal(err)
		}
		consume, err := NewSecretTree(s, tc.EncryptionSecret, n, Options{})
		if err != nil {
			t.Fatal(err)
		}
		persisted := consume.Clone()
		for i, gens := range tc.Leaves {
			leaf := treemath.LeafIndex(i)
			for _, g := range gens {
				for _, typ := range []RatchetType{Handshake, Application} {
					wantKey, wantNonce := g.HandshakeKey, g.HandshakeNonce
					if typ == Application {
						wantKey, wantNonce = g.ApplicationKey, g.ApplicationNonce
					}
					k, err := peek.Key(leaf, typ, g.Generation)
					if err != nil {
						t.Fatalf("suite %d leaf %d %s gen %d: %v", tc.CipherSuite, i, typ, g.Generation, err)
					}
					eq(t, typ.String()+" key", k.Key, wantKey)
					eq(t, typ.String()+" nonce", k.Nonce, wantNonce)

					for _, tree := range []*SecretTree{consume, persisted} {
						k, err := tree.Key(leaf, typ, g.Generation)
						if err != nil {
							t.Fatalf("suite %d leaf %d %s gen %d: %v", tc.CipherSuite, i, typ, g.Generation, err)
						}
						eq(t, typ.String()+" key", k.Key, wantKey)
						eq(t, typ.String()+" nonce", k.Nonce, wantNonce)
						if err := tree.Consume(leaf, typ, g.Generation); err != nil {
							t.Fatalf("consume: %v", err)
						}
						if _, err := tree.Key(leaf, typ, g.Generation); err == nil {
							t.Errorf("key of a consumed generation still available")
						}
					}
					data, err := persisted.MarshalBinary()
					if err != nil {
						t.Fatal(err)
					}
					if persisted, err = UnmarshalSecretTree(data); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if len(peek.ratchets) != 0 || len(peek.nodes) != 1 {
			t.Errorf("Key changed the tree: %d ratchets, %d nodes", len(peek.ratchets), len(peek.nodes))
		}
	}
}
