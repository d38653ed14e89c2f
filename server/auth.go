package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"errors"
	"io"
	"slices"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/internal/pow"
	"github.com/parley-im/parley/server/bus"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/wire"
)

// authNonceSize is the size of an authentication challenge nonce.
const authNonceSize = 32

func (ss *session) handleHello(h *wire.Hello) (*wire.Response, error) {
	if !slices.Contains(h.GetVersions(), wire.Version) {
		return nil, wire.NewError(wire.ErrorCode_UNSUPPORTED_VERSION, "this server speaks protocol version %d only; update the client", wire.Version)
	}
	ss.hello = true
	return &wire.Response{Kind: &wire.Response_Hello{Hello: &wire.HelloResponse{
		Version:    wire.Version,
		ServerName: ss.srv.cfg.ServerName,
		Limits: &wire.Limits{
			MaxFrameBytes:   wire.MaxFrameSize,
			MaxMessageBytes: wire.MaxMessageSize,
			MaxFetch:        wire.MaxFetch,
		},
	}}}, nil
}

func (ss *session) handleRegisterChallenge() (*wire.Response, error) {
	c, err := ss.newPowChallenge()
	if err != nil {
		return nil, err
	}
	return &wire.Response{Kind: &wire.Response_RegisterChallenge{RegisterChallenge: &wire.RegisterChallengeResponse{
		Challenge: c[:], Bits: uint32(ss.srv.cfg.PowBits), InviteOnly: ss.srv.cfg.InviteOnly,
	}}}, nil
}

func (ss *session) handleRegister(ctx context.Context, r *wire.Register) (*wire.Response, error) {
	s := ss.srv
	if ok, retry := s.registerLimiter.Allow(ss.addr); !ok {
		e := wire.NewError(wire.ErrorCode_RATE_LIMITED, "too many registrations from your address; retry later")
		e.RetryAfterMs = uint32(min(retry.Milliseconds()+1, 1<<31))
		return nil, e
	}
	// The challenge is single-use: consume it whatever happens next.
	chal := ss.powChal
	ss.powChal = nil
	if chal == nil || !bytes.Equal(chal.value, r.GetPowChallenge()) {
		return nil, wire.NewError(wire.ErrorCode_POW_INVALID, "ask for a registration challenge on this connection, solve it and register with it")
	}
	if s.cfg.Now().Sub(chal.at) > 10*s.cfg.ChallengeTTL {
		return nil, wire.NewError(wire.ErrorCode_POW_INVALID, "the registration challenge expired; ask for a new one")
	}
	var c pow.Challenge
	var n pow.Nonce
	copy(c[:], chal.value)
	if len(r.GetPowNonce()) != pow.NonceSize {
		return nil, wire.NewError(wire.ErrorCode_POW_INVALID, "the proof-of-work nonce must be %d bytes", pow.NonceSize)
	}
	copy(n[:], r.GetPowNonce())
	if err := pow.Verify(c, n, s.cfg.PowBits); err != nil {
		return nil, wire.NewError(wire.ErrorCode_POW_INVALID, "the proof of work does not reach %d bits; ask for a new challenge and solve it", s.cfg.PowBits)
	}
	if s.cfg.InviteOnly && r.GetInviteToken() == "" {
		return nil, wire.NewError(wire.ErrorCode_INVITE_REQUIRED, "this server is invite-only; register with an invite token from its operator")
	}
	pub := r.GetAccountPublicKey()
	if len(pub) != ed25519.PublicKeySize {
		return nil, wire.NewError(wire.ErrorCode_INVALID_ARGUMENT, "the account public key must be %d bytes", ed25519.PublicKeySize)
	}
	cert, err := identity.ParseDeviceCertificate(r.GetDeviceCertificate())
	if err != nil {
		return nil, wire.NewError(wire.ErrorCode_INVALID_CERTIFICATE, "the device certificate is malformed")
	}
	if err := cert.Verify(); err != nil {
		return nil, wire.NewError(wire.ErrorCode_INVALID_CERTIFICATE, "the device certificate's signature does not verify")
	}
	if !bytes.Equal(cert.AccountKey(), pub) {
		return nil, wire.NewError(wire.ErrorCode_INVALID_CERTIFICATE, "the device certificate was issued by another account key")
	}
	now := s.cfg.Now()
	acct := store.NewAccount{
		Account: store.Account{ID: identity.AccountIDFromKey(pub), PublicKey: bytes.Clone(pub), CreatedAt: now},
		FirstDevice: store.Device{
			Account: identity.AccountIDFromKey(pub), ID: cert.DeviceID(),
			Certificate: cert.Marshal(), SigningKey: cert.SignatureKey(), CreatedAt: now,
		},
	}
	if s.cfg.InviteOnly {
		acct.Invite = store.InviteToken(r.GetInviteToken())
	}
	if err := s.store.CreateAccount(ctx, acct); err != nil {
		switch {
		case errors.Is(err, store.ErrExists):
			return nil, wire.NewError(wire.ErrorCode_ALREADY_EXISTS, "an account with this key is already registered")
		case s.cfg.InviteOnly && (errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInviteUsed)):
			return nil, wire.NewError(wire.ErrorCode_INVITE_REQUIRED, "the invite token is unknown or already used")
		}
		return nil, err
	}
	s.metrics.Messages.WithLabelValues("registration").Inc()
	return &wire.Response{Kind: &wire.Response_Register{Register: &wire.RegisterResponse{AccountId: string(acct.Account.ID)}}}, nil
}

