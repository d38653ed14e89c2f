package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// KeyFileName is the profile key file's name inside the profile folder. It
// holds the profile key either in the clear (no passphrase) or wrapped with
// a key derived from the passphrase by Argon2id. It is written with mode
// 0600 and replaced atomically (write, fsync, rename, fsync the folder).
const KeyFileName = "profile.key"

// Key file layout (all integers big-endian):
//
//	magic "PRLYKEY\x00" (8) | version 1 (1) | mode (1) | body
//	mode 0 (plain):    profile key (32)
//	mode 1 (argon2id): time (4) | memory KiB (4) | threads (1) | salt (16) |
//	                   nonce (24) | XChaCha20-Poly1305(profile key) (48)
//
// The wrapped key's associated data is every byte before the nonce, so the
// recorded parameters cannot be altered without the unwrap failing.
const (
	keyFileMagic   = "PRLYKEY\x00"
	keyFileVersion = 1
	modePlain      = 0
	modeArgon2id   = 1
	saltSize       = 16
	keyHeaderSize  = len(keyFileMagic) + 2
	plainFileSize  = keyHeaderSize + ProfileKeySize
	paramsSize     = 4 + 4 + 1
	wrappedSize    = ProfileKeySize + chacha20poly1305.Overhead
	argonFileSize  = keyHeaderSize + paramsSize + saltSize + chacha20poly1305.NonceSizeX + wrappedSize
)

// KDFParams are the Argon2id parameters that turn a passphrase into the key
// wrapping the profile key. They are recorded in the key file, so raising
// the defaults later only affects newly wrapped keys.
type KDFParams struct {
	// Time is the number of passes over memory.
	Time uint32
	// MemoryKiB is the memory used, in KiB.
	MemoryKiB uint32
	// Threads is the degree of parallelism.
	Threads uint8
}

// DefaultKDFParams follow RFC 9106's second recommended option: t=3, 64 MiB,
// 4 lanes.
var DefaultKDFParams = KDFParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 4}

// Bounds on accepted parameters, so a damaged or hostile key file cannot make
// unlocking run for hours or allocate without limit.
const (
	maxKDFTime      = 64
	maxKDFMemoryKiB = 2 << 20 // 2 GiB
	maxKDFThreads   = 64
)

// Validate checks the parameters are within the accepted bounds.
func (p KDFParams) Validate() error {
	if p.Time < 1 || p.Time > maxKDFTime {
		return invalidf("argon2id time must be 1..%d", maxKDFTime)
	}
	if p.Threads < 1 || p.Threads > maxKDFThreads {
		return invalidf("argon2id threads must be 1..%d", maxKDFThreads)
	}
	if p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxKDFMemoryKiB {
		return invalidf("argon2id memory must be %d..%d KiB", 8*uint32(p.Threads), maxKDFMemoryKiB)
	}
	return nil
}

// keyFile is the decoded profile key file.
type keyFile struct {
	mode   byte
	plain  ProfileKey // mode plain
	params KDFParams  // mode argon2id
	salt   [saltSize]byte
	nonce  [chacha20poly1305.NonceSizeX]byte
	sealed [wrappedSize]byte
}

// parseKeyFile decodes a key file, rejecting any length, version, mode or
// parameter it does not know.
func parseKeyFile(data []byte) (*keyFile, error) {
	if len(data) < keyHeaderSize || string(data[:len(keyFileMagic)]) != keyFileMagic {
		return nil, fmt.Errorf("%w: not a Parley profile key", ErrBadKeyFile)
	}
	if data[len(keyFileMagic)] != keyFileVersion {
		return nil, fmt.Errorf("%w: unknown version %d", ErrBadKeyFile, data[len(keyFileMagic)])
	}
	kf := &keyFile{mode: data[len(keyFileMagic)+1]}
	body := data[keyHeaderSize:]
	switch kf.mode {
	case modePlain:
		if len(data) != plainFileSize {
			return nil, fmt.Errorf("%w: wrong length", ErrBadKeyFile)
		}
		copy(kf.plain[:], body)
	case modeArgon2id:
		if len(data) != argonFileSize {
			return nil, fmt.Errorf("%w: wrong length", ErrBadKeyFile)
		}
		kf.params = KDFParams{
			Time:      binary.BigEndian.Uint32(body[0:4]),
			MemoryKiB: binary.BigEndian.Uint32(body[4:8]),
			Threads:   body[8],
		}
		if err := kf.params.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadKeyFile, err)
		}
		body = body[paramsSize:]
		body = body[copy(kf.salt[:], body):]
		body = body[copy(kf.nonce[:], body):]
		copy(kf.sealed[:], body)
	default:
		return nil, fmt.Errorf("%w: unknown mode %d", ErrBadKeyFile, kf.mode)
	}
	return kf, nil
}

