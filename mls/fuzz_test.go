package mls

import (
	"bytes"
	"testing"
)

// fuzzGroup returns a two-member group (Bob's state, encoded) and messages
// for Bob as seeds: a proposal, a commit, an application message.
func fuzzGroup(f *testing.F) (cfg *Config, bobState []byte, welcome []byte, kp *KeyPackageBundle, seeds [][]byte) {
	cfg = testConfig(X25519AES128GCM)
	alice, bob := newClient(f, cfg, "alice"), newClient(f, cfg, "bob")
	var err error
	if alice.g, err = Create(cfg, GroupID("fuzz"), alice.cred, alice.signer, nil); err != nil {
		f.Fatal(err)
	}
	kp = bob.keyPackage(f)
	res, err := alice.g.Commit(&CommitOptions{Add: []*KeyPackage{kp.KeyPackage}, InlineTree: true})
	if err != nil {
		f.Fatal(err)
	}
	if err := alice.g.MergePendingCommit(); err != nil {
		f.Fatal(err)
	}
	welcome = res.Welcome
	if bob.g, err = Join(cfg, welcome, kp, nil); err != nil {
		f.Fatal(err)
	}
	if bobState, err = bob.g.Marshal(); err != nil {
		f.Fatal(err)
	}
	inlineGI, err := alice.g.GroupInfo(true, true)
	if err != nil {
		f.Fatal(err)
	}
	prop, err := alice.g.ProposeUpdate()
	if err != nil {
		f.Fatal(err)
	}
	alice.g.proposals = nil
	app, err := alice.g.Encrypt([]byte("hello"), []byte("aad"))
	if err != nil {
		f.Fatal(err)
	}
	res, err = alice.g.Commit(nil)
	if err != nil {
		f.Fatal(err)
	}
	return cfg, bobState, welcome, kp, [][]byte{prop, app, res.Commit, res.GroupInfo, welcome, inlineGI}
}

// FuzzProcess feeds arbitrary messages to a group member: it must never
// panic, and a rejected message must leave the state unchanged.
func FuzzProcess(f *testing.F) {
	cfg, state, _, _, seeds := fuzzGroup(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Unmarshal(state, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Process(data); err != nil {
			after, err := g.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, state) {
				t.Fatal("rejected message changed the state")
			}
		}
	})
}

// FuzzJoin feeds arbitrary Welcome messages to Join.
func FuzzJoin(f *testing.F) {
	cfg, _, welcome, kp, _ := fuzzGroup(f)
	f.Add(welcome)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Join(cfg, data, kp, &JoinOptions{RatchetTree: data})
	})
}

// FuzzJoinExternal feeds arbitrary GroupInfo messages to JoinExternal.
func FuzzJoinExternal(f *testing.F) {
	cfg, _, _, kp, seeds := fuzzGroup(f)
	f.Add(seeds[3])
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = JoinExternal(cfg, data, Credential{Identity: []byte("x")}, kp.signer, nil)
	})
}

// FuzzParseGroupInfo feeds arbitrary GroupInfo messages and trees to
// ParseGroupInfo.
func FuzzParseGroupInfo(f *testing.F) {
	cfg, _, _, _, seeds := fuzzGroup(f)
	f.Add(seeds[5], []byte(nil))
	f.Add(seeds[3], []byte{0})
	f.Fuzz(func(t *testing.T, gi, tree []byte) {
		_, _ = ParseGroupInfo(cfg, gi, tree)
	})
}

// FuzzUnmarshal feeds arbitrary state encodings to Unmarshal.
func FuzzUnmarshal(f *testing.F) {
	cfg, state, _, _, _ := fuzzGroup(f)
	f.Add(state)
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Unmarshal(data, cfg)
		if err != nil {
			return
		}
		if _, err := g.Marshal(); err != nil {
			t.Fatalf("restored state does not encode: %v", err)
		}
	})
}

// FuzzParseKeyPackage feeds arbitrary key packages to ParseKeyPackage.
func FuzzParseKeyPackage(f *testing.F) {
	cfg, _, _, kp, _ := fuzzGroup(f)
	f.Add(kp.KeyPackage.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseKeyPackage(cfg, data)
	})
}

// FuzzKeyPackageBundle feeds arbitrary bundles to UnmarshalKeyPackageBundle.
func FuzzKeyPackageBundle(f *testing.F) {
	_, _, _, kp, _ := fuzzGroup(f)
	data, err := kp.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = UnmarshalKeyPackageBundle(data)
	})
}
