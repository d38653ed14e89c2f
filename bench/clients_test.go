package bench

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
)

// TestDialerSpreadsSourceAddresses checks that large connection counts
// leave from several loopback source addresses, so they do not run out of
// one address's ephemeral ports.
func TestDialerSpreadsSourceAddresses(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	from := map[string]bool{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		from[host] = true
		mu.Unlock()
		http.Error(w, "not a websocket server", http.StatusBadRequest)
	})}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	d := newDialer("ws://"+l.Addr().String()+"/v1/ws", 2*connsPerSourceAddr+1)
	if len(d.clients) != 3 {
		t.Fatalf("%d source addresses for %d connections, want 3", len(d.clients), 2*connsPerSourceAddr+1)
	}
	for range 3 {
		if _, err := d.dial(context.Background(), 4); err == nil {
			t.Fatal("dial succeeded against a plain HTTP server")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		if !from[ip] {
			t.Errorf("no connection from %s; saw %v", ip, from)
		}
	}
	if one := newDialer("ws://127.0.0.1:1/v1/ws", connsPerSourceAddr); len(one.clients) != 1 {
		t.Errorf("%d source addresses for %d connections, want 1", len(one.clients), connsPerSourceAddr)
	}
}