// marshal encodes the key file.
func (kf *keyFile) marshal() []byte {
	out := make([]byte, 0, argonFileSize)
	out = append(out, keyFileMagic...)
	out = append(out, keyFileVersion, kf.mode)
	if kf.mode == modePlain {
		return append(out, kf.plain[:]...)
	}
	out = binary.BigEndian.AppendUint32(out, kf.params.Time)
	out = binary.BigEndian.AppendUint32(out, kf.params.MemoryKiB)
	out = append(out, kf.params.Threads)
	out = append(out, kf.salt[:]...)
	out = append(out, kf.nonce[:]...)
	return append(out, kf.sealed[:]...)
}

// wrapAD is the associated data of the wrapped key: the encoding up to the
// nonce.
func (kf *keyFile) wrapAD() []byte {
	return kf.marshal()[:keyHeaderSize+paramsSize+saltSize]
}

// hasPassphrase reports whether the key is wrapped with a passphrase.
func (kf *keyFile) hasPassphrase() bool { return kf.mode == modeArgon2id }

// plainKeyFile holds pk in the clear.
func plainKeyFile(pk *ProfileKey) *keyFile { return &keyFile{mode: modePlain, plain: *pk} }

// wrapKeyFile wraps pk with a key derived from passphrase.
func wrapKeyFile(pk *ProfileKey, passphrase []byte, params KDFParams, rand io.Reader) (*keyFile, error) {
	if err := params.Validate(); err != nil {
		return nil, err
	}
	if len(passphrase) == 0 {
		return nil, invalidf("empty passphrase")
	}
	kf := &keyFile{mode: modeArgon2id, params: params}
	if _, err := io.ReadFull(rand, kf.salt[:]); err != nil {
		return nil, fmt.Errorf("failed to read randomness for salt: %w", err)
	}
	if _, err := io.ReadFull(rand, kf.nonce[:]); err != nil {
		return nil, fmt.Errorf("failed to read randomness for nonce: %w", err)
	}
	kek := kf.deriveKEK(passphrase)
	defer clear(kek)
	aead, err := chacha20poly1305.NewX(kek)
	if err != nil {
		return nil, fmt.Errorf("failed to create cipher: %w", err)
	}
	copy(kf.sealed[:], aead.Seal(nil, kf.nonce[:], pk[:], kf.wrapAD()))
	return kf, nil
}

// deriveKEK runs Argon2id over the passphrase with the recorded parameters.
func (kf *keyFile) deriveKEK(passphrase []byte) []byte {
	return argon2.IDKey(passphrase, kf.salt[:], kf.params.Time, kf.params.MemoryKiB, kf.params.Threads, chacha20poly1305.KeySize)
}

// unlock returns the profile key, unwrapping it with passphrase when the file
// holds a wrapped key.
func (kf *keyFile) unlock(passphrase []byte) (ProfileKey, error) {
	var pk ProfileKey
	switch {
	case !kf.hasPassphrase() && len(passphrase) > 0:
		return pk, ErrNoPassphraseSet
	case !kf.hasPassphrase():
		return kf.plain, nil
	case len(passphrase) == 0:
		return pk, ErrPassphraseRequired
	}
	kek := kf.deriveKEK(passphrase)
	defer clear(kek)
	aead, err := chacha20poly1305.NewX(kek)
	if err != nil {
		return pk, fmt.Errorf("failed to create cipher: %w", err)
	}
	raw, err := aead.Open(nil, kf.nonce[:], kf.sealed[:], kf.wrapAD())
	if err != nil {
		return pk, ErrWrongPassphrase
	}
	copy(pk[:], raw)
	clear(raw)
	return pk, nil
}

// maxKeyFileSize bounds how much of a key file is read.
const maxKeyFileSize = 4096

// readKeyFile reads and parses dir/profile.key.
func readKeyFile(dir string) (*keyFile, error) {
	f, err := os.Open(filepath.Join(dir, KeyFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoProfile
	}
	if err != nil {
		return nil, fmt.Errorf("failed to open profile key: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read profile key: %w", err)
	}
	return parseKeyFile(data)
}

// writeKeyFile replaces dir/profile.key atomically: a crash leaves either
// the old file or the new one, never a mix.
func writeKeyFile(dir string, kf *keyFile) error {
	return writeFileAtomic(dir, KeyFileName, kf.marshal())
}

// writeFileAtomic writes data to dir/name with mode 0600 through a temporary
// file, fsyncs it, renames it into place and fsyncs the folder.
func writeFileAtomic(dir, name string, data []byte) (err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("failed to create %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("failed to restrict %s: %w", name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("failed to write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("failed to sync %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to close %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("failed to replace %s: %w", name, err)
	}
	return syncDir(dir)
}

// syncDir fsyncs a folder so a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to open profile folder: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("failed to sync profile folder: %w", err)
	}
	return nil
}

// sameKey reports whether two profile keys are equal, in constant time.
func sameKey(a, b *ProfileKey) bool { return equalBytes(a[:], b[:]) }
