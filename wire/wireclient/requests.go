package wireclient

import (
	"context"
	"crypto"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/internal/pow"
	"github.com/parley-im/parley/wire"
)

// Hello negotiates the protocol version; it must be the first request.
func (c *Client) Hello(ctx context.Context) (*wire.HelloResponse, error) {
	r, err := c.Do(ctx, &wire.Request{Kind: &wire.Request_Hello{Hello: &wire.Hello{Versions: []uint32{wire.Version}, Client: "wireclient"}}})
	if err != nil {
		return nil, err
	}
	return r.GetHello(), nil
}

// Register creates an account with its first device: it asks for a
// proof-of-work challenge, solves it and registers.
func (c *Client) Register(ctx context.Context, accountPub []byte, cert *identity.DeviceCertificate, invite string) (identity.AccountID, error) {
	r, err := c.Do(ctx, &wire.Request{Kind: &wire.Request_RegisterChallenge{RegisterChallenge: &wire.RegisterChallengeRequest{}}})
	if err != nil {
		return "", err
	}
	ch := r.GetRegisterChallenge()
	var chal pow.Challenge
	if len(ch.GetChallenge()) != len(chal) {
		return "", fmt.Errorf("failed to register: server sent a %d-byte challenge", len(ch.GetChallenge()))
	}
	copy(chal[:], ch.GetChallenge())
	nonce, err := pow.Solve(ctx, chal, int(ch.GetBits()))
	if err != nil {
		return "", err
	}
	r, err = c.Do(ctx, &wire.Request{Kind: &wire.Request_Register{Register: &wire.Register{
		AccountPublicKey: accountPub, DeviceCertificate: cert.Marshal(),
		PowChallenge: chal[:], PowNonce: nonce[:], InviteToken: invite,
	}}})
	if err != nil {
		return "", err
	}
	return identity.AccountID(r.GetRegister().GetAccountId()), nil
}

// Authenticate proves the connection belongs to the device: it asks for a
// challenge and signs it with the device key.
func (c *Client) Authenticate(ctx context.Context, account identity.AccountID, device identity.DeviceID, key crypto.Signer) error {
	r, err := c.Do(ctx, &wire.Request{Kind: &wire.Request_AuthChallenge{AuthChallenge: &wire.AuthChallengeRequest{}}})
	if err != nil {
		return err
	}
	ch := r.GetAuthChallenge()
	msg := wire.AuthMessage(ch.GetServerName(), ch.GetNonce(), ch.GetUnixTime(), account, device)
	sig, err := identity.SignAsDevice(key, identity.DomainDeviceAuth, msg, rand.Reader)
	if err != nil {
		return err
	}
	_, err = c.Do(ctx, &wire.Request{Kind: &wire.Request_Authenticate{Authenticate: &wire.Authenticate{
		AccountId: string(account), DeviceId: device[:], Nonce: ch.GetNonce(), UnixTime: ch.GetUnixTime(), Signature: sig,
	}}})
	return err
}

// Fetch asks for pending deliveries.
func (c *Client) Fetch(ctx context.Context, limit uint32) (*wire.FetchResponse, error) {
	r, err := c.Do(ctx, &wire.Request{Kind: &wire.Request_Fetch{Fetch: &wire.Fetch{Limit: limit}}})
	if err != nil {
		return nil, err
	}
	return r.GetFetch(), nil
}

// CreateGroup registers a new group with this device as its only member.
func (c *Client) CreateGroup(ctx context.Context, group []byte) error {
	_, err := c.Do(ctx, &wire.Request{Kind: &wire.Request_CreateGroup{CreateGroup: &wire.CreateGroup{GroupId: group}}})
	return err
}

// SendMessage appends an application message to a group and returns its seq.
func (c *Client) SendMessage(ctx context.Context, group []byte, epoch uint64, id [16]byte, data []byte) (uint64, error) {
	r, err := c.Do(ctx, &wire.Request{Kind: &wire.Request_Send{Send: &wire.Send{
		GroupId: group, Epoch: epoch, MessageId: id[:], Data: data, Kind: wire.MessageKind_MESSAGE_KIND_APPLICATION,
	}}})
	if err != nil {
		return 0, err
	}
	return r.GetSend().GetSeq(), nil
}

// Ping waits for the server to answer a ping.
func (c *Client) Ping(ctx context.Context) (time.Time, error) {
	r, err := c.Do(ctx, &wire.Request{Kind: &wire.Request_Ping{Ping: &wire.Ping{}}})
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(r.GetPing().GetUnixTime(), 0), nil
}
