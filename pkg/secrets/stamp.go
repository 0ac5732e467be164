package secrets

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// stamp is an instant as a record stores it: Unix milliseconds, a JSON
// integer (13 digits, where the RFC 3339 string records held before this
// took 26 bytes with its quotes). Every instant the service stores is
// whole milliseconds (Service.Now and validateDate truncate, and
// durations added to them are whole seconds); one that is not is stored
// as before, an RFC 3339 string, so that no instant changes by being
// stored. Decoding reads both forms: data files written before keep
// working. The zero instant is omitted where the field is omitzero
// (stamp has time.Time's IsZero), and otherwise round-trips as the zero
// instant.
type stamp struct{ time.Time }

// at is t as a record stores it.
func at(t time.Time) stamp { return stamp{t} }

func (t stamp) MarshalJSON() ([]byte, error) {
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		return t.Time.MarshalJSON()
	}
	return strconv.AppendInt(nil, t.UnixMilli(), 10), nil
}

func (t *stamp) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && (b[0] == '"' || b[0] == 'n') {
		// The RFC 3339 string of older records (or null, which leaves t
		// as it is, as for a time.Time).
		return t.Time.UnmarshalJSON(b)
	}
	ms, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return &time.ParseError{Layout: "Unix milliseconds", Value: string(b), Message: ": not an instant"}
	}
	t.Time = time.UnixMilli(ms).UTC()
	return nil
}

// digest is a version's SHA-256 as a record stores it: the 32 bytes in
// unpadded URL-safe base64 (43 characters) rather than the 64 of the
// lowercase hex the domain uses (Version.SHA256). Anything else than 64
// lowercase hex digits (the empty string of an event that names no
// version) is stored as it is. Decoding turns 43 characters of base64
// back into hex and keeps any other string as it is, so that the hex of
// records written before keeps working; digestBytes only makes hex, so a
// string stored as it is never has 43 characters.
type digest string

var digestEncoding = base64.RawURLEncoding.Strict()

func (d digest) MarshalText() ([]byte, error) {
	if len(d) == 2*32 && isLowerHex(string(d)) {
		var sum [32]byte
		hex.Decode(sum[:], []byte(d))
		return digestEncoding.AppendEncode(nil, sum[:]), nil
	}
	return []byte(d), nil
}

func (d *digest) UnmarshalText(b []byte) error {
	if len(b) == digestEncoding.EncodedLen(32) {
		var sum [32]byte
		if n, err := digestEncoding.Decode(sum[:], b); err == nil && n == 32 {
			*d = digest(hex.EncodeToString(sum[:]))
			return nil
		}
	}
	*d = digest(b)
	return nil
}

func isLowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CBOR, the form records are written in (records.go): an instant of whole
// milliseconds is its Unix milliseconds as an integer (9 bytes), any other
// one its RFC 3339 string, exactly as in JSON.

func (t stamp) MarshalCBOR() ([]byte, error) {
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		b, err := t.Time.MarshalText()
		if err != nil {
			return nil, err
		}
		return recordEnc.Marshal(string(b))
	}
	return recordEnc.Marshal(t.UnixMilli())
}

func (t *stamp) UnmarshalCBOR(b []byte) error {
	switch major(b) {
	case cborUint, cborNegInt:
		var ms int64
		if err := recordDec.Unmarshal(b, &ms); err != nil {
			return err
		}
		t.Time = time.UnixMilli(ms).UTC()
		return nil
	case cborText:
		var s string
		if err := recordDec.Unmarshal(b, &s); err != nil {
			return err
		}
		return t.Time.UnmarshalText([]byte(s))
	}
	return &time.ParseError{Layout: "Unix milliseconds", Value: fmt.Sprintf("%x", b), Message: ": not an instant"}
}

// A digest of 64 lowercase hex digits is stored as its 32 bytes, a CBOR
// byte string; anything else as the text it is.

func (d digest) MarshalCBOR() ([]byte, error) {
	if len(d) == 2*32 && isLowerHex(string(d)) {
		var sum [32]byte
		hex.Decode(sum[:], []byte(d))
		return recordEnc.Marshal(sum[:])
	}
	return recordEnc.Marshal(string(d))
}

func (d *digest) UnmarshalCBOR(b []byte) error {
	switch major(b) {
	case cborBytes:
		var sum []byte
		if err := recordDec.Unmarshal(b, &sum); err != nil {
			return err
		}
		if len(sum) != 32 {
			return fmt.Errorf("a digest of %d bytes", len(sum))
		}
		*d = digest(hex.EncodeToString(sum))
		return nil
	case cborText:
		var s string
		if err := recordDec.Unmarshal(b, &s); err != nil {
			return err
		}
		*d = digest(s)
		return nil
	}
	return fmt.Errorf("a digest that is neither bytes nor text")
}
