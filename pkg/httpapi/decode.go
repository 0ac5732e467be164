package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/mobius-secrets/mobius/internal/strictjson"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// readBody reads a request body of at most s.maxBody bytes: 413 above it,
// found from Content-Length up front when the client sends one. The body
// must be JSON, or come without a Content-Type.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, secrets.FieldErrorf(secrets.Invalid, "Content-Type", "Content-Type must be application/json")
		}
	}
	if r.ContentLength > s.maxBody {
		return nil, secrets.Errorf(secrets.TooLarge, "the request body is larger than %d bytes", s.maxBody)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if isMaxBytes(err) {
		return nil, secrets.Errorf(secrets.TooLarge, "the request body is larger than %d bytes", s.maxBody)
	}
	if err != nil {
		return nil, secrets.WrapError(secrets.Invalid, err, "could not read the request body")
	}
	return b, nil
}

// decodeJSON decodes body into v strictly (internal/strictjson): one
// JSON object and nothing after it; no unknown field, and a field's name
// only as written (`NAME` is not `name`); no member name twice and no
// string that is not valid Unicode (invalid UTF-8, a lone surrogate
// escape), at any depth. Errors name the field or the JSON path and never
// quote a value.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return secrets.Errorf(secrets.Invalid, "the request body is empty; send a JSON object")
	}
	if err := strictjson.Unmarshal(body, v); err != nil {
		return bodyError(err, v)
	}
	return nil
}

// decodeEmpty accepts an empty body or an empty JSON object.
func decodeEmpty(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return decodeJSON(body, &struct{}{})
}

// bodyError turns a strict decoding error of a body decoded into v into a
// 400 that names the field (the top-level member the problem is in).
func bodyError(err error, v any) error {
	var e *strictjson.Error
	if !errors.As(err, &e) {
		return secrets.Errorf(secrets.Invalid, "the request body is not valid JSON")
	}
	field := secrets.Shorten(e.Field(), 64)
	where := secrets.Shorten(strings.TrimPrefix(string(e.Pointer), "/"), 120)
	switch e.Kind {
	case strictjson.UnknownName:
		name := secrets.Shorten(e.Name(), 64)
		if known := fieldFolding(v, e.Name()); known != "" {
			return secrets.FieldErrorf(secrets.Invalid, name, "unknown field %q: field names match exactly, case included (did you mean %q?)", name, known)
		}
		return secrets.FieldErrorf(secrets.Invalid, name, "unknown field %q", name)
	case strictjson.DuplicateName:
		name := secrets.Shorten(e.Name(), 40)
		switch parent := e.Pointer.Parent(); {
		case parent == "":
			return secrets.FieldErrorf(secrets.Invalid, field, "field %q appears more than once in the request body", name)
		case parent == "/values":
			return secrets.FieldErrorf(secrets.Invalid, field, "key %q appears more than once in values", name)
		default:
			return secrets.FieldErrorf(secrets.Invalid, field, "member %q appears more than once in %s", name, secrets.Shorten(strings.TrimPrefix(string(parent), "/"), 120))
		}
	case strictjson.InvalidUTF8, strictjson.LoneSurrogate:
		what := "bytes that are not UTF-8"
		if e.Kind == strictjson.LoneSurrogate {
			what = `a lone UTF-16 surrogate escape (\uD800-\uDFFF without its pair)`
		}
		switch {
		case field == "":
			return secrets.Errorf(secrets.Invalid, "the request body is not valid Unicode: a field name holds %s (at byte %d)", what, e.Offset)
		case e.Pointer == "/values":
			return secrets.FieldErrorf(secrets.Invalid, field, "values is not valid Unicode: a key holds %s (at byte %d)", what, e.Offset)
		case e.Pointer.Parent() == "/values":
			return secrets.FieldErrorf(secrets.Invalid, field, "values is not valid Unicode: the value of key %q holds %s (at byte %d)", secrets.Shorten(e.Name(), 40), what, e.Offset)
		}
		return secrets.FieldErrorf(secrets.Invalid, field, "%s is not valid Unicode: it holds %s (at byte %d)", where, what, e.Offset)
	case strictjson.WrongType:
		if e.Pointer == "" {
			return secrets.Errorf(secrets.Invalid, "the request body must be a JSON object")
		}
		return secrets.FieldErrorf(secrets.Invalid, field, "%s must be of type %s", where, e.Want)
	case strictjson.Trailing:
		return secrets.Errorf(secrets.Invalid, "the request body has data after the JSON object")
	case strictjson.Truncated:
		return secrets.Errorf(secrets.Invalid, "the request body is not valid JSON: it ends early")
	}
	return secrets.Errorf(secrets.Invalid, "the request body is not valid JSON (error at byte %d)", e.Offset)
}

// fieldFolding returns the JSON name of the field of struct *v that name
// matches only when case is ignored, or "".
func fieldFolding(v any, name string) string {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return ""
	}
	t = t.Elem()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if tag != "" && tag != name && strings.EqualFold(tag, name) {
			return tag
		}
	}
	return ""
}

// decodeValues decodes a values object, already read strictly as part of
// the body: nil if absent or null; Invalid (field "values") if it is not an
// object of strings or names a key twice (RFC 8785 and I-JSON need unique
// names). No message quotes a value.
func decodeValues(raw json.RawMessage) (map[string]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	notObject := secrets.FieldErrorf(secrets.Invalid, "values", "values must be an object whose values are strings")
	dec := strictjson.NewDecoder(raw)
	if t, err := dec.ReadToken(); err != nil || t.Kind() != '{' {
		return nil, notObject
	}
	out := map[string]string{}
	for dec.PeekKind() == '"' {
		kt, err := dec.ReadToken()
		if err != nil {
			return nil, notObject
		}
		k := kt.String()
		vt, err := dec.ReadToken()
		if err != nil {
			return nil, notObject
		}
		if vt.Kind() != '"' {
			return nil, secrets.FieldErrorf(secrets.Invalid, "values", "values must be strings: the value of key %q is not a string", secrets.Shorten(k, 40))
		}
		if _, dup := out[k]; dup {
			return nil, secrets.FieldErrorf(secrets.Invalid, "values", "key %q appears more than once in values", secrets.Shorten(k, 40))
		}
		out[k] = vt.String()
	}
	if t, err := dec.ReadToken(); err != nil || t.Kind() != '}' {
		return nil, notObject
	}
	return out, nil
}
