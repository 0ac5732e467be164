// Package local is a KeyWrapper over a 32-byte key-encryption key kept in a
// local file (mode 0600), for `mobius serve` on one machine with no AWS.
//
// A data key is wrapped with AES-256-GCM under the file's key; the
// associated data is the encryption context, canonically encoded, so a
// wrapped key only unwraps for the version it was made for.
//
// It imports pkg/secrets and the standard library.
package local

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

const (
	keySize   = 32
	nonceSize = 12
	// wrapped form: 'L' 0x01 | nonce | GCM(dek)
	magic0, magic1 = 'L', 0x01
)

// Wrapper wraps data keys under a local key-encryption key.
type Wrapper struct {
	aead cipher.AEAD
	rand io.Reader
	id   string
}

var _ secrets.KeyWrapper = (*Wrapper)(nil)

// New returns a Wrapper over a 32-byte key.
func New(kek []byte) (*Wrapper, error) {
	if len(kek) != keySize {
		return nil, fmt.Errorf("local key: want %d bytes, have %d", keySize, len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("mobius local key id\x00"), kek...))
	return &Wrapper{aead: aead, rand: rand.Reader, id: "local key " + hex.EncodeToString(sum[:6])}, nil
}

// KeyID names the key by a fingerprint (a one-way digest of it), so that
// messages can tell two key files apart without revealing either.
func (w *Wrapper) KeyID() string { return w.id }

// OpenFile reads the key file at path, creating it with a fresh random key
// (mode 0600, in a 0700 folder) if it does not exist. It refuses a key file
// that others can read.
func OpenFile(path string) (*Wrapper, error) {
	kek, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		kek, err = create(path)
	}
	if err != nil {
		return nil, fmt.Errorf("local key file: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("local key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("local key file %s: mode %v lets others read it; chmod 600 it", path, st.Mode().Perm())
	}
	if len(kek) != keySize {
		return nil, fmt.Errorf("local key file %s: want %d bytes, have %d", path, keySize, len(kek))
	}
	defer clear(kek)
	return New(kek)
}

func create(path string) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	kek := make([]byte, keySize)
	if _, err := io.ReadFull(rand.Reader, kek); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process made it first: use theirs.
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(kek); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return kek, f.Close()
}

// GenerateDataKey returns a fresh data key and its wrapped form.
func (w *Wrapper) GenerateDataKey(_ context.Context, ec map[string]string) ([]byte, []byte, error) {
	dek := make([]byte, keySize)
	if _, err := io.ReadFull(w.rand, dek); err != nil {
		return nil, nil, err
	}
	out := make([]byte, 2+nonceSize, 2+nonceSize+keySize+w.aead.Overhead())
	out[0], out[1] = magic0, magic1
	if _, err := io.ReadFull(w.rand, out[2:]); err != nil {
		return nil, nil, err
	}
	out = w.aead.Seal(out, out[2:2+nonceSize], dek, contextAD(ec))
	return dek, out, nil
}

// UnwrapDataKey returns the data key in wrapped; Integrity if it fails.
func (w *Wrapper) UnwrapDataKey(_ context.Context, wrapped []byte, ec map[string]string) ([]byte, error) {
	if len(wrapped) != 2+nonceSize+keySize+w.aead.Overhead() || wrapped[0] != magic0 || wrapped[1] != magic1 {
		return nil, secrets.Errorf(secrets.Integrity, "wrapped data key is malformed")
	}
	dek, err := w.aead.Open(nil, wrapped[2:2+nonceSize], wrapped[2+nonceSize:], contextAD(ec))
	if err != nil {
		return nil, secrets.Errorf(secrets.Integrity, "wrapped data key does not open under this key and context")
	}
	return dek, nil
}

// contextAD encodes an encryption context canonically: sorted keys, each
// key and value length-prefixed.
func contextAD(ec map[string]string) []byte {
	keys := make([]string, 0, len(ec))
	for k := range ec {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b bytes.Buffer
	b.WriteString("mobius-local-kek/v1")
	for _, k := range keys {
		fmt.Fprintf(&b, "|%d:%s|%d:%s", len(k), k, len(ec[k]), ec[k])
	}
	return b.Bytes()
}
