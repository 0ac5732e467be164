package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

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

// decodeJSON decodes body into v strictly: one JSON object, no unknown
// fields, nothing after it. Errors name the field and never quote a value.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return secrets.Errorf(secrets.Invalid, "the request body is empty; send a JSON object")
	}
	// encoding/json would turn invalid bytes into U+FFFD, storing (and
	// digesting) something other than what was sent.
	if !utf8.Valid(body) {
		return secrets.Errorf(secrets.Invalid, "the request body is not valid UTF-8, as JSON must be")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return secrets.Errorf(secrets.Invalid, "the request body has data after the JSON object")
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

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return secrets.Errorf(secrets.Invalid, "the request body is not valid JSON (error at byte %d)", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return secrets.Errorf(secrets.Invalid, "the request body is not valid JSON: it ends early")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return secrets.Errorf(secrets.Invalid, "the request body must be a JSON object")
		}
		return secrets.FieldErrorf(secrets.Invalid, typ.Field, "%s must be of type %s", typ.Field, jsonType(typ.Type.String()))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if f, err := strconv.Unquote(name); err == nil {
			name = f
		}
		name = truncate(name, 64)
		return secrets.FieldErrorf(secrets.Invalid, name, "unknown field %q", name)
	}
	return secrets.WrapError(secrets.Invalid, err, "the request body is not valid JSON")
}

func jsonType(goType string) string {
	switch {
	case goType == "string":
		return "string"
	case strings.HasPrefix(goType, "[]"):
		return "array"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "struct"):
		return "object"
	case strings.Contains(goType, "int"), strings.Contains(goType, "float"):
		return "number"
	case goType == "bool":
		return "boolean"
	default:
		return goType
	}
}

// decodeValues decodes a values object: nil if absent or null; Invalid
// (field "values") if it is not an object of strings or names a key twice
// (RFC 8785 and I-JSON need unique names; the last would silently win). No
// message quotes a value.
func decodeValues(raw json.RawMessage) (map[string]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	notObject := secrets.FieldErrorf(secrets.Invalid, "values", "values must be an object whose values are strings")
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, notObject
	}
	out := map[string]string{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, notObject
		}
		k, _ := kt.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, notObject
		}
		if len(v) == 0 || v[0] != '"' {
			return nil, secrets.FieldErrorf(secrets.Invalid, "values", "values must be strings: the value of key %q is not a string", truncate(k, 40))
		}
		if _, dup := out[k]; dup {
			return nil, secrets.FieldErrorf(secrets.Invalid, "values", "key %q appears more than once in values", truncate(k, 40))
		}
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			return nil, notObject
		}
		out[k] = str
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, notObject
	}
	return out, nil
}
