package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parley-im/parley/identity"
)

// DeviceSignerKey is the private half of the device's MLS signature key, in
// the encoding of the certificate's cipher suite.
type DeviceSignerKey []byte

// Identity is who this profile is: one row.
type Identity struct {
	// AccountKey is the account's private key (every device holds it).
	AccountKey *identity.AccountKey
	// Device is this device's id.
	Device identity.DeviceID
	// DeviceSigner is this device's MLS signature private key.
	DeviceSigner DeviceSignerKey
	// Certificate binds Device and the signer's public key to the account.
	Certificate *identity.DeviceCertificate
	// ServerURL is the home server.
	ServerURL string
	// Address is the account's address (ACCOUNTID@server or username@server).
	Address string
	// Username is the claimed username, empty if none.
	Username string
	// CreatedAt is when the profile was made.
	CreatedAt time.Time
}

const (
	qUpsertIdentity = `INSERT INTO identity (id, account_key, device_id, device_signer, certificate, server_url, address, username, created_at)
VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET account_key = excluded.account_key, device_id = excluded.device_id,
	device_signer = excluded.device_signer, certificate = excluded.certificate, server_url = excluded.server_url,
	address = excluded.address, username = excluded.username, created_at = excluded.created_at`
	qSelectIdentity = `SELECT account_key, device_id, device_signer, certificate, server_url, address, username, created_at
FROM identity WHERE id = 1`
)

// identityRef is where an identity column lives.
func identityRef(column string) rowRef {
	return rowRef{table: "identity", column: column, key: []byte{1}}
}

// PutIdentity stores the profile's identity, replacing any previous one. The
// certificate must belong to the account key and the device.
func (tx *Tx) PutIdentity(id *Identity) error {
	if id == nil || id.AccountKey == nil || id.Certificate == nil || id.Device.IsZero() || len(id.DeviceSigner) == 0 {
		return invalidf("identity is incomplete")
	}
	if id.Certificate.AccountID() != id.AccountKey.ID() || id.Certificate.DeviceID() != id.Device {
		return invalidf("device certificate does not match the account key and device")
	}
	plain := []struct {
		col string
		v   []byte
	}{
		{"account_key", id.AccountKey.Bytes()},
		{"device_id", id.Device[:]},
		{"device_signer", id.DeviceSigner},
		{"certificate", id.Certificate.Marshal()},
		{"server_url", []byte(id.ServerURL)},
		{"address", []byte(id.Address)},
		{"username", []byte(id.Username)},
	}
	args := make([]any, 0, len(plain)+1)
	for _, p := range plain {
		v, err := tx.s.seal.seal(identityRef(p.col), p.v)
		if err != nil {
			return err
		}
		args = append(args, v)
	}
	args = append(args, unixNano(id.CreatedAt))
	if _, err := tx.exec(qUpsertIdentity, args...); err != nil {
		return fmt.Errorf("failed to store identity: %w", err)
	}
	return nil
}

// Identity returns the profile's identity, or ErrNotFound before one is set.
func (s *Store) Identity(ctx context.Context) (*Identity, error) {
	q, err := s.reader()
	if err != nil {
		return nil, err
	}
	var sealed [7][]byte
	var created int64
	err = q.QueryRowContext(ctx, qSelectIdentity).Scan(&sealed[0], &sealed[1], &sealed[2], &sealed[3], &sealed[4], &sealed[5], &sealed[6], &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read identity: %w", err)
	}
	cols := [7]string{"account_key", "device_id", "device_signer", "certificate", "server_url", "address", "username"}
	var plain [7][]byte
	for i := range sealed {
		if plain[i], err = s.seal.open(identityRef(cols[i]), sealed[i]); err != nil {
			return nil, err
		}
	}
	id := &Identity{
		DeviceSigner: DeviceSignerKey(plain[2]),
		ServerURL:    string(plain[4]),
		Address:      string(plain[5]),
		Username:     string(plain[6]),
		CreatedAt:    fromUnixNano(created),
	}
	if id.AccountKey, err = identity.ParseAccountKey(plain[0]); err != nil {
		return nil, &CorruptError{Table: "identity", Column: cols[0], Err: err}
	}
	clear(plain[0])
	if id.Device, err = identity.DeviceIDFromBytes(plain[1]); err != nil {
		return nil, &CorruptError{Table: "identity", Column: cols[1], Err: err}
	}
	if id.Certificate, err = identity.ParseDeviceCertificate(plain[3]); err != nil {
		return nil, &CorruptError{Table: "identity", Column: cols[3], Err: err}
	}
	return id, nil
}

// unixNano converts t to nanoseconds since 1970; the zero time is 0.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano reverses unixNano.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
