package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/wire"
)

// TestDialHonoursRetryAfter checks that a connection refused before the
// upgrade with 429 and Retry-After makes the reconnect loop wait at least
// that long, while staying an offline error the caller retries.
func TestDialHonoursRetryAfter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(wire.ErrorHeader, wire.ErrorCode_RATE_LIMITED.String())
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte("too many connections from your address; retry later"))
	}))
	defer srv.Close()
	_, _, err := dialServer(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/ws")
	if !errors.Is(err, ErrOffline) {
		t.Fatalf("dial error %v is not ErrOffline", err)
	}
	if got := retryAfter(err); got != 7*time.Second {
		t.Fatalf("retryAfter = %v, want 7s (err %v)", got, err)
	}
	if got := reconnectWait(100*time.Millisecond, err); got != 7*time.Second {
		t.Fatalf("reconnectWait = %v, want the server's 7s", got)
	}
	if got := reconnectWait(100*time.Millisecond, errors.New("connection reset")); got < 50*time.Millisecond || got > 100*time.Millisecond {
		t.Fatalf("reconnectWait without a refusal = %v, want the jittered backoff", got)
	}
}
