package mls

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/parley-im/parley/mls/internal/treemath"
)

// benchGroup is a group of n members built with one commit adding n-1
// members: the committer (leaf 0) and one member that joined from the
// Welcome (the last leaf). A few more members (one under each node of the
// last member's copath) join and commit once, so that the tree is in the
// steady state of a group whose members commit now and then: the last
// member's copath nodes hold keys, and its commits encrypt to O(log n)
// nodes instead of to every leaf of the blank subtrees a bulk add leaves.
type benchGroup struct {
	cfg      *Config
	creator  *client
	member   *client
	welcome  []byte
	memberKP *KeyPackageBundle
}

var benchGroups = map[int]*benchGroup{}

func buildBenchGroup(b *testing.B, n int) *benchGroup {
	if bg, ok := benchGroups[n]; ok {
		return bg
	}
	cfg := testConfig(X25519AES128GCM)
	creator := newClient(b, cfg, "creator")
	var err error
	creator.g, err = Create(cfg, GroupID("bench"), creator.cred, creator.signer, nil)
	if err != nil {
		b.Fatal(err)
	}
	bg := &benchGroup{cfg: cfg, creator: creator}
	if n == 1 {
		benchGroups[n] = bg
		return bg
	}
	kps := make([]*KeyPackage, 0, n-1)
	clients := make([]*client, n)
	bundles := make([]*KeyPackageBundle, n)
	for i := 1; i < n; i++ {
		c := newClient(b, cfg, fmt.Sprintf("m%d", i))
		kp := c.keyPackage(b)
		kps = append(kps, kp.KeyPackage)
		clients[i], bundles[i] = c, kp
	}
	res, err := creator.g.Commit(&CommitOptions{Add: kps, InlineTree: true, ForcePath: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := creator.g.MergePendingCommit(); err != nil {
		b.Fatal(err)
	}
	bg.welcome = res.Welcome
	bg.member, bg.memberKP = clients[n-1], bundles[n-1]
	if bg.member.g, err = Join(cfg, res.Welcome, bg.memberKP, nil); err != nil {
		b.Fatal(err)
	}
	// Fillers: one member under each blank parent of the copath.
	t := creator.g.tree
	var fillers []*client
	for _, c := range treemath.LeafIndex(n - 1).Node().Copath(t.LeafCount()) {
		if c.IsLeaf() || t.EncryptionKey(c) != nil {
			continue
		}
		first := int((uint32(c) - (1<<c.Level() - 1)) >> 1)
		if first <= 0 || first >= n-1 {
			continue
		}
		f := clients[first]
		if f.g, err = Join(cfg, res.Welcome, bundles[first], nil); err != nil {
			b.Fatal(err)
		}
		fillers = append(fillers, f)
	}
	all := append([]*client{creator, bg.member}, fillers...)
	for _, f := range fillers {
		res, err := f.g.Commit(nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.g.MergePendingCommit(); err != nil {
			b.Fatal(err)
		}
		for _, o := range all {
			if o != f {
				if _, err := o.g.Process(res.Commit); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	// The Welcome of the join benchmark is for the group as it is now.
	nc := newClient(b, cfg, "joiner")
	bg.memberKP = nc.keyPackage(b)
	res, err = creator.g.Commit(&CommitOptions{Add: []*KeyPackage{bg.memberKP.KeyPackage}, InlineTree: true})
	if err != nil {
		b.Fatal(err)
	}
	creator.g.ClearPendingCommit()
	bg.welcome = res.Welcome
	benchGroups[n] = bg
	return bg
}

func BenchmarkApplication(b *testing.B) {
	payload := make([]byte, 1024)
	for _, n := range []int{2, 1000} {
		b.Run(fmt.Sprintf("encrypt/members=%d", n), func(b *testing.B) {
			bg := buildBenchGroup(b, n)
			b.SetBytes(int64(len(payload)))
			start := cpuTime()
			for b.Loop() {
				if _, err := bg.creator.g.Encrypt(payload, nil); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
		b.Run(fmt.Sprintf("decrypt/members=%d", n), func(b *testing.B) {
			bg := buildBenchGroup(b, n)
			b.SetBytes(int64(len(payload)))
			msgs := make([][]byte, 0, 1024)
			i := 0
			var cpu, mark time.Duration
			for b.Loop() {
				if i == len(msgs) {
					b.StopTimer()
					if mark != 0 {
						cpu += cpuTime() - mark
					}
					msgs, i = msgs[:0], 0
					for range cap(msgs) {
						ct, err := bg.member.g.Encrypt(payload, nil)
						if err != nil {
							b.Fatal(err)
						}
						msgs = append(msgs, ct)
					}
					mark = cpuTime()
					b.StartTimer()
				}
				if _, err := bg.creator.g.Process(msgs[i]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			cpu += cpuTime() - mark
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

func benchSizes() []int {
	if testing.Short() {
		return []int{10, 100}
	}
	return []int{10, 100, 1000, 10000}
}

func BenchmarkCommit(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("create/members=%d", n), func(b *testing.B) {
			bg := buildBenchGroup(b, n)
			start := cpuTime()
			for b.Loop() {
				if _, err := bg.member.g.Commit(nil); err != nil {
					b.Fatal(err)
				}
				bg.member.g.ClearPendingCommit()
			}
			reportCPU(b, start)
		})
		b.Run(fmt.Sprintf("process/members=%d", n), func(b *testing.B) {
			bg := buildBenchGroup(b, n)
			res, err := bg.member.g.Commit(nil)
			if err != nil {
				b.Fatal(err)
			}
			bg.member.g.ClearPendingCommit()
			for b.Loop() {
				b.StopTimer()
				g := benchCopy(bg.creator.g)
				b.StartTimer()
				if _, err := g.Process(res.Commit); err != nil {
					b.Fatal(err)
				}
			}
		})
		// The same after a restart: the state restored from storage
		// (not timed) processes the commit.
		b.Run(fmt.Sprintf("process-restored/members=%d", n), func(b *testing.B) {
			bg := buildBenchGroup(b, n)
			res, err := bg.member.g.Commit(nil)
			if err != nil {
				b.Fatal(err)
			}
			bg.member.g.ClearPendingCommit()
			state, err := bg.creator.g.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				b.StopTimer()
				g, err := Unmarshal(state, bg.cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := g.Process(res.Commit); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkJoin(b *testing.B) {
	sizes := []int{1000, 10000}
	if testing.Short() {
		sizes = []int{100}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("welcome/members=%d", n), func(b *testing.B) {
			bg := buildBenchGroup(b, n)
			start := cpuTime()
			for b.Loop() {
				if _, err := Join(bg.cfg, bg.welcome, bg.memberKP, nil); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
}

func BenchmarkAddMember(b *testing.B) {
	n := 10000
	if testing.Short() {
		n = 100
	}
	b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
		bg := buildBenchGroup(b, n)
		c := newClient(b, bg.cfg, "new")
		kp := c.keyPackage(b)
		start := cpuTime()
		for b.Loop() {
			if _, err := bg.member.g.Commit(&CommitOptions{Add: []*KeyPackage{kp.KeyPackage}}); err != nil {
				b.Fatal(err)
			}
			bg.member.g.ClearPendingCommit()
		}
		reportCPU(b, start)
	})
}

// benchCopy returns a copy of g that can process a commit without
// changing g: the in-memory state a client keeps between messages (with
// its tree hash cache warm), not one just restored from storage.
func benchCopy(g *Group) *Group {
	c := *g
	c.keys = g.keys.Clone()
	c.tree = g.tree.Clone()
	c.past = nil
	return &c
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation of a benchmark loop that
// has no StopTimer sections: on a loaded machine the wall time includes
// waiting for a core, the CPU time does not (work on both cores adds up).
func reportCPU(b *testing.B, start time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}
