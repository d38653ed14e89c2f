package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func startInProcess(t *testing.T) Target {
	t.Helper()
	tg, err := StartInProcess(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tg.Close(); err != nil {
			t.Error(err)
		}
	})
	return tg
}

func quick(s Scenario) Config {
	return Config{Scenario: s, Duration: 700 * time.Millisecond, Warmup: 200 * time.Millisecond, Settle: 100 * time.Millisecond, Window: 4}
}

func TestRelayAgainstRealServer(t *testing.T) {
	tg := startInProcess(t)
	cfg := quick(Relay)
	cfg.Pairs = 3
	r, err := Run(context.Background(), tg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 0 || r.Sent == 0 || r.Delivered == 0 {
		t.Fatalf("sent %d, delivered %d, errors %d (%s)", r.Sent, r.Delivered, r.Errors, r.FirstError)
	}
	if r.Latency == nil || r.Latency.Samples != r.Delivered || r.Latency.P50 <= 0 || r.Latency.P99 < r.Latency.P50 {
		t.Fatalf("latency %+v for %d deliveries", r.Latency, r.Delivered)
	}
	// Each message has one recipient: what arrives in the window is about
	// what was sent in it (the edges of the window differ by the in-flight
	// sends at most).
	if d := int64(r.Delivered) - int64(r.Sent); d > 2*6*4 || d < -2*6*4 {
		t.Errorf("sent %d but delivered %d", r.Sent, r.Delivered)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil || !strings.Contains(text.String(), "durable") {
		t.Errorf("text output %q, %v", text.String(), err)
	}
	b, err := json.Marshal(r)
	if err != nil || !bytes.Contains(b, []byte(`"durable_msgs_per_s"`)) || !bytes.Contains(b, []byte(`"p99"`)) {
		t.Errorf("json %s, %v", b, err)
	}
}

func TestFanoutDeliversToEveryMember(t *testing.T) {
	tg := startInProcess(t)
	cfg := quick(Fanout)
	cfg.Members = 3
	r, err := Run(context.Background(), tg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 0 || r.Sent == 0 {
		t.Fatalf("sent %d, errors %d (%s)", r.Sent, r.Errors, r.FirstError)
	}
	if want := 3 * int64(r.Sent); int64(r.Delivered) < want-3*2*4 || int64(r.Delivered) > want+3*2*4 {
		t.Errorf("sent %d to 3 members but delivered %d", r.Sent, r.Delivered)
	}
}

func TestRateIsFollowed(t *testing.T) {
	tg := startInProcess(t)
	cfg := quick(Relay)
	cfg.Pairs, cfg.Rate, cfg.Duration = 1, 200, time.Second
	r, err := Run(context.Background(), tg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Paced sends can only fall short of the target, never exceed it.
	if r.SendRate > 200*1.2 || r.Sent == 0 {
		t.Fatalf("target 200/s, sent %.0f/s", r.SendRate)
	}
}

func TestConnectionsInProcess(t *testing.T) {
	tg := startInProcess(t)
	cfg := quick(Connections)
	cfg.Conns = 50
	r, err := Run(context.Background(), tg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := r.Memory
	if m == nil || m.Open != 50 || m.Loaded.GoInUse == 0 || m.Idle.RSS == 0 {
		t.Fatalf("memory %+v", m)
	}
	if len(r.Notes) == 0 {
		t.Error("in-process memory is reported without saying it includes the clients")
	}
}

func TestSpawnedServer(t *testing.T) {
	bin := parleyBinary(t)
	tg, err := Spawn(context.Background(), bin, 0, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := tg.Close(); err != nil {
			t.Error(err)
		}
	}()
	cfg := quick(Connections)
	cfg.Conns = 200
	r, err := Run(context.Background(), tg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := r.Memory
	if m.Open != 200 || m.Idle.RSS == 0 || m.Loaded.RSS == 0 || m.Loaded.GoInUse == 0 {
		t.Fatalf("memory %+v", m)
	}
	// The server's memory grows with its connections.
	if m.Loaded.GoInUse <= m.Baseline.GoInUse {
		t.Errorf("Go memory did not grow with 200 connections: %+v", m)
	}
	cfg = quick(Relay)
	cfg.Pairs = 2
	if r, err = Run(context.Background(), tg, cfg); err != nil || r.Sent == 0 {
		t.Fatalf("relay against the spawned server: %v", err)
	}
	// The same server again, as an external target.
	ext, err := External(strings.TrimSuffix(strings.Replace(tg.URL(), "ws://", "http://", 1), "/v1/ws"))
	if err != nil {
		t.Fatal(err)
	}
	em, err := ext.Memory(context.Background())
	if err != nil || em.RSS == 0 {
		t.Fatalf("external memory %+v, %v", em, err)
	}
}

func TestExternalOnlyLoopback(t *testing.T) {
	for _, u := range []string{"http://10.0.0.1:8080", "ws://example.com/v1/ws", "https://[2001:db8::1]:443", "http://localhost:1"} {
		if _, err := External(u); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("External(%q) = %v, want ErrNotLoopback", u, err)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8080", "ws://127.0.0.2:9/v1/ws", "http://[::1]:8080"} {
		tg, err := External(u)
		if err != nil {
			t.Errorf("External(%q): %v", u, err)
			continue
		}
		if !strings.HasSuffix(tg.URL(), "/v1/ws") || !strings.HasPrefix(tg.URL(), "ws://") {
			t.Errorf("External(%q).URL() = %q", u, tg.URL())
		}
	}
	if _, err := External("ftp://127.0.0.1/"); err == nil {
		t.Error("ftp URL accepted")
	}
}

func TestConfigBounds(t *testing.T) {
	for _, c := range []Config{
		{Scenario: "nope"},
		{Scenario: Relay, Pairs: -1},
		{Scenario: Connections, Conns: maxCount + 1},
		{Scenario: Relay, Size: 1 << 20},
		{Scenario: Relay, Window: 5000},
		{Scenario: Relay, Rate: -1},
		{Scenario: Relay, Duration: -time.Second},
	} {
		if _, err := Run(context.Background(), nil, c); !errors.Is(err, ErrConfig) {
			t.Errorf("Run(%+v) = %v, want ErrConfig", c, err)
		}
	}
}

func TestParseGauges(t *testing.T) {
	in := "# HELP x y\nprocess_resident_memory_bytes 1.2e+07\ngo_memstats_heap_inuse_bytes{a=\"b\"} 5\ngo_memstats_heap_inuse_bytes 3\n"
	v, err := parseGauges(strings.NewReader(in), "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "missing")
	if err != nil || v[0] != 1.2e7 || v[1] != 3 || v[2] != 0 {
		t.Fatalf("got %v, %v", v, err)
	}
}
