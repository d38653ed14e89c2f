package bench

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/wire"
	"github.com/parley-im/parley/wire/wireclient"
)

// connsPerSourceAddr is how many connections one source address carries:
// below the 28,232 ports of Linux's default ephemeral range, so that large
// connection counts spread over 127.0.0.1, 127.0.0.2, ... (all loopback).
const connsPerSourceAddr = 20000

// dialer opens connections to one server, spreading them over source
// addresses so a large count does not exhaust the ephemeral ports of one.
type dialer struct {
	url     string
	clients []*http.Client
	next    atomic.Uint64
}

// newDialer prepares n connections' worth of source addresses.
func newDialer(url string, conns int) *dialer {
	d := &dialer{url: url}
	addrs := (conns + connsPerSourceAddr - 1) / connsPerSourceAddr
	if addrs <= 1 {
		d.clients = []*http.Client{http.DefaultClient}
		return d
	}
	for i := range addrs {
		nd := &net.Dialer{
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i))},
			Timeout:   30 * time.Second,
		}
		d.clients = append(d.clients, &http.Client{Transport: &http.Transport{DialContext: nd.DialContext}})
	}
	return d
}

// dial opens a connection and sends hello.
func (d *dialer) dial(ctx context.Context, events int) (*wireclient.Client, error) {
	hc := d.clients[d.next.Add(1)%uint64(len(d.clients))]
	c, err := wireclient.Dial(ctx, d.url, &wireclient.Options{EventBuffer: events, HTTPClient: hc})
	if err != nil {
		return nil, err
	}
	if _, err := c.Hello(ctx); err != nil {
		c.CloseNow()
		return nil, fmt.Errorf("failed to say hello: %w", err)
	}
	return c, nil
}

// identityKeys is a device that the load generator made: its account and
// device keys and certificate.
type identityKeys struct {
	account *identity.AccountKey
	id      identity.DeviceID
	key     ed25519.PrivateKey
	cert    *identity.DeviceCertificate
}

func newIdentity(rand io.Reader) (*identityKeys, error) {
	a, err := identity.GenerateAccountKey(rand)
	if err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("failed to make a device key: %w", err)
	}
	id, err := identity.NewDeviceID(rand)
	if err != nil {
		return nil, err
	}
	cert, err := identity.IssueDeviceCertificate(a, id, pub, identity.SuiteX25519AES128GCMEd25519, time.Now())
	if err != nil {
		return nil, err
	}
	return &identityKeys{account: a, id: id, key: priv, cert: cert}, nil
}

// ref is the device's wire reference.
func (k *identityKeys) ref() *wire.DeviceRef {
	return &wire.DeviceRef{AccountId: string(k.account.ID()), DeviceId: k.id[:]}
}

// device is a registered device with an authenticated connection.
type device struct {
	*identityKeys
	c *wireclient.Client
}

// register registers k's account on c (which stays unauthenticated).
func register(ctx context.Context, c *wireclient.Client, k *identityKeys) error {
	if _, err := c.Register(ctx, k.account.Public(), k.cert, ""); err != nil {
		return fmt.Errorf("failed to register: %w", err)
	}
	return nil
}

// newDevice makes, registers and authenticates a device on its own
// connection.
func newDevice(ctx context.Context, d *dialer, rand io.Reader, events int) (*device, error) {
	k, err := newIdentity(rand)
	if err != nil {
		return nil, err
	}
	c, err := d.dial(ctx, events)
	if err != nil {
		return nil, err
	}
	if err := register(ctx, c, k); err != nil {
		c.CloseNow()
		return nil, err
	}
	if err := c.Authenticate(ctx, k.account.ID(), k.id, k.key); err != nil {
		c.CloseNow()
		return nil, fmt.Errorf("failed to authenticate: %w", err)
	}
	return &device{identityKeys: k, c: c}, nil
}

// newDevices makes n devices, workers at a time.
func newDevices(ctx context.Context, d *dialer, rand io.Reader, n, events int) ([]*device, error) {
	out := make([]*device, n)
	err := parallel(ctx, n, 64, func(i int) error {
		dev, err := newDevice(ctx, d, rand, events)
		out[i] = dev
		return err
	})
	if err != nil {
		closeDevices(out)
		return nil, err
	}
	return out, nil
}

func closeDevices(ds []*device) {
	_ = parallel(context.Background(), len(ds), 256, func(i int) error {
		if ds[i] != nil {
			ds[i].c.CloseNow()
		}
		return nil
	})
}

// parallel runs f(0..n-1) on up to workers goroutines and returns the first
// error; after an error no new calls start.
func parallel(ctx context.Context, n, workers int, f func(i int) error) error {
	var (
		next  atomic.Int64
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = context.Cause(ctx)
	}
	return first
}

// commitAdding adds devices to group at epoch with a commit whose payload
// is opaque filler (no Welcomes: the load generator's devices need none).
func commitAdding(ctx context.Context, c *wireclient.Client, group []byte, epoch uint64, rand io.Reader, added []*wire.DeviceRef) error {
	var id [16]byte
	if _, err := io.ReadFull(rand, id[:]); err != nil {
		return fmt.Errorf("failed to make a message id: %w", err)
	}
	_, err := c.Do(ctx, &wire.Request{Kind: &wire.Request_Commit{Commit: &wire.Commit{
		GroupId: group, Epoch: epoch, MessageId: id[:], Commit: []byte("bench commit"), Added: added,
	}}})
	if err != nil {
		return fmt.Errorf("failed to add members to the group: %w", err)
	}
	return nil
}
