package blobtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parley-im/parley/filecrypt"
	"github.com/parley-im/parley/server/blob"
)

// benchSize is the transfer size: 1 GiB, or PARLEY_BENCH_SIZE bytes.
func benchSize() int64 {
	if s, err := strconv.ParseInt(os.Getenv("PARLEY_BENCH_SIZE"), 10, 64); err == nil && s > 0 {
		return s
	}
	return 1 << 30
}

// peakMeter samples the heap while a transfer runs and reads the kernel's
// peak RSS of this process (client and server both run in it).
type peakMeter struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	peakHeap atomic.Uint64
	cpu0     time.Duration
}

// cpuTime returns the user plus system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startPeakMeter() *peakMeter {
	// Writing 5 to clear_refs resets VmHWM (Linux), so each run measures
	// its own peak.
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	m := &peakMeter{stop: make(chan struct{}), cpu0: cpuTime()}
	m.wg.Go(func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if h := s[0].Value.Uint64() + s[1].Value.Uint64(); h > m.peakHeap.Load() {
				m.peakHeap.Store(h)
			}
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	})
	return m
}

// report adds the peaks and the CPU time per GiB moved (client and server
// together), which unlike MB/s does not depend on other load on the machine.
func (m *peakMeter) report(b *testing.B, bytes int64) {
	cpu := cpuTime() - m.cpu0
	close(m.stop)
	m.wg.Wait()
	b.ReportMetric(float64(m.peakHeap.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(cpu.Seconds()/(float64(bytes)/(1<<30)), "cpu-s/GiB")
	if rss := vmHWM(); rss > 0 {
		b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
	}
}

// vmHWM returns the process's peak resident set size in bytes (0 if unknown).
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkTransfer uploads and downloads a large file over loopback HTTP to
// the local-folder backend, encrypting and decrypting on the way.
func BenchmarkTransfer(b *testing.B) {
	size := benchSize()
	e := newEnv(b, openLocal, blob.Config{Now: time.Now})
	src := writeFile(b, size, 42)
	c := e.client("token-alice")
	ctx := context.Background()
	var ref filecrypt.FileRef
	b.Run("upload", func(b *testing.B) {
		b.SetBytes(size)
		m := startPeakMeter()
		for i := 0; i < b.N; i++ {
			f, err := os.Open(src)
			if err != nil {
				b.Fatal(err)
			}
			up, err := c.CreateUpload(ctx, size, rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			if ref, err = c.Upload(ctx, up, f, nil); err != nil {
				b.Fatal(err)
			}
			f.Close()
			if i < b.N-1 {
				b.StopTimer()
				if err := c.Delete(ctx, up.Blob); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		}
		m.report(b, size*int64(b.N))
	})
	b.Run("download", func(b *testing.B) {
		b.SetBytes(size)
		dst := filepath.Join(b.TempDir(), "out")
		m := startPeakMeter()
		for i := 0; i < b.N; i++ {
			if err := e.client("").Download(ctx, ref, dst, nil); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			_ = os.Remove(dst)
			b.StartTimer()
		}
		m.report(b, size*int64(b.N))
	})
}
