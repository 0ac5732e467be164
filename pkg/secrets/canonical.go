package secrets

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// Canonical returns the RFC 8785 (JSON Canonicalization Scheme) form of a
// values object: members sorted by the UTF-16 code units of their names,
// strings escaped as ECMAScript's JSON.stringify does, no white space.
// Invalid UTF-8 is replaced by U+FFFD, as a JSON decoder would.
func Canonical(values map[string]string) []byte {
	keys := make([]string, 0, len(values))
	size := 2
	for k, v := range values {
		keys = append(keys, k)
		size += len(k) + len(v) + 6
	}
	slices.SortFunc(keys, compareUTF16)
	b := make([]byte, 0, size)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, values[k])
	}
	return append(b, '}')
}

// Digest returns the lowercase hex SHA-256 of Canonical(values).
func Digest(values map[string]string) string {
	sum := sha256.Sum256(Canonical(values))
	return hex.EncodeToString(sum[:])
}

// compareUTF16 orders strings by their UTF-16 code units, as RFC 8785 asks.
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		a, b = a[na:], b[nb:]
		if ra == rb {
			continue
		}
		ua, ub := units(ra), units(rb)
		for i := 0; i < len(ua) && i < len(ub); i++ {
			if ua[i] != ub[i] {
				return int(ua[i]) - int(ub[i])
			}
		}
		return len(ua) - len(ub)
	}
	return len(a) - len(b)
}

func units(r rune) []uint16 {
	if r >= 0x10000 {
		r1, r2 := utf16.EncodeRune(r)
		return []uint16{uint16(r1), uint16(r2)}
	}
	return []uint16{uint16(r)}
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s to b as a JSON string literal, as encoding/json
// writes it with HTML escaping off: <, > and & stay literal, U+2028 and
// U+2029 are escaped, and invalid UTF-8 becomes the escape \ufffd. It is
// the form of every JSON string written outside Canonical, which writes
// RFC 8785's: ECMAScript's escaping, where U+2028 and U+2029 stay literal
// and invalid UTF-8 becomes a literal U+FFFD, so that a digest is of
// exactly what a JCS implementation would produce.
func AppendJSONString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// appendString appends s as an RFC 8785 string (see AppendJSONString).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"':
				b = append(b, '\\', '"')
			case c == '\\':
				b = append(b, '\\', '\\')
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// sortedKeys returns the keys of values in byte order.
func sortedKeys(values map[string]string) []string {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
