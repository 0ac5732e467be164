// Package envelope seals a plaintext with AES-256-GCM under a data key, and
// frames the result together with the data key in its wrapped form, so that
// one byte string carries everything needed to open it again, given the
// key that unwraps the data key.
//
// Framing, version 1:
//
//	0x01 | uint16 big-endian len(wrapped) | wrapped | 12-byte nonce | GCM ciphertext and tag
//
// The GCM associated data is the caller's associated data followed by the
// frame header (version, length and wrapped key), so neither the binding
// nor the wrapped key can be swapped without Open failing.
//
// It imports only the standard library.
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"io"
)

const (
	version1  = 0x01
	nonceSize = 12
	tagSize   = 16
	// KeySize is the size of a data key: AES-256.
	KeySize = 32
	// MaxWrappedKey bounds the wrapped-key field.
	MaxWrappedKey = 4096
)

// ErrMalformed reports a byte string that is not a version-1 envelope.
var ErrMalformed = errors.New("envelope: malformed")

// ErrOpen reports a failed authentication: wrong key, wrong associated data,
// or altered bytes.
var ErrOpen = errors.New("envelope: authentication failed")

// Envelope is a parsed frame.
type Envelope struct {
	WrappedKey []byte
	header     []byte
	nonce      []byte
	sealed     []byte
}

// Seal encrypts plaintext under dek (32 bytes) with a random nonce read from
// rand, binding it to aad, and frames it with wrapped.
func Seal(rand io.Reader, dek, wrapped, aad, plaintext []byte) ([]byte, error) {
	if len(dek) != KeySize {
		return nil, errors.New("envelope: data key must be 32 bytes")
	}
	if len(wrapped) == 0 || len(wrapped) > MaxWrappedKey {
		return nil, errors.New("envelope: wrapped key size out of range")
	}
	gcm, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	hlen := 3 + len(wrapped)
	out := make([]byte, hlen+nonceSize, hlen+nonceSize+len(plaintext)+tagSize)
	out[0] = version1
	binary.BigEndian.PutUint16(out[1:3], uint16(len(wrapped)))
	copy(out[3:], wrapped)
	nonce := out[hlen : hlen+nonceSize]
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(out, nonce, plaintext, associated(aad, out[:hlen])), nil
}

// Parse checks the framing of b and returns the envelope. It does not
// authenticate anything: Open does.
func Parse(b []byte) (*Envelope, error) {
	if len(b) < 3 || b[0] != version1 {
		return nil, ErrMalformed
	}
	n := int(binary.BigEndian.Uint16(b[1:3]))
	if n == 0 || n > MaxWrappedKey || len(b) < 3+n+nonceSize+tagSize {
		return nil, ErrMalformed
	}
	hlen := 3 + n
	return &Envelope{
		WrappedKey: b[3:hlen],
		header:     b[:hlen],
		nonce:      b[hlen : hlen+nonceSize],
		sealed:     b[hlen+nonceSize:],
	}, nil
}

// Open authenticates and decrypts the envelope with dek and aad.
func (e *Envelope) Open(dek, aad []byte) ([]byte, error) {
	if len(dek) != KeySize {
		return nil, ErrOpen
	}
	gcm, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	pt, err := gcm.Open(nil, e.nonce, e.sealed, associated(aad, e.header))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func associated(aad, header []byte) []byte {
	out := make([]byte, 0, 4+len(aad)+len(header))
	out = binary.BigEndian.AppendUint32(out, uint32(len(aad)))
	out = append(out, aad...)
	return append(out, header...)
}
