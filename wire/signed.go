package wire

import (
	"encoding/binary"

	"github.com/parley-im/parley/identity"
)

// Signature domains the protocol defines in addition to identity's. Each
// signed message below is signed with identity's domain-separated signing
// (identity.SignAsDevice / AccountKey.Sign).
const (
	// DomainDeviceRevoke labels an account-key signature revoking a device.
	DomainDeviceRevoke identity.Domain = "device-revoke"
	// DomainAccountDelete labels an account-key signature deleting an account.
	DomainAccountDelete identity.Domain = "account-delete"
	// DomainUsernameRelease labels an account-key signature releasing a
	// username.
	DomainUsernameRelease identity.Domain = "username-release"
)

func appendShort(b []byte, s []byte) []byte {
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// AuthMessage is what a device signs, with its device key in domain
// identity.DomainDeviceAuth, to authenticate a connection: the server name,
// the challenge nonce and time, and the device's account and id. Including
// the server name and the device makes a signature useless on another
// server or for another device; the nonce makes it single-use.
func AuthMessage(serverName string, nonce []byte, unixTime int64, account identity.AccountID, device identity.DeviceID) []byte {
	b := make([]byte, 0, 2+len(serverName)+len(nonce)+8+1+len(account)+len(device))
	b = appendShort(b, []byte(serverName))
	b = appendShort(b, nonce)
	b = binary.BigEndian.AppendUint64(b, uint64(unixTime))
	b = appendShort(b, []byte(account))
	return append(b, device[:]...)
}

// RevokeMessage is what the account key signs, in DomainDeviceRevoke, to
// revoke one of its devices on a server.
func RevokeMessage(serverName string, account identity.AccountID, device identity.DeviceID, unixTime int64) []byte {
	b := appendShort(nil, []byte(serverName))
	b = appendShort(b, []byte(account))
	b = append(b, device[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(unixTime))
}

// DeleteAccountMessage is what the account key signs, in
// DomainAccountDelete, to delete the account on a server.
func DeleteAccountMessage(serverName string, account identity.AccountID, unixTime int64) []byte {
	b := appendShort(nil, []byte(serverName))
	b = appendShort(b, []byte(account))
	return binary.BigEndian.AppendUint64(b, uint64(unixTime))
}

// ReleaseUsernameMessage is what the account key signs, in
// DomainUsernameRelease, to release its username on a server.
func ReleaseUsernameMessage(serverName string, account identity.AccountID, username string, unixTime int64) []byte {
	b := appendShort(nil, []byte(serverName))
	b = appendShort(b, []byte(account))
	b = appendShort(b, []byte(username))
	return binary.BigEndian.AppendUint64(b, uint64(unixTime))
}
