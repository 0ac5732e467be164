package resolve

import (
	"strings"
	"unicode/utf8"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

const (
	refOpen    = "${secret:"
	escapeSeq  = "$${"
	maxShown   = 80 // bytes of a malformed reference quoted in an error
	refSyntax  = "a reference has the form ${secret:NAME.KEY}"
	nameSyntax = "NAME and KEY are 1-128 characters of A-Z a-z 0-9 _ -, and NAME starts with a letter or digit"
)

// Ref is one well-formed reference: the key Key of the ENABLED version of
// the secret named Name.
type Ref struct {
	Name string
	Key  string
}

// String returns the reference as it is written.
func (r Ref) String() string { return refOpen + r.Name + "." + r.Key + "}" }

// Malformed is a reference that cannot be parsed: Text is the reference
// as written (shortened if long), Reason says what is wrong with it.
type Malformed struct {
	Text   string
	Reason string
}

// Template is a parsed string: literal text and references, in order.
type Template struct {
	parts []part
}

type part struct {
	lit string
	ref *Ref
}

// Refs returns the well-formed references of t, in order of appearance,
// repeats included.
func (t *Template) Refs() []Ref {
	var out []Ref
	for _, p := range t.parts {
		if p.ref != nil {
			out = append(out, *p.ref)
		}
	}
	return out
}

// Len is the length in bytes of what Render would return, without building
// it.
func (t *Template) Len(value func(Ref) string) int {
	n := 0
	for _, p := range t.parts {
		if p.ref != nil {
			n += len(value(*p.ref))
		} else {
			n += len(p.lit)
		}
	}
	return n
}

// Render returns the string with every reference replaced by value(ref)
// and every escape `$${` turned into `${`.
func (t *Template) Render(value func(Ref) string) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.ref != nil {
			b.WriteString(value(*p.ref))
		} else {
			b.WriteString(p.lit)
		}
	}
	return b.String()
}

// Parse splits s into literal text and references. `${secret:NAME.KEY}` is
// a reference; `$${` is a literal `${`; a `${` not followed by `secret:` is
// left as it is. Every reference that starts with `${secret:` but is not
// well formed is returned in malformed, in order of appearance.
func Parse(s string) (t *Template, malformed []Malformed) {
	t, malformed, _ = parse(s, -1)
	return t, malformed
}

// parse is Parse that stops, reporting over, once s holds more than limit
// references, well formed or not (no limit if negative), so one huge
// string costs no more than the limit's worth of parts.
func parse(s string, limit int) (t *Template, malformed []Malformed, over bool) {
	t = &Template{}
	seen := 0
	found := func() bool {
		seen++
		return limit >= 0 && seen > limit
	}
	if !strings.Contains(s, "${") {
		if s != "" {
			t.parts = []part{{lit: s}}
		}
		return t, nil, false
	}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], escapeSeq):
			lit.WriteString("${")
			i += len(escapeSeq)
		case strings.HasPrefix(s[i:], refOpen):
			end := strings.IndexByte(s[i+len(refOpen):], '}')
			if found() {
				return t, malformed, true
			}
			if end < 0 {
				malformed = append(malformed, Malformed{Text: shorten(s[i:]), Reason: "unterminated: no closing }"})
				i = len(s)
				continue
			}
			body := s[i+len(refOpen) : i+len(refOpen)+end]
			text := s[i : i+len(refOpen)+end+1]
			i += len(refOpen) + end + 1
			ref, reason := parseRef(body)
			if reason != "" {
				malformed = append(malformed, Malformed{Text: shorten(text), Reason: reason})
				continue
			}
			flush()
			t.parts = append(t.parts, part{ref: &ref})
		default:
			lit.WriteByte(s[i])
			i++
		}
	}
	flush()
	return t, malformed, false
}

func parseRef(body string) (Ref, string) {
	if body == "" {
		return Ref{}, "empty; " + refSyntax
	}
	name, key, ok := strings.Cut(body, ".")
	switch {
	case !ok:
		return Ref{}, "no key; " + refSyntax
	case name == "":
		return Ref{}, "no secret name; " + refSyntax
	case key == "":
		return Ref{}, "no key; " + refSyntax
	case secrets.IsSecretID(name):
		return Ref{}, "names a secret by ID; a reference names the secret by its name"
	case !secrets.ValidName(name) || !secrets.ValidKey(key):
		return Ref{}, "invalid characters; " + nameSyntax
	}
	return Ref{Name: name, Key: key}, ""
}

// Escape returns s written so that Parse reads it back as the literal s:
// every `${` becomes `$${`.
func Escape(s string) string { return strings.ReplaceAll(s, "${", escapeSeq) }

// shorten cuts a reference quoted in an error message to maxShown bytes,
// on a rune boundary.
func shorten(s string) string {
	if len(s) <= maxShown {
		return s
	}
	// Back off over at most one incomplete UTF-8 sequence: invalid bytes
	// are not continuation of anything, and walking back over a run of them
	// would cut into the "${secret:" that every quoted reference starts with.
	n := maxShown
	for i := 1; i < utf8.UTFMax && n > 0 && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	return s[:n] + "…"
}
