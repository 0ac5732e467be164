package secrets_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// FuzzParseReferences checks, for any string: every reference found is well formed;
// a string without `${` parses to itself; a string without escapes or
// malformed references renders back to itself when each reference is
// replaced by its own text; and Escape(s) always parses back to the
// literal s.
func FuzzParseReferences(f *testing.F) {
	for _, s := range []string{
		"", "plain", "${secret:a.b}", "x ${secret:a.b} y ${secret:c-d.e_f}", "$${secret:a.b}", "$$${secret:a.b}",
		"${secret:}", "${secret:a}", "${secret:a.b", "${secret:a b.c}", "${HOME}", "${", "$", "$$", "}",
		"${secret:a.b}${secret:a.b}", "${secret:${secret:a.b}}", "é${secret:é.b}", "${secret:a.b.c}",
		"${secret:sec_01HZZZZZZZZZZZZZZZZZZZZZZZ.k}", "\x00${secret:a.b}\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tmpl, malformed := secrets.ParseReferences(s)
		for _, r := range tmpl.Refs() {
			if !secrets.ValidName(r.Name) || !secrets.ValidKey(r.Key) {
				t.Fatalf("Parse(%q) found an invalid reference %+v", s, r)
			}
		}
		for _, m := range malformed {
			if !strings.HasPrefix(m.Text, "${secret:") || m.Reason == "" || len(m.Text) > 80+len("…") {
				t.Fatalf("Parse(%q): malformed %+v", s, m)
			}
			if utf8.ValidString(s) && !utf8.ValidString(m.Text) {
				t.Fatalf("Parse(%q): malformed text %q is not valid UTF-8", s, m.Text)
			}
		}
		if !strings.Contains(s, "${") {
			if len(malformed) != 0 || len(tmpl.Refs()) != 0 {
				t.Fatalf("Parse(%q) found references in a string without ${", s)
			}
			if got := tmpl.Render(nil); got != s {
				t.Fatalf("Parse(%q).Render = %q", s, got)
			}
		}
		out := tmpl.Render(func(r secrets.Ref) string { return "${secret:" + r.Name + "." + r.Key + "}" })
		if len(malformed) == 0 && !strings.Contains(s, "$${") && out != s {
			t.Fatalf("Parse(%q) rendered as itself gives %q", s, out)
		}
		if again, _ := secrets.ParseReferences(out); len(malformed) == 0 && !strings.Contains(s, "$${") && len(again.Refs()) != len(tmpl.Refs()) {
			t.Fatalf("Parse(%q): %d refs, rendered as itself %d", s, len(tmpl.Refs()), len(again.Refs()))
		}
		esc, mal3 := secrets.ParseReferences(secrets.EscapeReferences(s))
		if len(mal3) != 0 || len(esc.Refs()) != 0 || esc.Render(nil) != s {
			t.Fatalf("Parse(Escape(%q)) = %q with %d refs, %d malformed", s, esc.Render(nil), len(esc.Refs()), len(mal3))
		}
	})
}

// FuzzHasReference checks HasReference against ParseReferences: a
// string holds a reference exactly when ParseReferences finds one, well
// formed or malformed.
func FuzzHasReference(f *testing.F) {
	for _, s := range []string{"", "k", "${secret:a.b}", "$${secret:a.b}", "$$${secret:a.b}", "${secret:", "x${secret:a b}y", "${HOME}", "$${", "${secret:a.b}$${secret:c.d}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tmpl, malformed := secrets.ParseReferences(s)
		if want := len(tmpl.Refs())+len(malformed) > 0; secrets.HasReference(s) != want {
			t.Fatalf("secrets.HasReference(%q) = %v; Parse finds %d references, %d malformed", s, !want, len(tmpl.Refs()), len(malformed))
		}
	})
}
