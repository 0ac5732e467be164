package secrets

import (
	"crypto/rand"
	"encoding/binary"
	"io"
	"time"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewULID returns a 26-character ULID (Crockford base32) for time t with 80
// bits read from r (crypto/rand if nil).
func NewULID(t time.Time, r io.Reader) string {
	var out [26]byte
	return string(AppendULID(out[:0], t, r))
}

// AppendULID appends the 26 characters of NewULID(t, r) to dst.
func AppendULID(dst []byte, t time.Time, r io.Reader) []byte {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	if r == nil {
		rand.Read(b[6:]) // never fails, and keeps b off the heap
	} else {
		// As crypto/rand.Read does: escape analysis cannot see through r,
		// so it reads into a heap buffer of its own.
		rnd := make([]byte, len(b)-6)
		if _, err := io.ReadFull(r, rnd); err != nil {
			panic("secrets: reading randomness: " + err.Error())
		}
		copy(b[6:], rnd)
	}
	// 128 bits in 26 base32 digits: the first digit carries 3 bits.
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return append(dst, out[:]...)
}

// IsSecretID reports whether s has the form of a secret ID: "sec_" and 26
// Crockford base32 characters.
func IsSecretID(s string) bool {
	return hasULID(s, "sec_")
}

// IsAPIKeyID reports whether s has the form of an API key ID.
func IsAPIKeyID(s string) bool { return hasULID(s, "key_") }

func hasULID(s, prefix string) bool {
	if len(s) != len(prefix)+26 || s[:len(prefix)] != prefix {
		return false
	}
	if s[len(prefix)] > '7' {
		return false
	}
	for i := len(prefix); i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U') {
			return false
		}
	}
	return true
}
