// Package resolve substitutes secret references in a loop runner's action
// parameters: the logic of the resolve function. In every string of the
// input, at any depth, `${secret:NAME.KEY}` becomes that key's plaintext in
// the ENABLED version of the secret NAME, and `$${` becomes a literal `${`.
// Either every reference resolves, or the call fails as a whole with an
// *Error that names every failing reference; there is no partial output.
// Each secret read is recorded in the resolution audit, without its value.
//
// It imports pkg/secrets and the standard library only; the Lambda
// function in functions/resolve turns an *Error into the function error
// whose errorType is Error.Type.
package resolve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// Limits of one invocation.
const (
	MaxInputBytes  = 1 << 20 // the input, as JSON
	MaxDepth       = 64      // nesting of objects and arrays in the input
	MaxReferences  = 1000    // references in the input, repeats included
	MaxOutputBytes = 6 << 20 // the substituted output: a Lambda response is at most 6 MB
	MaxRunBytes    = secrets.MaxRunBytes
)

// Error types: the errorType of the resolve function's error.
const (
	TypeBadRequest  = "BadRequest"  // malformed event or reference, or a limit exceeded
	TypeNotFound    = "NotFound"    // unknown secret or key, or no ENABLED version
	TypeUnavailable = "Unavailable" // the store or the key service failed; try again
	TypeInternal    = "Internal"
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

// Event is one invocation: the project whose secrets are read, the input
// to substitute, and the caller's run and step identifiers (optional, a
// JSON object kept in the audit).
type Event struct {
	Project string          `json:"project"`
	Input   json.RawMessage `json:"input"`
	Run     json.RawMessage `json:"run,omitempty"`
}

// Result is the substituted input and what was read to make it.
type Result struct {
	Output   json.RawMessage `json:"output"`
	Resolved []Resolved      `json:"resolved"`
}

// Resolved names one key that was substituted, and the version it came
// from.
type Resolved struct {
	Secret  string `json:"secret"`
	Key     string `json:"key"`
	Version int    `json:"version"`
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

// DecodeEvent reads an event from a raw invocation payload. BadRequest if
// it is not a JSON object with only the fields project, input and run.
func DecodeEvent(payload []byte) (Event, error) {
	var ev Event
	if len(payload) > MaxInputBytes+MaxRunBytes+4096 {
		return ev, errorf(TypeBadRequest, "the event is %d bytes; the input may be at most %d bytes", len(payload), MaxInputBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return Event{}, errorf(TypeBadRequest, "the event must be a JSON object {\"project\", \"input\", \"run\"?}: %s", jsonProblem(err))
	}
	if dec.More() {
		return Event{}, errorf(TypeBadRequest, "the event must be one JSON object")
	}
	return ev, nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be a %s", te.Field, te.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	default:
		return "invalid JSON"
	}
}

// Invoke decodes payload as an Event and resolves it.
func (r *Resolver) Invoke(ctx context.Context, payload []byte) (*Result, error) {
	ev, err := DecodeEvent(payload)
	if err != nil {
		r.log.WarnContext(ctx, "resolve failed", "error_type", TypeBadRequest, "error", err.(*Error).Message)
		return nil, err
	}
	return r.Resolve(ctx, ev)
}

// Resolve substitutes every reference in ev.Input. It fails with an *Error:
// BadRequest for a malformed event or reference or a limit exceeded,
// NotFound when a reference does not resolve (both list every failing
// reference), Unavailable when the store or key service failed.
func (r *Resolver) Resolve(ctx context.Context, ev Event) (*Result, error) {
	res, secretsRead, err := r.resolve(ctx, ev)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Type: TypeInternal, Message: "internal error"}
		}
		level := slog.LevelWarn
		if e.Type == TypeUnavailable || e.Type == TypeInternal {
			level = slog.LevelError
		}
		r.log.Log(ctx, level, "resolve failed", "project", ev.Project, "error_type", e.Type, "error", e.Message)
		return nil, e
	}
	r.log.InfoContext(ctx, "resolved", "project", ev.Project, "references", len(res.Resolved), "secrets", secretsRead)
	return res, nil
}

