package secrets_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// The validation rules restated as regular expressions, independently of
// the hand-written scanners in validate.go and id.go.
var (
	nameRE     = regexp.MustCompile(`\A[A-Za-z0-9][A-Za-z0-9_-]{0,127}\z`)
	keyRE      = regexp.MustCompile(`\A[A-Za-z0-9_-]{1,128}\z`)
	projectRE  = regexp.MustCompile(`\A[A-Za-z0-9][A-Za-z0-9_-]{0,63}\z`)
	secretIDRE = regexp.MustCompile(`\Asec_[0-7][0-9A-HJKMNP-TV-Z]{25}\z`)
)

func validationSeeds(f *testing.F) {
	for _, s := range []string{
		"", "a", "A", "0", "_a", "-a", "db-password", "db_password", "a.b", "a b", "é",
		"sec_01J9Z8Y7X6W5V4T3S2R1Q0P9N8", "sec_81J9Z8Y7X6W5V4T3S2R1Q0P9N8", "sec_01J9Z8Y7X6W5V4T3S2R1Q0P9NI",
		"sec_01j9z8y7x6w5v4t3s2r1q0p9n8", "sec_", strings.Repeat("a", 128), strings.Repeat("a", 129),
		strings.Repeat("b", 64), strings.Repeat("b", 65), "a\x00", "a\n", "ab\u00e9", "${secret:a.b}",
	} {
		f.Add(s)
	}
}

// FuzzValidName checks ValidName, ValidKey and ValidProject against
// regular expressions of the same rules, on any string.
func FuzzValidName(f *testing.F) {
	validationSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		wantName := nameRE.MatchString(s) && !secretIDRE.MatchString(s)
		if got := secrets.ValidName(s); got != wantName {
			t.Fatalf("ValidName(%q) = %v, want %v", s, got, wantName)
		}
		if got, want := secrets.ValidKey(s), keyRE.MatchString(s); got != want {
			t.Fatalf("ValidKey(%q) = %v, want %v", s, got, want)
		}
		if got, want := secrets.ValidProject(s), projectRE.MatchString(s); got != want {
			t.Fatalf("ValidProject(%q) = %v, want %v", s, got, want)
		}
		if got, want := secrets.IsSecretID(s), secretIDRE.MatchString(s); got != want {
			t.Fatalf("IsSecretID(%q) = %v, want %v", s, got, want)
		}
	})
}
