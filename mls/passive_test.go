package mls

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/parley-im/parley/mls/internal/message"
	"github.com/parley-im/parley/mls/internal/suite"
	"github.com/parley-im/parley/mls/internal/vectors"
)

type passiveClientCase struct {
	CipherSuite  uint16 `json:"cipher_suite"`
	ExternalPSKs []struct {
		PSKID vectors.Hex `json:"psk_id"`
		PSK   vectors.Hex `json:"psk"`
	} `json:"external_psks"`
	KeyPackage                vectors.Hex `json:"key_package"`
	SignaturePriv             vectors.Hex `json:"signature_priv"`
	EncryptionPriv            vectors.Hex `json:"encryption_priv"`
	InitPriv                  vectors.Hex `json:"init_priv"`
	Welcome                   vectors.Hex `json:"welcome"`
	RatchetTree               vectors.Hex `json:"ratchet_tree"`
	InitialEpochAuthenticator vectors.Hex `json:"initial_epoch_authenticator"`
	Epochs                    []struct {
		Proposals          []vectors.Hex `json:"proposals"`
		Commit             vectors.Hex   `json:"commit"`
		EpochAuthenticator vectors.Hex   `json:"epoch_authenticator"`
	} `json:"epochs"`
}

func TestPassiveClientWelcome(t *testing.T) { runPassive(t, "passive-client-welcome.json") }
func TestPassiveClientHandlingCommit(t *testing.T) {
	runPassive(t, "passive-client-handling-commit.json")
}
func TestPassiveClientRandom(t *testing.T) { runPassive(t, "passive-client-random.json") }

func runPassive(t *testing.T, file string) {
	var cases []passiveClientCase
	vectors.Load(t, file, &cases)
	var c vectors.Counter
	c.Report(t, file)
	for i, tc := range cases {
		if !suite.Supported(suite.ID(tc.CipherSuite)) {
			c.Unsupported++
			continue
		}
		c.Ran++
		t.Run(fmt.Sprintf("case%d-suite%d", i, tc.CipherSuite), func(t *testing.T) {
			runPassiveCase(t, &tc)
		})
	}
}

func runPassiveCase(t *testing.T, tc *passiveClientCase) {
	psks := map[string][]byte{}
	for _, p := range tc.ExternalPSKs {
		psks[string(p.PSKID)] = p.PSK
	}
	cfg := &Config{
		Suite: CipherSuite(tc.CipherSuite),
		PSK: func(id []byte) ([]byte, bool) {
			s, ok := psks[string(id)]
			return s, ok
		},
		EpochGrace: -1,
	}
	m, err := message.DecodeMLSMessage(tc.KeyPackage)
	if err != nil || m.KeyPackage == nil {
		t.Fatalf("key package: %v", err)
	}
	kp, err := newKeyPackageBundle(m.KeyPackage, tc.InitPriv, tc.EncryptionPriv, tc.SignaturePriv)
	if err != nil {
		t.Fatal(err)
	}
	var opts *JoinOptions
	if len(tc.RatchetTree) > 0 {
		opts = &JoinOptions{RatchetTree: tc.RatchetTree}
	}
	g, err := Join(cfg, tc.Welcome, kp, opts)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if !bytes.Equal(g.EpochAuthenticator(), tc.InitialEpochAuthenticator) {
		t.Fatal("initial epoch authenticator differs")
	}
	for i, ep := range tc.Epochs {
		for j, p := range ep.Proposals {
			if _, err := g.Process(p); err != nil {
				t.Fatalf("epoch %d proposal %d: %v", i, j, err)
			}
		}
		before, err := g.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Process(ep.Commit); err != nil {
			t.Fatalf("epoch %d commit: %v", i, err)
		}
		if !bytes.Equal(g.EpochAuthenticator(), ep.EpochAuthenticator) {
			t.Fatalf("epoch %d: epoch authenticator differs", i)
		}
		checkRoundTrip(t, g, before, cfg)
	}
}

// checkRoundTrip checks that state (the group's state before its last
// message) restores and re-encodes to the same bytes.
func checkRoundTrip(t *testing.T, g *Group, before []byte, cfg *Config) {
	t.Helper()
	r, err := Unmarshal(before, cfg)
	if err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	again, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, before) {
		t.Fatal("state does not round-trip")
	}
}
