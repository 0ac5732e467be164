package secrets

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of the contract.
const (
	MaxNameLen        = 128
	MaxKeyLen         = 128
	MaxDescriptionLen = 1024
	MaxPlaintext      = 64 << 10 // canonical plaintext of one version
	MaxProjectLen     = 64
	DefaultPageSize   = 50
	MaxPageSize       = 1000
	// MaxPageBytes bounds the stored records one page of a list holds
	// (at least one record, however large): a page of 1,000 secrets with
	// 64 labels each would otherwise outgrow a Lambda response (6 MB). A
	// page cut short by it still says that more follow.
	MaxPageBytes = 1 << 20
	MaxRunBytes  = 4 << 10 // the run object of a resolve call
)

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ValidName reports whether s is a valid secret name: 1-128 characters of
// A-Z a-z 0-9 _ -, starting with a letter or digit, and not shaped like a
// secret ID (so a reference is never ambiguous).
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen || !isAlnum(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return !IsSecretID(s)
}

// ValidKey reports whether s is a valid value key: 1-128 characters of
// A-Z a-z 0-9 _ -.
func ValidKey(s string) bool {
	if len(s) == 0 || len(s) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

// ValidProject reports whether s is a valid project handle: 1-64 characters
// of A-Z a-z 0-9 _ -, starting with a letter or digit.
func ValidProject(s string) bool {
	if len(s) == 0 || len(s) > MaxProjectLen || !isAlnum(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

func validateName(field, name string) error {
	if !ValidName(name) {
		if IsSecretID(name) {
			return FieldErrorf(Invalid, field, "%s must not have the form of a secret ID", field)
		}
		return FieldErrorf(Invalid, field, "%s must be 1-128 characters of A-Z a-z 0-9 _ -, starting with a letter or digit", field)
	}
	return nil
}

func validateDescription(d string) error {
	if !utf8.ValidString(d) {
		return FieldErrorf(Invalid, "description", "description must be valid UTF-8")
	}
	if utf8.RuneCountInString(d) > MaxDescriptionLen {
		return FieldErrorf(Invalid, "description", "description must be at most %d characters", MaxDescriptionLen)
	}
	if strings.ContainsFunc(d, textControl) {
		return FieldErrorf(Invalid, "description", "description must not contain control characters other than tab and line breaks")
	}
	return nil
}

// textControl reports the control characters (C0, DEL, C1) that free text
// may not hold: they can drive the terminal of whoever reads it (escape
// sequences, bells). Tab and line breaks are text.
func textControl(r rune) bool {
	return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r'
}

// ValidateValues checks a values object and returns its canonical form.
func ValidateValues(values map[string]string) ([]byte, error) {
	if len(values) == 0 {
		return nil, FieldErrorf(Invalid, "values", "values must be a non-empty object of string values")
	}
	for k := range values {
		if !ValidKey(k) {
			return nil, FieldErrorf(Invalid, "values", "value key %q must be 1-128 characters of A-Z a-z 0-9 _ -", Shorten(k, 40))
		}
	}
	c := Canonical(values)
	if len(c) > MaxPlaintext {
		return nil, FieldErrorf(TooLarge, "values", "values are %d bytes in canonical form; the limit is %d", len(c), MaxPlaintext)
	}
	return c, nil
}

// Shorten cuts s to at most n bytes for quoting in a message, marking the
// cut with "…" (so the result is at most n+3 bytes). The cut falls on a rune
// boundary: it backs off over at most one incomplete UTF-8 sequence, never
// over a run of invalid bytes, which are the continuation of nothing. It is
// for names, keys, IDs and references, never for a value.
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n = max(n, 0)
	for i := 1; i < utf8.UTFMax && n > 0 && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	return s[:n] + "…"
}

// pageBytes counts the bytes of the records a page holds, against
// MaxPageBytes.
type pageBytes int

// full reports whether a record of n bytes would take a page that holds
// have records past MaxPageBytes; if not, it counts the record.
func (b *pageBytes) full(n, have int) bool {
	if have > 0 && int(*b)+n > MaxPageBytes {
		return true
	}
	*b += pageBytes(n)
	return false
}