func (r *Resolver) resolve(ctx context.Context, ev Event) (*Result, []string, error) {
	if !secrets.ValidProject(ev.Project) {
		return nil, nil, errorf(TypeBadRequest, "project must be 1-%d characters of A-Z a-z 0-9 _ -, starting with a letter or digit", secrets.MaxProjectLen)
	}
	run, err := checkRun(ev.Run)
	if err != nil {
		return nil, nil, err
	}
	if len(ev.Input) == 0 {
		return nil, nil, errorf(TypeBadRequest, "input is required")
	}
	if len(ev.Input) > MaxInputBytes {
		return nil, nil, errorf(TypeBadRequest, "input is %d bytes; the limit is %d", len(ev.Input), MaxInputBytes)
	}
	// Parse every string as it is read; collect references and malformed
	// ones, and stop as soon as there are too many.
	refs := map[Ref]bool{}
	bad := map[string]string{} // reference text -> failure
	count := 0
	var templated []*node // the strings that hold a reference
	root, err := decodeTree(ev.Input, MaxDepth, func(n *node) error {
		if !strings.Contains(n.text, "${") {
			return nil
		}
		t, mal, over := parse(n.text, MaxReferences-count)
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
	})
	var limit *Error
	switch {
	case errors.As(err, &limit):
		return nil, nil, limit
	case err == errDepth:
		return nil, nil, errorf(TypeBadRequest, "input is nested more than %d levels deep", MaxDepth)
	case err != nil:
		return nil, nil, errorf(TypeBadRequest, "input is not valid JSON")
	}

	// One batched read of every secret named.
	nameSet := map[string]bool{}
	for ref := range refs {
		nameSet[ref.Name] = true
	}
	names := sortedKeys(nameSet)
	var revealed map[string]*secrets.Revealed
	if len(names) > 0 {
		revealed, err = r.svc.Reveal(ctx, ev.Project, names)
		if err != nil {
			return nil, nil, serviceError(err)
		}
	}
	for ref := range refs {
		rv := revealed[ref.Name]
		switch {
		case rv == nil:
			bad[ref.String()] = fmt.Sprintf("secret %q not found in project %q", ref.Name, ev.Project)
		case rv.Version == nil:
			bad[ref.String()] = fmt.Sprintf("secret %q has no ENABLED version", ref.Name)
		default:
			if _, ok := rv.Values[ref.Key]; !ok {
				bad[ref.String()] = fmt.Sprintf("key %q not found in secret %q (version %d)", ref.Key, ref.Name, rv.Version.Number)
			}
		}
	}
	if len(bad) > 0 {
		return nil, nil, failure(bad)
	}

	// The output holds at least the substituted strings themselves (JSON
	// escaping only lengthens them): refuse before building any of it when
	// they alone pass the limit, as 1,000 references to one 64 KiB value
	// (64 MB) in a 17 KB input would.
	value := func(ref Ref) string { return revealed[ref.Name].Values[ref.Key] }
	least := 0
	for _, n := range templated {
		if least += n.tmpl.Len(value); least > MaxOutputBytes {
			return nil, nil, errorf(TypeBadRequest, "the substituted output would be more than %d bytes; the limit is %d", least, MaxOutputBytes)
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
	if buf.Len() > MaxOutputBytes {
		return nil, nil, errorf(TypeBadRequest, "the substituted output would be %d bytes; the limit is %d", buf.Len(), MaxOutputBytes)
	}

	// The audit, one record per secret, before any value leaves.
	keysBy := map[string][]string{}
	resolved := make([]Resolved, 0, len(refs))
	for ref := range refs {
		keysBy[ref.Name] = append(keysBy[ref.Name], ref.Key)
		resolved = append(resolved, Resolved{Secret: ref.Name, Key: ref.Key, Version: revealed[ref.Name].Version.Number})
	}
	sort.Slice(resolved, func(i, j int) bool {
		if resolved[i].Secret != resolved[j].Secret {
			return resolved[i].Secret < resolved[j].Secret
		}
		return resolved[i].Key < resolved[j].Key
	})
	records := make([]*secrets.Resolution, 0, len(names))
	read := make([]string, 0, len(names))
	for _, name := range names {
		rv := revealed[name]
		keys := keysBy[name]
		sort.Strings(keys)
		records = append(records, &secrets.Resolution{
			Project: ev.Project, SecretID: rv.Secret.ID, SecretName: name,
			Version: rv.Version.Number, Keys: keys, Run: run,
		})
		read = append(read, fmt.Sprintf("%s@%d", name, rv.Version.Number))
	}
	if err := r.svc.RecordResolutions(ctx, records); err != nil {
		return nil, nil, serviceError(err)
	}
	return &Result{Output: buf.Bytes(), Resolved: resolved}, read, nil
}

// checkRun returns the run identifiers compacted, or nil if absent. They
// must be a JSON object of at most MaxRunBytes.
func checkRun(run json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(run)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, nil
	}
	if trimmed[0] != '{' {
		return nil, errorf(TypeBadRequest, "run must be a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, trimmed); err != nil {
		return nil, errorf(TypeBadRequest, "run is not valid JSON")
	}
	if buf.Len() > MaxRunBytes {
		return nil, errorf(TypeBadRequest, "run is %d bytes; the limit is %d", buf.Len(), MaxRunBytes)
	}
	return json.RawMessage(buf.Bytes()), nil
}

// failure is the error listing every failing reference, sorted: BadRequest
// if any is malformed, else NotFound.
func failure(bad map[string]string) *Error {
	typ := TypeNotFound
	for _, why := range bad {
		if strings.HasPrefix(why, "malformed: ") {
			typ = TypeBadRequest
		}
	}
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
