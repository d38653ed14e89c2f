package mls

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// sim is a simulated group: members, removed members, and a delivery
// function that hands every message to everyone.
type sim struct {
	t       *testing.T
	cfg     *Config
	rng     *rand.Rand
	members []*client
	removed []*client
	n       int
}

func (s *sim) newClient() *client {
	s.n++
	return newClient(s.t, s.cfg, fmt.Sprintf("c%d", s.n))
}

// deliver hands a commit (or proposal) to every member but from, and checks
// that rejected variants change nothing.
func (s *sim) deliver(from *client, msg []byte) {
	s.t.Helper()
	for _, m := range s.members {
		if m == from {
			continue
		}
		s.checkRejectUnchanged(m, tamper(s.rng, msg))
		if _, err := m.g.Process(msg); err != nil {
			s.t.Fatalf("%s processing message from %s: %v", m.name, from.name, err)
		}
	}
}

// tamper flips one random byte.
func tamper(rng *rand.Rand, msg []byte) []byte {
	bad := bytes.Clone(msg)
	bad[rng.IntN(len(bad))] ^= byte(1 + rng.IntN(255))
	return bad
}

// checkRejectUnchanged processes a bad message and checks the state did not
// change when it was rejected.
func (s *sim) checkRejectUnchanged(m *client, bad []byte) {
	s.t.Helper()
	before, err := m.g.Marshal()
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := m.g.Process(bad); err == nil {
		// A flip in unauthenticated padding-free fields cannot be
		// accepted: every byte of a handshake or application message
		// is authenticated.
		s.t.Fatalf("%s accepted a tampered message", m.name)
	}
	after, err := m.g.Marshal()
	if err != nil {
		s.t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		s.t.Fatalf("%s: rejected message changed the state", m.name)
	}
}

func (s *sim) checkAgreement() {
	s.t.Helper()
	mustAuth(s.t, s.members...)
}

func (s *sim) pick() *client { return s.members[s.rng.IntN(len(s.members))] }

func (s *sim) commit(c *client, opts *CommitOptions) *CommitResult {
	s.t.Helper()
	res, err := c.g.Commit(opts)
	if err != nil {
		s.t.Fatalf("%s commit: %v", c.name, err)
	}
	if err := c.g.MergePendingCommit(); err != nil {
		s.t.Fatal(err)
	}
	s.deliver(c, res.Commit)
	for _, r := range s.removed {
		// Removed members process the commit that removed them and
		// nothing after it.
		_, _ = r.g.Process(res.Commit)
	}
	return res
}

func (s *sim) step() {
	switch op := s.rng.IntN(10); {
	case op < 2 || len(s.members) < 3: // add
		c := s.pick()
		nc := s.newClient()
		kp := nc.keyPackage(s.t)
		res := s.commit(c, &CommitOptions{Add: []*KeyPackage{kp.KeyPackage}, InlineTree: true})
		g, err := Join(s.cfg, res.Welcome, kp, nil)
		if err != nil {
			s.t.Fatalf("%s join: %v", nc.name, err)
		}
		nc.g = g
		s.members = append(s.members, nc)
	case op < 4: // remove
		c := s.pick()
		var victim *client
		for victim == nil || victim == c {
			victim = s.pick()
		}
		s.removeFromList(victim)
		s.removed = append(s.removed, victim)
		s.commit(c, &CommitOptions{Remove: []LeafIndex{victim.g.Index()}})
		if victim.g.Active() {
			s.t.Fatalf("%s still active after removal", victim.name)
		}
	case op < 5: // update proposed by one, committed by another
		u := s.pick()
		prop, err := u.g.ProposeUpdate()
		if err != nil {
			s.t.Fatal(err)
		}
		s.deliver(u, prop)
		var c *client
		for c == nil || c == u {
			c = s.pick()
		}
		s.commit(c, nil)
	case op < 6: // external join
		c := s.pick()
		gi, err := c.g.GroupInfo(true, true)
		if err != nil {
			s.t.Fatal(err)
		}
		nc := s.newClient()
		g, commit, err := JoinExternal(s.cfg, gi, nc.cred, nc.signer, nil)
		if err != nil {
			s.t.Fatalf("external join: %v", err)
		}
		nc.g = g
		s.deliver(nil, commit)
		for _, r := range s.removed {
			_, _ = r.g.Process(commit)
		}
		s.members = append(s.members, nc)
	case op < 7: // empty commit
		s.commit(s.pick(), nil)
	default: // application messages
		c := s.pick()
		ct, err := c.g.Encrypt([]byte("m"), nil)
		if err != nil {
			s.t.Fatal(err)
		}
		s.deliver(c, ct)
		for _, r := range s.removed {
			if _, err := r.g.Process(ct); err == nil {
				s.t.Fatalf("removed %s decrypted a later message", r.name)
			}
		}
		return
	}
	s.checkAgreement()
}

func (s *sim) removeFromList(v *client) {
	for i, m := range s.members {
		if m == v {
			s.members = append(s.members[:i], s.members[i+1:]...)
			return
		}
	}
}

func TestPropertyRandomGroup(t *testing.T) {
	for _, cs := range []CipherSuite{X25519AES128GCM, P256AES128GCM, X25519ChaCha20} {
		for _, enc := range []bool{false, true} {
			t.Run(fmt.Sprintf("suite%d-private%v", cs, enc), func(t *testing.T) {
				cfg := testConfig(cs)
				cfg.EncryptHandshake = enc
				s := &sim{t: t, cfg: cfg, rng: rand.New(rand.NewPCG(uint64(cs), 7))}
				c := s.newClient()
				g, err := Create(cfg, GroupID("prop"), c.cred, c.signer, nil)
				if err != nil {
					t.Fatal(err)
				}
				c.g = g
				s.members = []*client{c}
				steps := 60
				if testing.Short() {
					steps = 20
				}
				for range steps {
					s.step()
				}
			})
		}
	}
}

// TestPropertyManyMembers starts from a group of 24 members added in one
// commit and runs random operations on it.
func TestPropertyManyMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("long property run")
	}
	cfg := testConfig(X25519AES128GCM)
	s := &sim{t: t, cfg: cfg, rng: rand.New(rand.NewPCG(42, 42))}
	c := s.newClient()
	g, err := Create(cfg, GroupID("many"), c.cred, c.signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.g = g
	s.members = []*client{c}
	var (
		kps     []*KeyPackage
		bundles []*KeyPackageBundle
		joiners []*client
	)
	for range 23 {
		nc := s.newClient()
		kp := nc.keyPackage(t)
		kps, bundles, joiners = append(kps, kp.KeyPackage), append(bundles, kp), append(joiners, nc)
	}
	res := s.commit(c, &CommitOptions{Add: kps})
	tr, err := c.g.RatchetTree()
	if err != nil {
		t.Fatal(err)
	}
	for i, nc := range joiners {
		if nc.g, err = Join(cfg, res.Welcome, bundles[i], &JoinOptions{RatchetTree: tr}); err != nil {
			t.Fatal(err)
		}
		s.members = append(s.members, nc)
	}
	s.checkAgreement()
	for range 80 {
		s.step()
	}
	t.Logf("%d members, %d removed, epoch %d", len(s.members), len(s.removed), s.members[0].g.Epoch())
}
