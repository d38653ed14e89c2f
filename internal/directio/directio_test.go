package directio

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// folders returns a folder on the test's usual file system and, where it
// exists, one on tmpfs (which has no O_DIRECT), so both paths run.
func folders(t *testing.T) map[string]string {
	dirs := map[string]string{"disk": t.TempDir()}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "directio-test-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			dirs["tmpfs"] = d
		}
	}
	return dirs
}

// TestAppendResume writes a file in many pieces across several writers
// that each start at an offset the previous one synced, with syncs at
// unaligned points and bytes past the synced offset thrown away, and
// checks the file byte for byte after each step.
func TestAppendResume(t *testing.T) {
	for name, dir := range folders(t) {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			path := filepath.Join(dir, "f")
			want := make([]byte, 5*BufferSize+12345)
			for i := range want {
				want[i] = byte(rng.Uint32())
			}
			var synced int64
			for round := 0; synced < int64(len(want)); round++ {
				w, err := Append(path, synced)
				if err != nil {
					t.Fatal(err)
				}
				if round == 0 && name == "disk" && !w.direct {
					t.Log("the test folder's file system has no O_DIRECT; only the fallback is tested")
				}
				pos := synced
				for k := 0; k < 3 && pos < int64(len(want)); k++ {
					n := min(int64(rng.IntN(BufferSize*2)+1), int64(len(want))-pos)
					var werr error
					if k%2 == 0 {
						_, werr = w.Write(want[pos : pos+n])
					} else {
						_, werr = w.ReadFrom(bytes.NewReader(want[pos : pos+n]))
					}
					if werr != nil {
						t.Fatal(werr)
					}
					pos += n
					if w.Size() != pos {
						t.Fatalf("Size %d, wrote up to %d", w.Size(), pos)
					}
					if err := w.Sync(); err != nil {
						t.Fatal(err)
					}
					synced = pos
					checkFile(t, path, want[:synced])
				}
				// Bytes written but never synced: a later Append at the
				// synced offset must drop whatever of them arrived.
				if pos < int64(len(want)) {
					_, _ = w.Write(want[pos:min(pos+BufferSize+7, int64(len(want)))])
					_ = w.Abort()
				} else if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			checkFile(t, path, want)
		})
	}
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("file has %d bytes, want %d (or the bytes differ)", len(got), len(want))
	}
}

func TestAppendBeyondEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Append(path, 4); err == nil {
		t.Fatal("Append past the end of the file succeeded")
	}
	w, err := Append(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, "Z"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, []byte("abZ"))
}
