package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/parley-im/parley/server/store"
)

func testKeyPackages(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAccount(t, s, "alice", 3)

	noErr(t, "upload d0", s.UploadKeyPackages(ctx, a.ref(0), []store.KeyPackage{
		{Data: []byte("d0-1")}, {Data: []byte("d0-2")}, {Data: []byte("d0-lr-old"), LastResort: true},
	}))
	noErr(t, "upload d0 new last resort", s.UploadKeyPackages(ctx, a.ref(0), []store.KeyPackage{{Data: []byte("d0-lr"), LastResort: true}}))
	noErr(t, "upload d1", s.UploadKeyPackages(ctx, a.ref(1), []store.KeyPackage{{Data: []byte("d1-lr"), LastResort: true}}))
	// Device 2 uploads nothing.

	for _, c := range []struct {
		dev  int
		want int
	}{{0, 2}, {1, 0}, {2, 0}} {
		n, err := s.CountKeyPackages(ctx, a.ref(c.dev))
		noErr(t, "CountKeyPackages", err)
		if n != c.want {
			t.Fatalf("CountKeyPackages(d%d) = %d, want %d (last-resort not counted)", c.dev, n, c.want)
		}
	}

	want := [][]string{
		{"d0-1", "d1-lr"},
		{"d0-2", "d1-lr"},
		{"d0-lr", "d1-lr"}, // one-time stock exhausted: the newest last-resort, not consumed
		{"d0-lr", "d1-lr"},
	}
	for round, w := range want {
		got, err := s.ClaimKeyPackages(ctx, a.account.ID)
		noErr(t, "ClaimKeyPackages", err)
		if len(got) != len(w) {
			t.Fatalf("round %d: %d packages, want %d", round, len(got), len(w))
		}
		for i := range w {
			if string(got[i].Data) != w[i] || got[i].Device != a.devices[i].ID {
				t.Fatalf("round %d: package %d = %s from %s, want %s from %s", round, i, got[i].Data, got[i].Device, w[i], a.devices[i].ID)
			}
			if got[i].LastResort != (w[i] != "d0-1" && w[i] != "d0-2") {
				t.Fatalf("round %d: package %s LastResort = %v", round, w[i], got[i].LastResort)
			}
		}
	}

	ghost := newAccountValue("ghost")
	_, err := s.ClaimKeyPackages(ctx, ghost.ID)
	wantErr(t, "claim for unknown account", err, store.ErrNotFound)
	err = s.UploadKeyPackages(ctx, firstDevice(ghost, "ghost").Ref(), []store.KeyPackage{{Data: []byte("x")}})
	wantErr(t, "upload for unknown device", err, store.ErrNotFound)
	wantErr(t, "upload nothing", s.UploadKeyPackages(ctx, a.ref(0), nil), store.ErrInvalid)
	wantErr(t, "upload empty package", s.UploadKeyPackages(ctx, a.ref(0), []store.KeyPackage{{}}), store.ErrInvalid)
	wantErr(t, "upload too many", s.UploadKeyPackages(ctx, a.ref(0), make([]store.KeyPackage, store.MaxUploadBatch+1)), store.ErrInvalid)
}

// testKeyPackageClaimsConcurrent checks that concurrent claims hand out each
// one-time package exactly once and then fall back to the last-resort one.
func testKeyPackageClaimsConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const devices, perDevice, claimers = 3, 40, 60
	a := newAccount(t, s, "alice", devices)
	for d := 0; d < devices; d++ {
		var pkgs []store.KeyPackage
		for i := 0; i < perDevice; i++ {
			pkgs = append(pkgs, store.KeyPackage{Data: []byte(fmt.Sprintf("d%d-%d", d, i))})
		}
		pkgs = append(pkgs, store.KeyPackage{Data: []byte(fmt.Sprintf("d%d-lr", d)), LastResort: true})
		noErr(t, "upload", s.UploadKeyPackages(ctx, a.ref(d), pkgs))
	}

	var mu sync.Mutex
	seen := map[string]int{}
	lastResort := 0
	var wg sync.WaitGroup
	errs := make(chan error, claimers)
	for c := 0; c < claimers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.ClaimKeyPackages(ctx, a.account.ID)
			if err != nil {
				errs <- err
				return
			}
			if len(got) != devices {
				errs <- fmt.Errorf("claim returned %d packages, want %d", len(got), devices)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, p := range got {
				if p.LastResort {
					lastResort++
					continue
				}
				seen[string(p.Data)]++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != devices*perDevice {
		t.Fatalf("%d distinct one-time packages handed out, want %d", len(seen), devices*perDevice)
	}
	for p, n := range seen {
		if n != 1 {
			t.Fatalf("package %s handed out %d times", p, n)
		}
	}
	if want := devices * (claimers - perDevice); lastResort != want {
		t.Fatalf("%d last-resort packages handed out, want %d", lastResort, want)
	}
	for d := 0; d < devices; d++ {
		if n, _ := s.CountKeyPackages(ctx, a.ref(d)); n != 0 {
			t.Fatalf("device %d still has %d one-time packages", d, n)
		}
	}
}
