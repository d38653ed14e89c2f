package server_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-im/parley/identity"
	ts "github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

func claimUsername(t *testing.T, c *wireclient.Client, a *ts.Account, name string) error {
	t.Helper()
	claim, err := identity.IssueUsernameClaim(a.Key, name, "127.0.0.1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Do(ts.Context(t), &wire.Request{Kind: &wire.Request_ClaimUsername{ClaimUsername: &wire.ClaimUsername{Claim: claim.Marshal()}}})
	return err
}

func lookup(t *testing.T, c *wireclient.Client, l *wire.Lookup) (*wire.LookupResponse, error) {
	t.Helper()
	r, err := c.Do(ts.Context(t), &wire.Request{Kind: &wire.Request_Lookup{Lookup: l}})
	return r.GetLookup(), err
}

func TestUsernamesAndDirectory(t *testing.T) { ts.Backends(t, testUsernamesAndDirectory) }

func testUsernamesAndDirectory(t *testing.T, start func(testing.TB, ...ts.Option) *ts.Server) {
	srv := start(t)
	ctx := ts.Context(t)
	alice, bob := srv.NewAccount(t), srv.NewAccount(t)
	ca, cb := srv.Connect(t, alice.Devices[0]), srv.Connect(t, bob.Devices[0])

	if err := claimUsername(t, ca, alice, "alice"); err != nil {
		t.Fatal(err)
	}
	// Taken, and look-alikes of it are taken too.
	ts.WantCode(t, claimUsername(t, cb, bob, "alice"), wire.ErrorCode_USERNAME_TAKEN)
	ts.WantCode(t, claimUsername(t, cb, bob, "a1ice"), wire.ErrorCode_USERNAME_TAKEN)
	// A claim signed by alice's key, sent by bob, is refused.
	claim, _ := identity.IssueUsernameClaim(alice.Key, "alice2", "127.0.0.1", time.Now())
	_, err := cb.Do(ctx, &wire.Request{Kind: &wire.Request_ClaimUsername{ClaimUsername: &wire.ClaimUsername{Claim: claim.Marshal()}}})
	ts.WantCode(t, err, wire.ErrorCode_FORBIDDEN)
	// A claim for another server is refused.
	claim, _ = identity.IssueUsernameClaim(bob.Key, "bobby", "other.example", time.Now())
	_, err = cb.Do(ctx, &wire.Request{Kind: &wire.Request_ClaimUsername{ClaimUsername: &wire.ClaimUsername{Claim: claim.Marshal()}}})
	ts.WantCode(t, err, wire.ErrorCode_USERNAME_INVALID)

	// Look-ups: exact name (case-folded) and account id; look-alikes and
	// unknown names find nothing.
	for _, q := range []string{"alice", "ALICE"} {
		r, err := lookup(t, cb, &wire.Lookup{By: &wire.Lookup_Username{Username: q}})
		if err != nil || r.GetAccountId() != string(alice.ID) || r.GetUsername() != "alice" || len(r.GetDeviceCertificates()) != 1 {
			t.Fatalf("lookup %q: %v, %v", q, r, err)
		}
		cert, err := identity.ParseDeviceCertificate(r.GetDeviceCertificates()[0])
		if err != nil || cert.Verify() != nil || cert.AccountID() != alice.ID {
			t.Fatalf("certificate from directory does not verify: %v", err)
		}
	}
	for _, q := range []string{"a1ice", "nobody", "x"} {
		_, err := lookup(t, cb, &wire.Lookup{By: &wire.Lookup_Username{Username: q}})
		ts.WantCode(t, err, wire.ErrorCode_NOT_FOUND)
	}
	r, err := lookup(t, ca, &wire.Lookup{By: &wire.Lookup_AccountId{AccountId: string(bob.ID)}})
	if err != nil || r.GetAccountId() != string(bob.ID) || !bytes.Equal(r.GetAccountPublicKey(), bob.Key.Public()) {
		t.Fatalf("lookup by id: %v, %v", r, err)
	}
	_, err = lookup(t, ca, &wire.Lookup{By: &wire.Lookup_AccountId{AccountId: string(ts.NewIdentity(t).ID)}})
	ts.WantCode(t, err, wire.ErrorCode_NOT_FOUND)

	// Release needs an account-key signature; then the name is free.
	now := time.Now().Unix()
	sig, _ := alice.Key.Sign(wire.DomainUsernameRelease, wire.ReleaseUsernameMessage("127.0.0.1", alice.ID, "alice", now))
	badSig, _ := bob.Key.Sign(wire.DomainUsernameRelease, wire.ReleaseUsernameMessage("127.0.0.1", alice.ID, "alice", now))
	_, err = ca.Do(ctx, &wire.Request{Kind: &wire.Request_ReleaseUsername{ReleaseUsername: &wire.ReleaseUsername{Username: "alice", UnixTime: now, Signature: badSig}}})
	ts.WantCode(t, err, wire.ErrorCode_INVALID_SIGNATURE)
	if _, err := ca.Do(ctx, &wire.Request{Kind: &wire.Request_ReleaseUsername{ReleaseUsername: &wire.ReleaseUsername{Username: "alice", UnixTime: now, Signature: sig}}}); err != nil {
		t.Fatal(err)
	}
	if err := claimUsername(t, cb, bob, "alice"); err != nil {
		t.Fatalf("name not free after release: %v", err)
	}
}

func TestRevokedDevice(t *testing.T) { ts.Backends(t, testRevokedDevice) }

func testRevokedDevice(t *testing.T, start func(testing.TB, ...ts.Option) *ts.Server) {
	srv := start(t)
	ctx := ts.Context(t)
	alice, bob, group := twoPartyGroup(t, srv)
	laptop := srv.AddDevice(t, bob)
	cl := srv.Connect(t, laptop)
	cb := srv.Connect(t, bob.Devices[0])

	now := time.Now().Unix()
	sig, _ := bob.Key.Sign(wire.DomainDeviceRevoke, wire.RevokeMessage("127.0.0.1", bob.ID, laptop.ID, now))
	// A signature by the device key (not the account key) is refused.
	devSig, _ := identity.SignAsDevice(bob.Devices[0].Key, wire.DomainDeviceRevoke, wire.RevokeMessage("127.0.0.1", bob.ID, laptop.ID, now), nil)
	_, err := cb.Do(ctx, &wire.Request{Kind: &wire.Request_RevokeDevice{RevokeDevice: &wire.RevokeDevice{DeviceId: laptop.ID[:], UnixTime: now, Signature: devSig}}})
	ts.WantCode(t, err, wire.ErrorCode_INVALID_SIGNATURE)
	if _, err := cb.Do(ctx, &wire.Request{Kind: &wire.Request_RevokeDevice{RevokeDevice: &wire.RevokeDevice{DeviceId: laptop.ID[:], UnixTime: now, Signature: sig}}}); err != nil {
		t.Fatal(err)
	}
	// Its open connection is closed, it cannot connect again, and it is not
	// reachable.
	select {
	case <-cl.Done():
	case <-ctx.Done():
		t.Fatal("revoked device's connection stays open")
	}
	err = authWith(t, srv.Dial(t), nil, laptop)
	ts.WantCode(t, err, wire.ErrorCode_DEVICE_REVOKED)
	ca := srv.Connect(t, alice.Devices[0])
	id := ts.MessageID()
	_, err = ca.Do(ctx, &wire.Request{Kind: &wire.Request_MailboxSend{MailboxSend: &wire.MailboxSend{Items: []*wire.MailboxItem{{
		To: laptop.WireRef(), MessageId: id[:], Data: []byte("x"),
	}}}}})
	ts.WantCode(t, err, wire.ErrorCode_DEVICE_REVOKED)
	_ = group
}

func TestDeleteAccount(t *testing.T) { ts.Backends(t, testDeleteAccount) }

func testDeleteAccount(t *testing.T, start func(testing.TB, ...ts.Option) *ts.Server) {
	srv := start(t)
	ctx := ts.Context(t)
	alice, bob, _ := twoPartyGroup(t, srv)
	cb := srv.Connect(t, bob.Devices[0])
	now := time.Now().Unix()
	sig, _ := bob.Key.Sign(wire.DomainAccountDelete, wire.DeleteAccountMessage("127.0.0.1", bob.ID, now))
	if _, err := cb.Do(ctx, &wire.Request{Kind: &wire.Request_DeleteAccount{DeleteAccount: &wire.DeleteAccount{UnixTime: now, Signature: sig}}}); err != nil {
		t.Fatal(err)
	}
	<-cb.Done()
	ca := srv.Connect(t, alice.Devices[0])
	_, err := lookup(t, ca, &wire.Lookup{By: &wire.Lookup_AccountId{AccountId: string(bob.ID)}})
	ts.WantCode(t, err, wire.ErrorCode_NOT_FOUND)
	ts.WantCode(t, authWith(t, srv.Dial(t), nil, bob.Devices[0]), wire.ErrorCode_AUTH_FAILED)
}

// TestCanary sends payloads that are a canary string and checks that
// neither the logs nor anything but the payload columns hold it.
//
// What this proves, honestly: the server never writes payload bytes into
// its logs, and it does not copy them anywhere else in plain form beyond
// the one stored copy the protocol requires (the SQLite files do contain
// the canary, because the payload IS the canary and the server stores
// payloads as given). That the stored copy is unreadable to the server
// can only be shown once clients encrypt with MLS: the client test will
// send the canary as plaintext through the client SDK and grep the same
// files for zero hits.
func TestCanary(t *testing.T) {
	srv := ts.Start(t)
	ctx := ts.Context(t)
	alice, bob, group := twoPartyGroup(t, srv)
	ca := srv.Connect(t, alice.Devices[0])
	canary := []byte("CANARY-7f3a9c-plaintext-must-not-leak")
	if _, err := ca.SendMessage(ctx, group, 1, ts.MessageID(), canary); err != nil {
		t.Fatal(err)
	}
	id := ts.MessageID()
	if _, err := ca.Do(ctx, &wire.Request{Kind: &wire.Request_MailboxSend{MailboxSend: &wire.MailboxSend{Items: []*wire.MailboxItem{{
		To: bob.Devices[0].WireRef(), MessageId: id[:], Data: canary,
	}}}}}); err != nil {
		t.Fatal(err)
	}
	// A failing request that carries the canary must not log it either.
	_, _ = ca.SendMessage(ctx, []byte("no-such-group"), 1, ts.MessageID(), canary)
	cb := srv.Connect(t, bob.Devices[0])
	f, err := cb.Fetch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, d := range f.GetDeliveries() {
		if bytes.Equal(d.GetData(), canary) {
			found++
		}
	}
	if found != 2 {
		t.Fatalf("canary delivered %d times, want 2", found)
	}
	logs := srv.Logs()
	if len(logs) == 0 {
		t.Fatal("no logs captured; the check below would prove nothing")
	}
	if bytes.Contains(logs, canary) {
		t.Fatal("the canary appears in the server logs")
	}
	// The addresses of clients are not logged by default.
	if bytes.Contains(logs, []byte("127.0.0.1:")) {
		t.Fatalf("a client address appears in the logs:\n%s", logs)
	}
	// The store's files hold the payload (as the opaque bytes it was
	// given), which documents the limit of this test described above.
	hits := 0
	_ = filepath.Walk(srv.Dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, canary) {
				hits++
			}
		}
		return nil
	})
	t.Logf("SQLite files containing the opaque payload: %d (expected: payloads are stored as given)", hits)
}