func (ss *session) handleAuthChallenge() (*wire.Response, error) {
	nonce := make([]byte, authNonceSize)
	if _, err := io.ReadFull(ss.srv.cfg.Rand, nonce); err != nil {
		return nil, err
	}
	now := ss.srv.cfg.Now()
	ss.authChal = &issued{value: nonce, at: now}
	return &wire.Response{Kind: &wire.Response_AuthChallenge{AuthChallenge: &wire.AuthChallengeResponse{
		Nonce: nonce, ServerName: ss.srv.cfg.ServerName, UnixTime: now.Unix(),
	}}}, nil
}

var errAuth = wire.NewError(wire.ErrorCode_AUTH_FAILED, "authentication failed: sign a fresh challenge from this connection with this device's key")

func (ss *session) handleAuthenticate(ctx context.Context, a *wire.Authenticate) (*wire.Response, error) {
	s := ss.srv
	if ss.authed {
		return nil, wire.NewError(wire.ErrorCode_INVALID_ARGUMENT, "this connection is already authenticated")
	}
	// Single use: a replayed or second attempt finds no challenge.
	chal := ss.authChal
	ss.authChal = nil
	if chal == nil || subtle.ConstantTimeCompare(chal.value, a.GetNonce()) != 1 || a.GetUnixTime() != chal.at.Unix() {
		return nil, errAuth
	}
	if s.cfg.Now().Sub(chal.at) > s.cfg.ChallengeTTL {
		return nil, wire.NewError(wire.ErrorCode_AUTH_FAILED, "the challenge expired; ask for a new one and sign it at once")
	}
	account, err := identity.ParseAccountID(a.GetAccountId())
	if err != nil {
		return nil, errAuth
	}
	devID, err := identity.DeviceIDFromBytes(a.GetDeviceId())
	if err != nil {
		return nil, errAuth
	}
	ref := store.DeviceRef{Account: account, Device: devID}
	dev, err := s.store.Device(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errAuth
	}
	if err != nil {
		return nil, err
	}
	if dev.Revoked() {
		return nil, wire.NewError(wire.ErrorCode_DEVICE_REVOKED, "this device was revoked; link it again as a new device")
	}
	cert, err := identity.ParseDeviceCertificate(dev.Certificate)
	if err != nil {
		return nil, err
	}
	msg := wire.AuthMessage(s.cfg.ServerName, chal.value, chal.at.Unix(), account, devID)
	if err := cert.VerifyDeviceSignature(identity.DomainDeviceAuth, msg, a.GetSignature()); err != nil {
		return nil, errAuth
	}
	ss.device, ss.authed = ref, true
	if err := ss.subscribe(); err != nil {
		ss.authed = false
		return nil, err
	}
	ss.authDone.Store(true)
	return &wire.Response{Kind: &wire.Response_Authenticate{Authenticate: &wire.AuthenticateResponse{
		AccountId: string(account), DeviceId: devID[:],
	}}}, nil
}

// checkAccountSignature verifies an account-key signature over msg and
// that unixTime is within the accepted skew.
func (s *Server) checkAccountSignature(ctx context.Context, account identity.AccountID, domain identity.Domain, msg, sig []byte, unixTime int64) error {
	now := s.cfg.Now().Unix()
	skew := int64(s.cfg.SignatureSkew.Seconds())
	if unixTime < now-skew || unixTime > now+skew {
		return wire.NewError(wire.ErrorCode_INVALID_SIGNATURE, "the signed time is too far from the server's clock; sign again now")
	}
	acct, err := s.store.Account(ctx, account)
	if err != nil {
		return err
	}
	if err := identity.VerifyAccountSignature(acct.PublicKey, domain, msg, sig); err != nil {
		return wire.NewError(wire.ErrorCode_INVALID_SIGNATURE, "the account key signature does not verify")
	}
	return nil
}

