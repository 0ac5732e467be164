// Package resolve substitutes secret references in a loop runner's action
// parameters: the logic of the resolve function. In every string of the
// input, at any depth, `${secret:NAME.KEY}` becomes that key's plaintext in
// the ENABLED version of the secret NAME, and `$${` becomes a literal `${`.
// Either every reference resolves, or the call fails as a whole with an
// *Error that names every failing reference; there is no partial output.
// Each secret read is recorded in the resolution audit, without its value.
//
// Object keys are never substituted nor unescaped: a key is written out
// exactly as it was sent, so `$${` in a key stays `$${` and is no
// reference. A key is never a place for a reference either: a key that
// holds `${secret:` (not escaped as `$${secret:`), whether the reference is
// well formed or not, fails the whole call with BadRequest naming the key
// by its JSON Pointer (RFC 6901, shortened if long), before any secret is
// read; nothing is substituted or audited.
//
// The event and its input are read strictly (internal/strictjson): a
// member named twice in any object at any depth, a string that is not
// valid Unicode (invalid UTF-8, a lone surrogate escape such as `\ud800`)
// or an event field named in another case (`Project`) is BadRequest naming
// the field or the JSON path, never quoting a value. The output keeps the
// input's member order and the text of every number, literal, key and
// unchanged string as it was sent; only white space and the strings that
// held references or escapes differ.
//
// It imports pkg/secrets, internal/strictjson, the jsontext package
// of github.com/go-json-experiment/json and the standard library; the
// Lambda function in functions/resolve turns an *Error into the function
// error whose errorType is Error.Type.
package resolve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mobius-secrets/mobius/internal/strictjson"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// Limits of one invocation.
const (
	MaxInputBytes = 1 << 20                   // the input, as JSON
	MaxDepth      = secrets.MaxReferenceDepth // nesting of objects and arrays in the input
	MaxReferences = secrets.MaxReferences     // references in the input, repeats included
	// MaxResponseBytes bounds the whole result, output and resolved list: a
	// Lambda response is at most 6 MB (6,291,456 bytes).
	MaxResponseBytes = 6 << 20
	MaxRunBytes      = secrets.MaxRunBytes
)

// Error types: the errorType of the resolve function's error.
const (
	TypeBadRequest   = "BadRequest"   // malformed event or reference, or a limit exceeded
	TypeUnauthorized = "Unauthorized" // no grant, or one that is invalid, expired or revoked
	TypeForbidden    = "Forbidden"    // a reference to a secret the grant does not cover
	TypeNotFound     = "NotFound"     // a covered secret's key, or its ENABLED version, is missing
	TypeUnavailable  = "Unavailable"  // the store or the key service failed; try again
	TypeInternal     = "Internal"
)

