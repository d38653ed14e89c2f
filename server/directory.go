package server

import (
	"context"
	"errors"

	"github.com/parley-im/parley/identity"
	"github.com/parley-im/parley/server/store"
	"github.com/parley-im/parley/wire"
)

// The directory answers exact look-ups only: by account id or by username.
// There is no listing and no prefix search, look-ups are rate limited per
// device, and an unknown account and an unknown username get the same
// NOT_FOUND, so the directory cannot be enumerated.
//
// Usernames are unique by skeleton (identity.UsernameSkeleton): the store
// keys each binding by the skeleton of the folded name, so a look-alike of a
// taken name is refused as taken. A look-up must name the exact folded
// username; a look-alike finds nothing.

var errNotFound = wire.NewError(wire.ErrorCode_NOT_FOUND, "no such account or username")

func (s *Server) allowLookup(dev store.DeviceRef) error {
	if ok, retry := s.lookupLimiter.Allow(dev); !ok {
		e := wire.NewError(wire.ErrorCode_RATE_LIMITED, "too many look-ups; retry after the given delay")
		e.RetryAfterMs = uint32(min(retry.Milliseconds()+1, 1<<31))
		return e
	}
	return nil
}

func (s *Server) handleLookup(ctx context.Context, dev store.DeviceRef, l *wire.Lookup) (*wire.Response, error) {
	if err := s.allowLookup(dev); err != nil {
		return nil, err
	}
	var account identity.AccountID
	switch by := l.GetBy().(type) {
	case *wire.Lookup_AccountId:
		id, err := identity.ParseAccountID(by.AccountId)
		if err != nil {
			return nil, errNotFound
		}
		account = id
	case *wire.Lookup_Username:
		folded, err := identity.FoldUsername(by.Username)
		if err != nil {
			return nil, errNotFound
		}
		u, err := s.store.LookupUsername(ctx, skeletonOf(folded))
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNotFound
		}
		if err != nil {
			return nil, err
		}
		claim, err := identity.ParseUsernameClaim(u.Claim)
		if err != nil || claim.Username() != folded {
			return nil, errNotFound
		}
		account = u.Account
	default:
		return nil, wire.NewError(wire.ErrorCode_INVALID_ARGUMENT, "look up by account_id or username")
	}
	acct, err := s.store.Account(ctx, account)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	devices, err := s.store.Devices(ctx, account)
	if err != nil {
		return nil, err
	}
	out := &wire.LookupResponse{AccountId: string(account), AccountPublicKey: acct.PublicKey}
	for _, d := range devices {
		if !d.Revoked() && len(out.DeviceCertificates) < wire.MaxDevicesPerAccount {
			out.DeviceCertificates = append(out.DeviceCertificates, d.Certificate)
		}
	}
	if u, err := s.store.UsernameOf(ctx, account); err == nil {
		if claim, err := identity.ParseUsernameClaim(u.Claim); err == nil {
			out.Username, out.UsernameClaim = claim.Username(), u.Claim
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return &wire.Response{Kind: &wire.Response_Lookup{Lookup: out}}, nil
}

// skeletonOf returns the uniqueness key of a folded username.
func skeletonOf(folded string) string {
	sk, err := identity.UsernameSkeleton(folded)
	if err != nil {
		return folded
	}
	return sk
}

func (s *Server) handleClaimUsername(ctx context.Context, dev store.DeviceRef, c *wire.ClaimUsername) (*wire.Response, error) {
	claim, err := identity.ParseUsernameClaim(c.GetClaim())
	if err != nil {
		return nil, wire.NewError(wire.ErrorCode_USERNAME_INVALID, "the username claim is malformed or the name breaks the username rules")
	}
	if err := claim.Verify(); err != nil {
		return nil, wire.NewError(wire.ErrorCode_INVALID_SIGNATURE, "the username claim's signature does not verify")
	}
	if claim.AccountID() != dev.Account {
		return nil, wire.NewError(wire.ErrorCode_FORBIDDEN, "the claim is signed by another account")
	}
	host, err := identity.CanonicalServerHost(s.cfg.ServerName)
	if err != nil || claim.Server() != host {
		return nil, wire.NewError(wire.ErrorCode_USERNAME_INVALID, "the claim names another server; sign it for %q", s.cfg.ServerName)
	}
	folded, err := identity.FoldUsername(claim.Username())
	if err != nil || folded != claim.Username() {
		return nil, wire.NewError(wire.ErrorCode_USERNAME_INVALID, "the claimed username is not in folded form")
	}
	err = s.store.ClaimUsername(ctx, store.Username{
		Name: skeletonOf(folded), Account: dev.Account, Claim: claim.Marshal(), CreatedAt: s.cfg.Now(),
	})
	if errors.Is(err, store.ErrExists) {
		return nil, wire.NewError(wire.ErrorCode_USERNAME_TAKEN, "this username, or one that looks like it, is taken; choose another")
	}
	if err != nil {
		return nil, err
	}
	return &wire.Response{Kind: &wire.Response_ClaimUsername{ClaimUsername: &wire.ClaimUsernameResponse{Username: folded}}}, nil
}

func (s *Server) handleReleaseUsername(ctx context.Context, dev store.DeviceRef, r *wire.ReleaseUsername) (*wire.Response, error) {
	folded, err := identity.FoldUsername(r.GetUsername())
	if err != nil {
		return nil, wire.NewError(wire.ErrorCode_USERNAME_INVALID, "the username breaks the username rules")
	}
	msg := wire.ReleaseUsernameMessage(s.cfg.ServerName, dev.Account, folded, r.GetUnixTime())
	if err := s.checkAccountSignature(ctx, dev.Account, wire.DomainUsernameRelease, msg, r.GetSignature(), r.GetUnixTime()); err != nil {
		return nil, err
	}
	u, err := s.store.UsernameOf(ctx, dev.Account)
	if err != nil {
		return nil, err
	}
	if claim, err := identity.ParseUsernameClaim(u.Claim); err != nil || claim.Username() != folded {
		return nil, wire.NewError(wire.ErrorCode_NOT_FOUND, "this account does not hold that username")
	}
	if err := s.store.ReleaseUsername(ctx, dev.Account, u.Name); err != nil {
		return nil, err
	}
	return &wire.Response{Kind: &wire.Response_ReleaseUsername{ReleaseUsername: &wire.ReleaseUsernameResponse{}}}, nil
}
