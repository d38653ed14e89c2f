package server_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/internal/pow"
	ts "github.com/parley-im/parley/internal/testserver"
	"github.com/parley-im/parley/server"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// expectConnError waits for an error the server sends with frame id 0.
func expectConnError(t *testing.T, c *wireclient.Client, code wire.ErrorCode) {
	t.Helper()
	select {
	case e := <-c.ConnErrors():
		if e.GetCode() != code {
			t.Fatalf("got %v, want %v", e, code)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no connection error %v", code)
	}
}

// alive checks that a connection is still served.
func alive(t *testing.T, c *wireclient.Client) {
	t.Helper()
	if _, err := c.Ping(ts.Context(t)); err != nil {
		t.Fatalf("connection no longer served: %v", err)
	}
}

func rawFrame(id uint64, body []byte) []byte {
	f := binary.AppendUvarint(nil, uint64(len(body)))
	return append(f, body...)
}

func TestHostileFrames(t *testing.T) {
	srv := ts.Start(t)
	ctx := ts.Context(t)
	bystander := srv.Connect(t, srv.NewAccount(t).Devices[0])
	c := srv.Dial(t)

	t.Run("garbage", func(t *testing.T) {
		if err := c.WriteMessage(ctx, rawFrame(0, []byte{0xff, 0xff, 0xff, 0xff})); err != nil {
			t.Fatal(err)
		}
		expectConnError(t, c, wire.ErrorCode_MALFORMED)
		alive(t, c)
	})
	t.Run("truncated", func(t *testing.T) {
		msg, _ := wire.EncodeMessage(&wire.Frame{Id: 9, Body: &wire.Frame_Request{Request: &wire.Request{Kind: &wire.Request_Ping{Ping: &wire.Ping{}}}}})
		if err := c.WriteMessage(ctx, msg[:len(msg)-1]); err != nil {
			t.Fatal(err)
		}
		expectConnError(t, c, wire.ErrorCode_MALFORMED)
		alive(t, c)
	})
	t.Run("empty message", func(t *testing.T) {
		if err := c.WriteMessage(ctx, nil); err != nil {
			t.Fatal(err)
		}
		expectConnError(t, c, wire.ErrorCode_MALFORMED)
		alive(t, c)
	})
	t.Run("unknown request kind", func(t *testing.T) {
		// Frame{id: 1000, request: Request{field 999: empty}}
		req := []byte{0xba, 0x3e, 0x00}
		body := append([]byte{0x08, 0xe8, 0x07, 0x12, byte(len(req))}, req...)
		_, err := doRaw(t, c, 1000, body)
		ts.WantCode(t, err, wire.ErrorCode_UNKNOWN_REQUEST)
		alive(t, c)
	})
	t.Run("response from client", func(t *testing.T) {
		b, _ := proto.Marshal(&wire.Frame{Id: 1001, Body: &wire.Frame_Response{Response: &wire.Response{}}})
		_, err := doRaw(t, c, 1001, b)
		ts.WantCode(t, err, wire.ErrorCode_MALFORMED)
	})
	t.Run("oversized field", func(t *testing.T) {
		b, _ := proto.Marshal(&wire.Frame{Id: 1002, Body: &wire.Frame_Request{Request: &wire.Request{Kind: &wire.Request_CreateGroup{
			CreateGroup: &wire.CreateGroup{GroupId: make([]byte, wire.MaxGroupIDSize+1)},
		}}}})
		_, err := doRaw(t, c, 1002, b)
		ts.WantCode(t, err, wire.ErrorCode_TOO_LARGE)
		alive(t, c)
	})
	t.Run("oversized frame", func(t *testing.T) {
		msg := binary.AppendUvarint(nil, wire.MaxFrameSize+1)
		msg = append(msg, make([]byte, wire.MaxFrameSize+1)...)
		if err := c.WriteMessage(ctx, msg); err != nil {
			t.Fatal(err)
		}
		expectConnError(t, c, wire.ErrorCode_TOO_LARGE)
		alive(t, c)
	})
	t.Run("unauthenticated", func(t *testing.T) {
		_, err := c.Fetch(ctx, 0)
		ts.WantCode(t, err, wire.ErrorCode_UNAUTHENTICATED)
		err = c.Ack(ctx, []*wire.AckRef{{MailboxSeq: 1}}, true)
		ts.WantCode(t, err, wire.ErrorCode_UNAUTHENTICATED)
	})
	t.Run("oversized message closes only that connection", func(t *testing.T) {
		big := srv.Dial(t)
		_ = big.WriteMessage(ctx, make([]byte, wire.MaxMessageSize+1))
		select {
		case <-big.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("connection survived an oversized message")
		}
		if st := websocket.CloseStatus(big.Err()); st != websocket.StatusMessageTooBig && st != -1 {
			t.Fatalf("closed with %v, want 1009 (or a dropped connection)", big.Err())
		}
		alive(t, c)
	})
	t.Run("text message", func(t *testing.T) {
		tc := srv.Dial(t)
		_ = tc.WriteText(ctx, "hello")
		expectConnError(t, tc, wire.ErrorCode_MALFORMED)
		<-tc.Done()
	})
	alive(t, bystander)
}

// doRaw sends an encoded frame and waits for the answer with that id. It
// sends a ping afterwards to have a request id registered with the client;
// the raw frame's answer arrives as a connection-level error or response.
func doRaw(t *testing.T, c *wireclient.Client, id uint64, frame []byte) (*wire.Response, error) {
	t.Helper()
	return c.DoRaw(ts.Context(t), id, rawFrame(id, frame))
}

func TestHelloRequired(t *testing.T) {
	srv := ts.Start(t)
	ctx := ts.Context(t)
	c, err := wireclient.Dial(ctx, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, err = c.Fetch(ctx, 0)
	ts.WantCode(t, err, wire.ErrorCode_HELLO_REQUIRED)
	_, err = c.Do(ctx, &wire.Request{Kind: &wire.Request_Hello{Hello: &wire.Hello{Versions: []uint32{99}}}})
	ts.WantCode(t, err, wire.ErrorCode_UNSUPPORTED_VERSION)
	if _, err := c.Hello(ctx); err != nil {
		t.Fatal(err)
	}
}

// clock is a settable test clock.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

func authWith(t *testing.T, c *wireclient.Client, mutate func(ch *wire.AuthChallengeResponse, a *wire.Authenticate, d *ts.Device) []byte, d *ts.Device) error {
	t.Helper()
	ctx := ts.Context(t)
	r, err := c.Do(ctx, &wire.Request{Kind: &wire.Request_AuthChallenge{AuthChallenge: &wire.AuthChallengeRequest{}}})
	if err != nil {
		t.Fatal(err)
	}
	ch := r.GetAuthChallenge()
	a := &wire.Authenticate{AccountId: string(d.Account.ID), DeviceId: d.ID[:], Nonce: ch.GetNonce(), UnixTime: ch.GetUnixTime()}
	msg := wire.AuthMessage(ch.GetServerName(), ch.GetNonce(), ch.GetUnixTime(), d.Account.ID, d.ID)
	if mutate != nil {
		if m := mutate(ch, a, d); m != nil {
			msg = m
		}
	}
	if a.Signature == nil {
		a.Signature, err = identity.SignAsDevice(d.Key, identity.DomainDeviceAuth, msg, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.Do(ctx, &wire.Request{Kind: &wire.Request_Authenticate{Authenticate: a}})
	return err
}

func TestAuthRefusals(t *testing.T) {
	clk := &clock{}
	srv := ts.Start(t, ts.WithConfig(func(c *server.Config) { c.Now = clk.now }))
	alice, bob := srv.NewAccount(t), srv.NewAccount(t)
	d := alice.Devices[0]

	t.Run("foreign device key", func(t *testing.T) {
		c := srv.Dial(t)
		err := authWith(t, c, func(ch *wire.AuthChallengeResponse, a *wire.Authenticate, d *ts.Device) []byte {
			a.Signature, _ = identity.SignAsDevice(bob.Devices[0].Key, identity.DomainDeviceAuth,
				wire.AuthMessage(ch.GetServerName(), ch.GetNonce(), ch.GetUnixTime(), d.Account.ID, d.ID), rand.Reader)
			return nil
		}, d)
		ts.WantCode(t, err, wire.ErrorCode_AUTH_FAILED)
	})
	t.Run("signed for another server", func(t *testing.T) {
		c := srv.Dial(t)
		err := authWith(t, c, func(ch *wire.AuthChallengeResponse, a *wire.Authenticate, d *ts.Device) []byte {
			return wire.AuthMessage("evil.example", ch.GetNonce(), ch.GetUnixTime(), d.Account.ID, d.ID)
		}, d)
		ts.WantCode(t, err, wire.ErrorCode_AUTH_FAILED)
	})
	t.Run("signature for another device of the claim", func(t *testing.T) {
		c := srv.Dial(t)
		// Bob signs correctly for himself but claims to be alice's device.
		err := authWith(t, c, func(ch *wire.AuthChallengeResponse, a *wire.Authenticate, _ *ts.Device) []byte {
			a.AccountId, a.DeviceId = string(alice.ID), d.ID[:]
			return wire.AuthMessage(ch.GetServerName(), ch.GetNonce(), ch.GetUnixTime(), bob.ID, bob.Devices[0].ID)
		}, bob.Devices[0])
		ts.WantCode(t, err, wire.ErrorCode_AUTH_FAILED)
	})
	t.Run("replayed challenge", func(t *testing.T) {
		c := srv.Dial(t)
		var replay *wire.Authenticate
		err := authWith(t, c, func(ch *wire.AuthChallengeResponse, a *wire.Authenticate, d *ts.Device) []byte {
			replay = a
			return nil
		}, d)
		if err != nil {
			t.Fatal(err)
		}
		// The same signed answer on another connection, and again on a
		// connection that asked for its own (different) challenge.
		c2 := srv.Dial(t)
		_, err = c2.Do(ts.Context(t), &wire.Request{Kind: &wire.Request_Authenticate{Authenticate: replay}})
		ts.WantCode(t, err, wire.ErrorCode_AUTH_FAILED)
		if _, err := c2.Do(ts.Context(t), &wire.Request{Kind: &wire.Request_AuthChallenge{AuthChallenge: &wire.AuthChallengeRequest{}}}); err != nil {
			t.Fatal(err)
		}
		_, err = c2.Do(ts.Context(t), &wire.Request{Kind: &wire.Request_Authenticate{Authenticate: replay}})
		ts.WantCode(t, err, wire.ErrorCode_AUTH_FAILED)
		// And the challenge is single-use even with a correct signature.
		_, err = c2.Do(ts.Context(t), &wire.Request{Kind: &wire.Request_Authenticate{Authenticate: replay}})
		ts.WantCode(t, err, wire.ErrorCode_AUTH_FAILED)
	})
	t.Run("expired challenge", func(t *testing.T) {
		c := srv.Dial(t)
		err := authWith(t, c, func(*wire.AuthChallengeResponse, *wire.Authenticate, *ts.Device) []byte {
			clk.advance(2 * time.Minute)
			return nil
		}, d)
		ts.WantCode(t, err, wire.ErrorCode_AUTH_FAILED)
	})
	t.Run("unknown device", func(t *testing.T) {
		stranger := ts.NewIdentity(t)
		err := authWith(t, srv.Dial(t), nil, stranger.Devices[0])
		ts.WantCode(t, err, wire.ErrorCode_AUTH_FAILED)
	})
	t.Run("good", func(t *testing.T) {
		if err := authWith(t, srv.Dial(t), nil, d); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRegistrationRefusals(t *testing.T) {
	srv := ts.Start(t, ts.WithConfig(func(c *server.Config) { c.PowBits = 12; c.InviteOnly = true }))
	ctx := ts.Context(t)
	a := ts.NewIdentity(t)

	challenge := func(c *wireclient.Client) pow.Challenge {
		r, err := c.Do(ctx, &wire.Request{Kind: &wire.Request_RegisterChallenge{RegisterChallenge: &wire.RegisterChallengeRequest{}}})
		if err != nil {
			t.Fatal(err)
		}
		if r.GetRegisterChallenge().GetBits() != 12 || !r.GetRegisterChallenge().GetInviteOnly() {
			t.Fatalf("challenge %v", r)
		}
		var ch pow.Challenge
		copy(ch[:], r.GetRegisterChallenge().GetChallenge())
		return ch
	}
	register := func(c *wireclient.Client, ch pow.Challenge, n pow.Nonce, pub []byte, cert []byte, invite string) error {
		_, err := c.Do(ctx, &wire.Request{Kind: &wire.Request_Register{Register: &wire.Register{
			AccountPublicKey: pub, DeviceCertificate: cert, PowChallenge: ch[:], PowNonce: n[:], InviteToken: invite,
		}}})
		return err
	}
	solve := func(ch pow.Challenge) pow.Nonce {
		n, err := pow.Solve(ctx, ch, 12)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := srv.Store.CreateInvite(ctx, "tok-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	c := srv.Dial(t)
	cert := a.Devices[0].Cert.Marshal()

	t.Run("wrong pow", func(t *testing.T) {
		ch := challenge(c)
		var bad pow.Nonce
		for i := 0; pow.Verify(ch, bad, 12) == nil; i++ {
			binary.BigEndian.PutUint64(bad[:], uint64(i+1))
		}
		ts.WantCode(t, register(c, ch, bad, a.Key.Public(), cert, "tok-1"), wire.ErrorCode_POW_INVALID)
	})
	t.Run("challenge from nowhere", func(t *testing.T) {
		var ch pow.Challenge
		ts.WantCode(t, register(c, ch, solve(ch), a.Key.Public(), cert, "tok-1"), wire.ErrorCode_POW_INVALID)
	})
	t.Run("missing invite", func(t *testing.T) {
		ch := challenge(c)
		ts.WantCode(t, register(c, ch, solve(ch), a.Key.Public(), cert, ""), wire.ErrorCode_INVITE_REQUIRED)
	})
	t.Run("unknown invite", func(t *testing.T) {
		ch := challenge(c)
		ts.WantCode(t, register(c, ch, solve(ch), a.Key.Public(), cert, "nope"), wire.ErrorCode_INVITE_REQUIRED)
	})
	t.Run("certificate of another account", func(t *testing.T) {
		other := ts.NewIdentity(t)
		ch := challenge(c)
		ts.WantCode(t, register(c, ch, solve(ch), a.Key.Public(), other.Devices[0].Cert.Marshal(), "tok-1"), wire.ErrorCode_INVALID_CERTIFICATE)
	})
	t.Run("tampered certificate", func(t *testing.T) {
		bad := bytes.Clone(cert)
		bad[len(bad)-1] ^= 1
		ch := challenge(c)
		ts.WantCode(t, register(c, ch, solve(ch), a.Key.Public(), bad, "tok-1"), wire.ErrorCode_INVALID_CERTIFICATE)
	})
	t.Run("good, then the invite is used up", func(t *testing.T) {
		ch := challenge(c)
		if err := register(c, ch, solve(ch), a.Key.Public(), cert, "tok-1"); err != nil {
			t.Fatal(err)
		}
		// Replaying the solved challenge fails: it was single-use.
		ts.WantCode(t, register(c, ch, solve(ch), a.Key.Public(), cert, "tok-1"), wire.ErrorCode_POW_INVALID)
		b := ts.NewIdentity(t)
		ch = challenge(c)
		ts.WantCode(t, register(c, ch, solve(ch), b.Key.Public(), b.Devices[0].Cert.Marshal(), "tok-1"), wire.ErrorCode_INVITE_REQUIRED)
	})
	t.Run("already registered", func(t *testing.T) {
		if err := srv.Store.CreateInvite(ctx, "tok-2", time.Now()); err != nil {
			t.Fatal(err)
		}
		ch := challenge(c)
		ts.WantCode(t, register(c, ch, solve(ch), a.Key.Public(), cert, "tok-2"), wire.ErrorCode_ALREADY_EXISTS)
	})
}

func TestForeignQueuesAndGroups(t *testing.T) { ts.Backends(t, testForeignQueuesAndGroups) }

func testForeignQueuesAndGroups(t *testing.T, start func(testing.TB, ...ts.Option) *ts.Server) {
	srv := start(t)
	ctx := ts.Context(t)
	alice, bob, group := twoPartyGroup(t, srv)
	mallory := srv.NewAccount(t)
	cm := srv.Connect(t, mallory.Devices[0])

	// Mallory cannot ack (move the cursor of) a group she is not in, nor
	// post to it, nor commit to it.
	err := cm.Ack(ctx, []*wire.AckRef{{GroupId: group, Seq: 1}}, true)
	ts.WantCode(t, err, wire.ErrorCode_FORBIDDEN)
	_, err = cm.SendMessage(ctx, group, 1, ts.MessageID(), []byte("spam"))
	ts.WantCode(t, err, wire.ErrorCode_FORBIDDEN)
	_, err = ts.Commit(ctx, cm, group, 1, []byte("takeover"), nil, nil, []*ts.Device{alice.Devices[0]})
	ts.WantCode(t, err, wire.ErrorCode_FORBIDDEN)
	// Her fetch shows only her own (empty) queues, not bob's Welcome.
	f, err := cm.Fetch(ctx, 0)
	if err != nil || len(f.GetDeliveries()) != 0 {
		t.Fatalf("mallory sees %v, %v", f, err)
	}
	// Acking bob's mailbox seq from mallory's connection touches only
	// mallory's mailbox: bob's Welcome is still there.
	if err := cm.Ack(ctx, []*wire.AckRef{{MailboxSeq: 1}}, true); err != nil {
		t.Fatal(err)
	}
	cb := srv.Connect(t, bob.Devices[0])
	f, err = cb.Fetch(ctx, 0)
	if err != nil || len(f.GetDeliveries()) != 1 {
		t.Fatalf("bob sees %v, %v", f, err)
	}
}

func TestAuthTimeout(t *testing.T) {
	srv := ts.Start(t, ts.WithConfig(func(c *server.Config) { c.Limits.AuthTimeout = 200 * time.Millisecond }))
	idle := srv.Dial(t)
	authed := srv.Connect(t, srv.NewAccount(t).Devices[0])
	expectConnError(t, idle, wire.ErrorCode_UNAUTHENTICATED)
	select {
	case <-idle.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("unauthenticated connection not closed")
	}
	time.Sleep(300 * time.Millisecond) // past the deadline for both
	alive(t, authed)
}