func TestHealthAndMetrics(t *testing.T) {
	srv := ts.Start(t, ts.WithConfig(func(c *server.Config) {
		c.Routes = map[string]http.Handler{"GET /v1/extra": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("extra"))
		})}
	}))
	_ = srv.Connect(t, srv.NewAccount(t).Devices[0])
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.HTTP + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz %d %q", code, body)
	}
	if code, body := get("/v1/extra"); code != 200 || body != "extra" {
		t.Fatalf("extra route %d %q", code, body)
	}
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("metrics %d", code)
	}
	// The registration connection of NewAccount may not be released yet,
	// so parley_connections is 1 or 2; exactly one is authenticated.
	for _, want := range []string{"parley_connections ", "parley_authenticated_connections 1", `parley_requests_total{kind="authenticate"}`, "parley_send_queue_bytes"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestPlaintextRefusedOffLoopback(t *testing.T) {
	srv := ts.Start(t)
	s2, err := server.New(server.Config{Store: srv.Store})
	if err != nil {
		t.Fatal(err)
	}
	ifaces, _ := net.InterfaceAddrs()
	for _, a := range ifaces {
		ip, ok := a.(*net.IPNet)
		if !ok || ip.IP.IsLoopback() || ip.IP.To4() == nil {
			continue
		}
		l, err := net.Listen("tcp", ip.IP.String()+":0")
		if err != nil {
			continue
		}
		defer l.Close()
		if err := s2.Serve(l); err != server.ErrPlaintext {
			t.Fatalf("serve on %s without TLS: %v", ip.IP, err)
		}
		return
	}
	t.Skip("no non-loopback IPv4 address to test with")
}

func TestRateLimited(t *testing.T) {
	srv := ts.Start(t, ts.WithConfig(func(c *server.Config) {
		c.Limits.DeviceRate, c.Limits.DeviceBurst = 0.001, 5
	}))
	c := srv.Connect(t, srv.NewAccount(t).Devices[0])
	ctx := ts.Context(t)
	var limited *wire.Error
	for i := 0; i < 20 && limited == nil; i++ {
		if _, err := c.Ping(ctx); err != nil {
			limited = ts.WantCode(t, err, wire.ErrorCode_RATE_LIMITED)
		}
	}
	if limited == nil || limited.GetRetryAfterMs() == 0 {
		t.Fatalf("never rate limited: %v", limited)
	}
}

func TestConnectionLimitPerAddress(t *testing.T) {
	srv := ts.Start(t, ts.WithConfig(func(c *server.Config) { c.Limits.MaxConnectionsPerAddr = 2 }))
	first, _ := srv.Dial(t), srv.Dial(t)
	// Refused before the upgrade: the client's Dial fails with the
	// protocol error.
	c, err := wireclient.Dial(ts.Context(t), srv.URL, nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("third connection accepted")
	}
	if e := ts.WantCode(t, err, wire.ErrorCode_TOO_MANY_CONNECTIONS); e.GetRetryAfterMs() == 0 || !strings.Contains(e.GetMessage(), "too many connections from your address") {
		t.Fatalf("refusal without retry time or sentence: %v", e)
	}
	// The raw answer is HTTP 429 with Retry-After and the error code, and
	// no WebSocket handshake.
	resp := upgradeRequest(t, srv.URL)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		resp.Header.Get(wire.ErrorHeader) != "TOO_MANY_CONNECTIONS" || resp.Header.Get("Upgrade") != "" {
		t.Fatalf("refusal: %s %v", resp.Status, resp.Header)
	}
	// The limit counts open connections: once one closes, a new one is
	// admitted.
	first.CloseNow()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := wireclient.Dial(ts.Context(t), srv.URL, nil)
		if err == nil {
			c.CloseNow()
			break
		}
		ts.WantCode(t, err, wire.ErrorCode_TOO_MANY_CONNECTIONS)
		if time.Now().After(deadline) {
			t.Fatal("a closed connection's slot was never given back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConnectionRateLimitBeforeUpgrade: connection attempts beyond the
// per-address rate are answered with HTTP 429, RATE_LIMITED and a
// Retry-After that covers the limiter's wait.
func TestConnectionRateLimitBeforeUpgrade(t *testing.T) {
	srv := ts.Start(t, ts.WithConfig(func(c *server.Config) {
		c.Limits.AddrRate, c.Limits.AddrBurst = 0.5, 3
	}))
	ctx := ts.Context(t)
	var refused *wire.Error
	for i := 0; i < 10 && refused == nil; i++ {
		c, err := wireclient.Dial(ctx, srv.URL, nil)
		if err != nil {
			refused = ts.WantCode(t, err, wire.ErrorCode_RATE_LIMITED)
			break
		}
		c.CloseNow()
	}
	if refused == nil {
		t.Fatal("10 connection attempts at a burst of 3 were all accepted")
	}
	if refused.GetRetryAfterMs() < 1000 {
		t.Fatalf("retry after %d ms, want at least the 1 s Retry-After granularity", refused.GetRetryAfterMs())
	}
	resp := upgradeRequest(t, srv.URL)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get(wire.ErrorHeader) != "RATE_LIMITED" {
		t.Fatalf("refusal: %s %v", resp.Status, resp.Header)
	}
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 || n > 3 {
		t.Fatalf("Retry-After %q, want 1-3 s at 0.5 connections/s", resp.Header.Get("Retry-After"))
	}
}

// upgradeRequest sends a WebSocket upgrade request by hand and returns the
// answer, so a test sees the HTTP status of a refusal.
func upgradeRequest(t *testing.T, wsURL string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ts.Context(t), http.MethodGet, "http"+strings.TrimPrefix(wsURL, "ws"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

func TestShutdownDrains(t *testing.T) {
	srv := ts.Start(t)
	alice, bob, group := twoPartyGroup(t, srv)
	ca := srv.Connect(t, alice.Devices[0])
	cb := srv.Connect(t, bob.Devices[0])
	ctx := ts.Context(t)
	// Pipeline many sends, then shut down while they are in flight: every
	// send that was answered with a seq must be in the store afterwards.
	type result struct {
		seq uint64
		err error
	}
	results := make(chan result, 200)
	for i := 0; i < 200; i++ {
		go func() {
			seq, err := ca.SendMessage(ctx, group, 1, ts.MessageID(), []byte("m"))
			results <- result{seq, err}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]bool{}
	for i := 0; i < 200; i++ {
		r := <-results
		if r.err == nil {
			acked[r.seq] = true
		}
	}
	entries, err := srv.Store.ReadGroup(context.Background(), store.GroupID(group), 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[uint64]bool{}
	for _, e := range entries {
		stored[e.Seq] = true
	}
	for seq := range acked {
		if !stored[seq] {
			t.Fatalf("acknowledged seq %d is not stored", seq)
		}
	}
	<-cb.Done()
	t.Logf("%d of 200 sends acknowledged before shutdown", len(acked))
	if resp, err := http.Get(srv.HTTP + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("server still answers after shutdown")
	}
}