// Error is the failure of an invocation. Message is safe to log and to
// return: it names secrets and keys, never a value.
type Error struct {
	Type    string
	Message string
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

func errorf(typ, format string, args ...any) *Error {
	return &Error{Type: typ, Message: fmt.Sprintf(format, args...)}
}

// Event is one invocation: the resolve grant that authorizes it (minted for
// the run by POST /v1/projects/{project}/resolve-grants), the input to
// substitute, and optionally the caller's step identifiers (a JSON object
// kept in the audit, marked as given by the caller) and the project, which
// must then be the grant's.
type Event struct {
	Grant   string          `json:"grant"`
	Project string          `json:"project,omitempty"`
	Input   json.RawMessage `json:"input"`
	Step    json.RawMessage `json:"step,omitempty"`
}

// Result is the substituted input and what was read to make it.
type Result struct {
	Output   json.RawMessage `json:"output"`
	Resolved []Resolved      `json:"resolved"`
}

// Resolved names one key that was substituted, and the version it came
// from: a runner can pin the steps of a run to it with @N.
type Resolved struct {
	Secret  string `json:"secret"`
	Key     string `json:"key"`
	Version int    `json:"version"`
	// Selector is what followed @ in the reference ("" for none).
	Selector string `json:"selector,omitempty"`
}

// Resolver resolves references with a Service. It is safe for concurrent
// use.
type Resolver struct {
	svc *secrets.Service
	log *slog.Logger
}

// New returns a Resolver over svc; logger may be nil (slog.Default).
func New(svc *secrets.Service, logger *slog.Logger) *Resolver {
	if logger == nil {
		logger = slog.Default()
	}
	return &Resolver{svc: svc, log: logger}
}

// DecodeEvent reads an event from a raw invocation payload, strictly
// (internal/strictjson). BadRequest if it is not one JSON object with
// only the fields grant, input, step and project, named exactly; if any object in
// it, at any depth, names a member twice; or if any string in it is not
// valid Unicode (invalid UTF-8, a lone surrogate escape). The message names
// the field or the JSON path, never a value.
func DecodeEvent(payload []byte) (Event, error) {
	var ev Event
	if len(payload) > MaxInputBytes+MaxRunBytes+4096 {
		return ev, errorf(TypeBadRequest, "the event is %d bytes; the input may be at most %d bytes", len(payload), MaxInputBytes)
	}
	if err := strictjson.Unmarshal(payload, &ev); err != nil {
		return Event{}, eventError(err)
	}
	return ev, nil
}

const eventShape = `the event must be a JSON object {"grant", "input", "step"?, "project"?}`

// eventError describes a strict decoding error of an event, without
// quoting the event.
func eventError(err error) *Error {
	var e *strictjson.Error
	if !errors.As(err, &e) {
		return errorf(TypeBadRequest, "%s: invalid JSON", eventShape)
	}
	topLevelDuplicate := e.Kind == strictjson.DuplicateName && e.Pointer.Parent() == ""
	if f := e.Field(); (f == "input" || f == "step") && !topLevelDuplicate {
		// A problem inside input or step: named by its path there.
		rel := *e
		rel.Pointer = jsontext.Pointer(strings.TrimPrefix(string(e.Pointer), "/"+f))
		if msg := strictProblem(f, &rel); msg != "" {
			return errorf(TypeBadRequest, "%s", msg)
		}
	}
	field := truncateName(e.Field())
	var what string
	switch e.Kind {
	case strictjson.UnknownName:
		what = fmt.Sprintf("unknown field %q", truncateName(e.Name()))
		for _, known := range []string{"grant", "input", "step", "project"} {
			if strings.EqualFold(known, e.Name()) {
				what += fmt.Sprintf(" (field names match exactly, case included: %q)", known)
			}
		}
	case strictjson.DuplicateName:
		what = fmt.Sprintf("field %q appears more than once", truncateName(e.Name()))
	case strictjson.InvalidUTF8, strictjson.LoneSurrogate:
		if e.Pointer == "" {
			what = "a field name holds " + unicodeProblem(e.Kind)
		} else {
			what = fmt.Sprintf("field %q is not valid Unicode: it holds %s", field, unicodeProblem(e.Kind))
		}
	case strictjson.WrongType:
		if e.Pointer == "" {
			what = "it is " + strictjson.Article(e.Got)
		} else {
			what = fmt.Sprintf("field %q must be a %s", field, e.Want)
		}
	case strictjson.Trailing:
		return errorf(TypeBadRequest, "the event must be one JSON object")
	case strictjson.Truncated:
		what = "invalid JSON: it ends early"
	default:
		what = fmt.Sprintf("invalid JSON at byte %d", e.Offset)
	}
	return errorf(TypeBadRequest, "%s: %s", eventShape, what)
}

// strictProblem describes a strictness problem found in input or run (the
// subject), with its pointer relative to the subject; "" for any other
// kind of problem.
func strictProblem(subject string, e *strictjson.Error) string {
	switch e.Kind {
	case strictjson.DuplicateName:
		in := "its top-level object"
		if p := e.Pointer.Parent(); p != "" {
			in = "the object at " + strictjson.Where(p)
		}
		return fmt.Sprintf("%s is not strict JSON: member %q appears more than once in %s", subject, truncateName(e.Name()), in)
	case strictjson.InvalidUTF8, strictjson.LoneSurrogate:
		at := "its top-level value"
		if e.Pointer != "" {
			at = "the value at " + strictjson.Where(e.Pointer)
		}
		return fmt.Sprintf("%s is not strict JSON: a string in %s holds %s", subject, at, unicodeProblem(e.Kind))
	case strictjson.TooDeep:
		if subject == "input" {
			return fmt.Sprintf("input is nested more than %d levels deep", MaxDepth)
		}
		return subject + " is nested too deeply"
	}
	return ""
}

func unicodeProblem(k strictjson.Kind) string {
	if k == strictjson.LoneSurrogate {
		return `a lone UTF-16 surrogate escape (\uD800-\uDFFF without its pair)`
	}
	return "bytes that are not UTF-8"
}

// truncateName shortens a member name (never a value) for a message.
func truncateName(s string) string { return strictjson.Shorten(s, 64) }

// Invoke decodes payload as an Event and resolves it.
func (r *Resolver) Invoke(ctx context.Context, payload []byte) (*Result, error) {
	ev, err := DecodeEvent(payload)
	if err != nil {
		r.log.WarnContext(ctx, "resolve failed", "error_type", TypeBadRequest, "error", err.(*Error).Message)
		return nil, err
	}
	return r.Resolve(ctx, ev)
}

// Resolve substitutes every reference in ev.Input, reading only what
// ev.Grant covers. It fails with an *Error: Unauthorized without a valid
// grant; BadRequest for a malformed event or reference or a limit
// exceeded; Forbidden for references to secrets the grant does not cover;
// NotFound when a covered reference does not resolve (the last three list
// every failing reference, and nothing is substituted); Unavailable when
// the store or key service failed.
func (r *Resolver) Resolve(ctx context.Context, ev Event) (*Result, error) {
	res, info, err := r.resolve(ctx, ev)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Type: TypeInternal, Message: "internal error"}
		}
		level := slog.LevelWarn
		if e.Type == TypeUnavailable || e.Type == TypeInternal {
			level = slog.LevelError
		}
		r.log.Log(ctx, level, "resolve failed", "project", info.project, "grant_id", info.grantID, "error_type", e.Type, "error", e.Message)
		return nil, e
	}
	r.log.InfoContext(ctx, "resolved", "project", info.project, "grant_id", info.grantID, "references", len(res.Resolved), "secrets", info.read)
	return res, nil
}

