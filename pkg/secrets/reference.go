package secrets

import (
	"strings"
)

const (
	refOpen    = "${secret:"
	escapeSeq  = "$${"
	refShown   = 80 // bytes of a malformed reference quoted in an error
	refSyntax  = "a reference has the form ${secret:NAME.KEY}, optionally with @pending, @previous or @N after KEY"
	nameSyntax = "NAME and KEY are 1-128 characters of A-Z a-z 0-9 _ -, and NAME starts with a letter or digit"
)

// Limits of one JSON document of references (a resolve input, a
// reference check): nesting of objects and arrays, and references,
// repeats included.
const (
	MaxReferenceDepth = 64
	MaxReferences     = 1000
)

// Ref is one well-formed reference: the key Key of the version Sel selects
// (the ENABLED one, by default) of the secret named Name.
type Ref struct {
	Name string
	Key  string
	Sel  Selector
}

// String returns the reference as it is written.
func (r Ref) String() string {
	s := refOpen + r.Name + "." + r.Key
	if sel := r.Sel.String(); sel != "" {
		s += "@" + sel
	}
	return s + "}"
}

// Want is what r asks RevealAll for.
func (r Ref) Want() Want { return Want{Name: r.Name, Sel: r.Sel} }

// MalformedRef is a reference that cannot be parsed: Text is the reference
// as written (shortened if long), Reason says what is wrong with it.
type MalformedRef struct {
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

// ParseReferences splits s into literal text and references. `${secret:NAME.KEY}` is
// a reference; `$${` is a literal `${`; a `${` not followed by `secret:` is
// left as it is. Every reference that starts with `${secret:` but is not
// well formed is returned in malformed, in order of appearance.
func ParseReferences(s string) (t *Template, malformed []MalformedRef) {
	t, malformed, _ = ParseReferencesUpTo(s, -1)
	return t, malformed
}

// ParseReferencesUpTo is ParseReferences that stops, reporting over, once s holds more than limit
// references, well formed or not (no limit if negative), so one huge
// string costs no more than the limit's worth of parts.
func ParseReferencesUpTo(s string, limit int) (t *Template, malformed []MalformedRef, over bool) {
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
				malformed = append(malformed, MalformedRef{Text: Shorten(s[i:], refShown), Reason: "unterminated: no closing }"})
				i = len(s)
				continue
			}
			body := s[i+len(refOpen) : i+len(refOpen)+end]
			text := s[i : i+len(refOpen)+end+1]
			i += len(refOpen) + end + 1
			ref, reason := parseRef(body)
			if reason != "" {
				malformed = append(malformed, MalformedRef{Text: Shorten(text, refShown), Reason: reason})
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
	key, selText, hasSel := strings.Cut(key, "@")
	sel, selOK := ParseSelector(selText)
	switch {
	case hasSel && (selText == "" || !selOK):
		return Ref{}, "the version after @ must be pending, previous or a version number"
	case !ok:
		return Ref{}, "no key; " + refSyntax
	case name == "":
		return Ref{}, "no secret name; " + refSyntax
	case key == "":
		return Ref{}, "no key; " + refSyntax
	case IsSecretID(name):
		return Ref{}, "names a secret by ID; a reference names the secret by its name"
	case !ValidName(name) || !ValidKey(key):
		return Ref{}, "invalid characters; " + nameSyntax
	}
	return Ref{Name: name, Key: key, Sel: sel}, ""
}

// EscapeReferences returns s written so that ParseReferences reads it
// back as the literal s: every `${` becomes `$${`.
func EscapeReferences(s string) string { return strings.ReplaceAll(s, "${", escapeSeq) }

// HasReference reports whether s holds a reference, well formed or not
// (`$${secret:` is an escape, not one). Resolve refuses an object key that
// holds one: keys are never substituted, and a secret must never become a
// key.
func HasReference(s string) bool {
	if !strings.Contains(s, refOpen) {
		return false
	}
	_, _, holds := ParseReferencesUpTo(s, 0) // stops at the first reference
	return holds
}