func (s *Server) handleRevoke(ctx context.Context, dev store.DeviceRef, r *wire.RevokeDevice) (*wire.Response, error) {
	target, err := identity.DeviceIDFromBytes(r.GetDeviceId())
	if err != nil {
		return nil, wire.NewError(wire.ErrorCode_INVALID_ARGUMENT, "device_id must be %d bytes", identity.DeviceIDSize)
	}
	msg := wire.RevokeMessage(s.cfg.ServerName, dev.Account, target, r.GetUnixTime())
	if err := s.checkAccountSignature(ctx, dev.Account, wire.DomainDeviceRevoke, msg, r.GetSignature(), r.GetUnixTime()); err != nil {
		return nil, err
	}
	ref := store.DeviceRef{Account: dev.Account, Device: target}
	if err := s.store.RevokeDevice(ctx, ref, s.cfg.Now()); err != nil {
		return nil, err
	}
	s.membershipChanged(ctx, nil)
	_ = s.cfg.Bus.Publish(ctx, []store.DeviceRef{ref}, bus.Message{Disconnect: true})
	return &wire.Response{Kind: &wire.Response_RevokeDevice{RevokeDevice: &wire.RevokeDeviceResponse{}}}, nil
}

// handleDeleteAccount answers before it disconnects the account's devices,
// so the caller receives the confirmation.
func (s *Server) handleDeleteAccount(ctx context.Context, ss *session, id uint64, r *wire.DeleteAccount) (*wire.Response, error) {
	dev := ss.device
	msg := wire.DeleteAccountMessage(s.cfg.ServerName, dev.Account, r.GetUnixTime())
	if err := s.checkAccountSignature(ctx, dev.Account, wire.DomainAccountDelete, msg, r.GetSignature(), r.GetUnixTime()); err != nil {
		return nil, err
	}
	devices, err := s.store.Devices(ctx, dev.Account)
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteAccount(ctx, dev.Account); err != nil {
		return nil, err
	}
	s.membershipChanged(ctx, nil)
	_ = ss.conn.Send(&wire.Frame{Id: id, Body: &wire.Frame_Response{Response: &wire.Response{
		Kind: &wire.Response_DeleteAccount{DeleteAccount: &wire.DeleteAccountResponse{}},
	}}})
	refs := make([]store.DeviceRef, 0, len(devices))
	for _, d := range devices {
		refs = append(refs, d.Ref())
	}
	_ = s.cfg.Bus.Publish(ctx, refs, bus.Message{Disconnect: true})
	return nil, nil
}

func (s *Server) handleAddDevice(ctx context.Context, dev store.DeviceRef, r *wire.AddDevice) (*wire.Response, error) {
	cert, err := identity.ParseDeviceCertificate(r.GetDeviceCertificate())
	if err != nil {
		return nil, wire.NewError(wire.ErrorCode_INVALID_CERTIFICATE, "the device certificate is malformed")
	}
	if err := cert.Verify(); err != nil {
		return nil, wire.NewError(wire.ErrorCode_INVALID_CERTIFICATE, "the device certificate's signature does not verify")
	}
	if cert.AccountID() != dev.Account {
		return nil, wire.NewError(wire.ErrorCode_FORBIDDEN, "the device certificate belongs to another account")
	}
	devices, err := s.store.Devices(ctx, dev.Account)
	if err != nil {
		return nil, err
	}
	active := 0
	for _, d := range devices {
		if !d.Revoked() {
			active++
		}
	}
	if active >= wire.MaxDevicesPerAccount {
		return nil, wire.NewError(wire.ErrorCode_FORBIDDEN, "the account has %d devices, the most a server keeps; revoke one first", active)
	}
	err = s.store.AddDevice(ctx, store.Device{
		Account: dev.Account, ID: cert.DeviceID(), Certificate: cert.Marshal(),
		SigningKey: cert.SignatureKey(), CreatedAt: s.cfg.Now(),
	})
	if err != nil {
		return nil, err
	}
	return &wire.Response{Kind: &wire.Response_AddDevice{AddDevice: &wire.AddDeviceResponse{}}}, nil
}
