package client

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/parley-im/parley/client/archive"
	"github.com/parley-im/parley/identity"
)

const recoveryBundleIDLabel = "parley/recovery/bundle-id/v1"

// RecoveryBundleID names an account's recovery-bundle slot on the server.
// It is derived from the recovery key, so a fresh device that knows only
// the words finds the slot, and it reveals nothing about the key.
type RecoveryBundleID [32]byte

// String returns the id as 64 lowercase hex digits.
func (id RecoveryBundleID) String() string { return hex.EncodeToString(id[:]) }

// DeriveRecoveryBundleID returns the slot id of the recovery key rk.
func DeriveRecoveryBundleID(rk identity.RecoveryKey) (RecoveryBundleID, error) {
	var id RecoveryBundleID
	k, err := hkdf.Key(sha256.New, rk[:], nil, recoveryBundleIDLabel, len(id))
	if err != nil {
		return id, fmt.Errorf("failed to derive recovery bundle id: %w", err)
	}
	copy(id[:], k)
	return id, nil
}

// PutRecoveryBundle stores a sealed recovery bundle in the slot of rk; the
// request is authorised with the remote's token, and the server refuses to
// replace another account's bundle.
func (r *ArchiveRemote) PutRecoveryBundle(ctx context.Context, rk identity.RecoveryKey, sealed []byte) error {
	if len(sealed) == 0 || len(sealed) > archive.MaxRecoveryBundleSize {
		return fmt.Errorf("failed to store recovery bundle: %w: size %d", ErrArchiveServer, len(sealed))
	}
	id, err := DeriveRecoveryBundleID(rk)
	if err != nil {
		return err
	}
	resp, err := r.do(ctx, http.MethodPut, "/v1/archive/recovery/"+id.String(), sealed, true)
	if err != nil {
		return fmt.Errorf("failed to store recovery bundle: %w", err)
	}
	resp.Body.Close()
	return nil
}

// FetchRecoveryBundle returns the sealed recovery bundle in the slot of rk,
// without authorisation; a missing slot is an error wrapping
// [archive.ErrNotFound].
func (r *ArchiveRemote) FetchRecoveryBundle(ctx context.Context, rk identity.RecoveryKey) ([]byte, error) {
	id, err := DeriveRecoveryBundleID(rk)
	if err != nil {
		return nil, err
	}
	resp, err := r.do(ctx, http.MethodGet, "/v1/archive/recovery/"+id.String(), nil, false)
	if err != nil {
		return nil, fmt.Errorf("failed to fetch recovery bundle: %w", err)
	}
	return readAll(resp, archive.MaxRecoveryBundleSize)
}

// FetchRecovery fetches and opens the recovery bundle of the recovery words:
// the account key and the archive keyring. Words that are not valid recovery
// words, or whose slot holds nothing, give an error wrapping
// [archive.ErrWrongRecoveryKey].
func FetchRecovery(ctx context.Context, remote *ArchiveRemote, words string) (*archive.RecoveryBundle, error) {
	rk, err := identity.ParseRecoveryWords(words)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", archive.ErrWrongRecoveryKey, err)
	}
	sealed, err := remote.FetchRecoveryBundle(ctx, rk)
	if err != nil {
		if errors.Is(err, archive.ErrNotFound) {
			return nil, fmt.Errorf("%w: no recovery bundle on this server for these words", archive.ErrWrongRecoveryKey)
		}
		return nil, err
	}
	defer clear(rk[:])
	b, err := archive.OpenRecoveryBundleKey(rk, sealed)
	if err != nil {
		return nil, fmt.Errorf("failed to open recovery bundle: %w", err)
	}
	return b, nil
}