// callInfo is what the log says of a call: never the grant string.
type callInfo struct {
	project, grantID string
	read             []string
}

func (r *Resolver) resolve(ctx context.Context, ev Event) (*Result, callInfo, error) {
	var info callInfo
	if ev.Project != "" && !secrets.ValidProject(ev.Project) {
		return nil, info, errorf(TypeBadRequest, "project must be 1-%d characters of A-Z a-z 0-9 _ -, starting with a letter or digit", secrets.MaxProjectLen)
	}
	g, err := r.svc.VerifyGrant(ctx, ev.Grant)
	if err != nil {
		return nil, info, serviceError(err)
	}
	info.project, info.grantID = g.Project, g.ID
	if ev.Project != "" && ev.Project != g.Project {
		return nil, info, errorf(TypeUnauthorized, "the resolve grant is for another project than the event names")
	}
	step, err := secrets.CompactObject("step", ev.Step, MaxRunBytes)
	if err != nil {
		return nil, info, serviceError(err)
	}
	if len(ev.Input) == 0 {
		return nil, info, errorf(TypeBadRequest, "input is required")
	}
	if len(ev.Input) > MaxInputBytes {
		return nil, info, errorf(TypeBadRequest, "input is %d bytes; the limit is %d", len(ev.Input), MaxInputBytes)
	}
	// Parse every string as it is read; collect references and malformed
	// ones, and stop as soon as there are too many.
	refs := map[secrets.Ref]bool{}
	bad := map[string]string{} // reference text -> failure
	count := 0
	var templated []*node          // the strings that hold a reference
	var refKeys []jsontext.Pointer // the member names that hold one
	root, err := decodeTree(ev.Input, MaxDepth, func(n *node) error {
		if !strings.Contains(n.text, "${") {
			return nil
		}
		t, mal, over := secrets.ParseReferencesUpTo(n.text, MaxReferences-count)
		if over {
			return errorf(TypeBadRequest, "input holds more than %d secret references", MaxReferences)
		}
		n.tmpl = t
		templated = append(templated, n)
		for _, m := range mal {
			bad[m.Text] = "malformed: " + m.Reason
		}
		rs := t.Refs()
		for _, ref := range rs {
			refs[ref] = true
		}
		count += len(rs) + len(mal)
		if count > MaxReferences {
			return errorf(TypeBadRequest, "input holds more than %d secret references", MaxReferences)
		}
		return nil
	}, func(name string, at jsontext.Pointer) error {
		if !secrets.HasReference(name) {
			return nil
		}
		refKeys = append(refKeys, at)
		if count++; count > MaxReferences {
			return errorf(TypeBadRequest, "input holds more than %d secret references", MaxReferences)
		}
		return nil
	})
	var limit *Error
	var strict *strictjson.Error
	switch {
	case errors.As(err, &limit):
		return nil, info, limit
	case err == errDepth:
		return nil, info, errorf(TypeBadRequest, "input is nested more than %d levels deep", MaxDepth)
	case errors.As(err, &strict) && strictProblem("input", strict) != "":
		return nil, info, errorf(TypeBadRequest, "%s", strictProblem("input", strict))
	case err != nil:
		return nil, info, errorf(TypeBadRequest, "input is not valid JSON")
	}
	if len(bad) > 0 {
		return nil, info, failure(TypeBadRequest, bad)
	}
	if len(refKeys) > 0 {
		return nil, info, keyError(refKeys)
	}

	// One batched read of every secret named; only those the grant covers
	// are decrypted.
	var wants []secrets.Want
	for ref := range refs {
		if w := ref.Want(); !slices.Contains(wants, w) {
			wants = append(wants, w)
		}
	}
	var revealed map[secrets.Want]*secrets.Revealed
	if len(wants) > 0 {
		revealed, err = r.svc.RevealAll(ctx, g.Project, wants, func(sec *secrets.Secret) bool { return g.Covers(sec.ID) })
		if err != nil {
			return nil, info, serviceError(err)
		}
	}
	// A reference the grant does not cover is Forbidden whether or not its
	// secret exists: the answer tells nothing of secrets outside the grant.
	forbidden := map[string]string{}
	for ref := range refs {
		if rv := revealed[ref.Want()]; rv == nil || !rv.Covered {
			forbidden[ref.String()] = "not covered by the resolve grant"
		}
	}
	if len(forbidden) > 0 {
		return nil, info, failure(TypeForbidden, forbidden)
	}
	for ref := range refs {
		rv := revealed[ref.Want()]
		switch {
		case rv.Version == nil:
			bad[ref.String()] = rv.Problem
		default:
			if _, ok := rv.Values[ref.Key]; !ok {
				bad[ref.String()] = ref.MissingKey(rv.Version.Number)
			}
		}
	}
	if len(bad) > 0 {
		return nil, info, failure(TypeNotFound, bad)
	}

	// One audit record per secret and version read.
	type read struct {
		id      string
		version int
	}
	keysBy := map[read][]string{}
	firstRef := map[read]secrets.Ref{}
	resolved := make([]Resolved, 0, len(refs))
	resolvedBytes := len(`{"output":,"resolved":[]}`)
	for ref := range refs {
		rv := revealed[ref.Want()]
		rd := read{rv.Secret.ID, rv.Version.Number}
		if !slices.Contains(keysBy[rd], ref.Key) {
			keysBy[rd] = append(keysBy[rd], ref.Key)
		}
		if old, ok := firstRef[rd]; !ok || ref.Name < old.Name {
			firstRef[rd] = ref
		}
		resolved = append(resolved, Resolved{Secret: ref.Name, Key: ref.Key, Version: rv.Version.Number, Selector: ref.Sel.String()})
		resolvedBytes += len(`{"secret":"","key":"","version":,"selector":""},`) + len(ref.Name) + len(ref.Key) + 10 + len(ref.Sel.String())
	}

	// The whole response (output and the resolved list) must fit Lambda's
	// 6 MB. The output holds at least the substituted strings themselves
	// (JSON escaping only lengthens them): refuse before building any of
	// it when they alone pass the limit, as 1,000 references to one 64 KiB
	// value (64 MB) in a 17 KB input would.
	value := func(ref secrets.Ref) string { return revealed[ref.Want()].Values[ref.Key] }
	least := resolvedBytes
	for _, n := range templated {
		if least += n.tmpl.Len(value); least > MaxResponseBytes {
			return nil, info, errorf(TypeBadRequest, "the response would be more than %d bytes; the limit is %d (Lambda's response limit)", least, MaxResponseBytes)
		}
	}

	// Substitute.
	var buf bytes.Buffer
	buf.Grow(len(ev.Input))
	encodeTree(&buf, root, func(n *node) string {
		if n.tmpl == nil {
			return n.text
		}
		return n.tmpl.Render(value)
	})
	if total := buf.Len() + resolvedBytes; total > MaxResponseBytes {
		return nil, info, errorf(TypeBadRequest, "the response would be %d bytes; the limit is %d (Lambda's response limit)", total, MaxResponseBytes)
	}

	// The audit, one record per secret, before any value leaves.
	sort.Slice(resolved, func(i, j int) bool {
		a, b := resolved[i], resolved[j]
		if a.Secret != b.Secret {
			return a.Secret < b.Secret
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return a.Selector < b.Selector
	})
	reads := make([]read, 0, len(keysBy))
	for rd := range keysBy {
		reads = append(reads, rd)
	}
	sort.Slice(reads, func(i, j int) bool {
		if reads[i].id != reads[j].id {
			return reads[i].id < reads[j].id
		}
		return reads[i].version < reads[j].version
	})
	records := make([]*secrets.Resolution, 0, len(reads))
	for _, rd := range reads {
		ref := firstRef[rd]
		rv := revealed[ref.Want()]
		keys := keysBy[rd]
		sort.Strings(keys)
		records = append(records, &secrets.Resolution{
			Project: g.Project, SecretID: rd.id, SecretName: rv.Secret.Name, Alias: rv.Alias,
			Version: rd.version, Keys: keys,
			GrantID: g.ID, KeyID: g.KeyID, Run: g.Run, Step: step,
		})
		info.read = append(info.read, fmt.Sprintf("%s@%d", rv.Secret.Name, rd.version))
	}
	if err := r.svc.RecordResolutions(ctx, records); err != nil {
		return nil, info, serviceError(err)
	}
	return &Result{Output: buf.Bytes(), Resolved: resolved}, info, nil
}

// maxKeysShown bounds the object keys that one error lists.
const maxKeysShown = 20

// keyError is the error listing the object keys that hold a reference,
// by their JSON Pointers, in document order.
func keyError(at []jsontext.Pointer) *Error {
	var b strings.Builder
	if len(at) == 1 {
		b.WriteString("input has a secret reference in an object key, at ")
	} else {
		fmt.Fprintf(&b, "input has secret references in %d object keys, at ", len(at))
	}
	for i, p := range at {
		if i == maxKeysShown {
			fmt.Fprintf(&b, " (and %d more)", len(at)-maxKeysShown)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(strictjson.Where(p))
	}
	b.WriteString(": references are substituted in string values only, never in keys; write the key without ${secret:")
	return &Error{Type: TypeBadRequest, Message: b.String()}
}

// failure is the error of type typ listing every failing reference,
// sorted.
func failure(typ string, bad map[string]string) *Error {
	texts := sortedKeys(bad)
	var b strings.Builder
	if len(texts) == 1 {
		b.WriteString("1 secret reference did not resolve: ")
	} else {
		fmt.Fprintf(&b, "%d secret references did not resolve: ", len(texts))
	}
	for i, t := range texts {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(t)
		b.WriteString(" (")
		b.WriteString(bad[t])
		b.WriteString(")")
	}
	return &Error{Type: typ, Message: b.String()}
}

// serviceError classifies a failure of the store or the key service.
func serviceError(err error) *Error {
	switch secrets.ErrorCode(err) {
	case secrets.Unauthorized:
		return &Error{Type: TypeUnauthorized, Message: secrets.ErrorMessage(err)}
	case secrets.Unavailable:
		return &Error{Type: TypeUnavailable, Message: secrets.ErrorMessage(err)}
	case secrets.NotFound:
		return &Error{Type: TypeNotFound, Message: secrets.ErrorMessage(err)}
	case secrets.Invalid, secrets.TooLarge:
		return &Error{Type: TypeBadRequest, Message: secrets.ErrorMessage(err)}
	default:
		return &Error{Type: TypeInternal, Message: secrets.ErrorMessage(err)}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
