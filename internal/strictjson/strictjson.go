// Package strictjson reads JSON the one way every input of Mobius Secrets
// is read: the HTTP API's request bodies, the resolve function's event and
// its input, and the command line's values.
//
// Strict means RFC 8259 text with these rules added, at any depth:
//   - no object names a member twice (RFC 8785 and I-JSON need unique
//     names; with a lenient decoder the last one silently wins);
//   - every string is valid Unicode: neither bytes that are not UTF-8 nor an
//     escaped lone surrogate (`\ud800`, `\udc00`, a high surrogate followed
//     by anything but a low one), which a lenient decoder turns into U+FFFD,
//     so that what is stored (and digested) differs from what was sent;
//   - decoded into a Go struct, a member name must match a field's name
//     exactly: `NAME` is not `name`, it is an unknown field, and an unknown
//     field is refused;
//   - one value, nothing after it but white space.
//
// It is the jsontext package of github.com/go-json-experiment/json (the
// syntactic layer of the proposed encoding/json/v2) with those options set
// explicitly, a small mapping of an object's members onto a struct's
// fields by exact name (the module's reflection-based json package would
// add some 650 KB to each Lambda bootstrap), and an [Error] that says what
// is wrong and where (a JSON Pointer, RFC 6901) without ever quoting a
// value: an error may name a member, never hold a string or number that
// was sent.
//
// It imports the standard library and that module only.
package strictjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Kind says what is wrong with a JSON text.
type Kind int

// The kinds of Error.
const (
	Syntax        Kind = iota + 1 // not JSON: an invalid or misplaced character
	Truncated                     // the text ends before its value does (or is empty)
	Trailing                      // something other than white space follows the value
	TooDeep                       // nested deeper than the decoder allows
	DuplicateName                 // an object names a member twice
	InvalidUTF8                   // a string holds bytes that are not UTF-8
	LoneSurrogate                 // a string holds a \uD800-\uDFFF escape without its pair
	UnknownName                   // a member name that no field of the Go type has, exactly
	WrongType                     // a value of another JSON type than the Go field's
)

// Error describes why a JSON text was refused. It holds no value that was
// sent; it may hold member names (in Pointer).
type Error struct {
	Kind Kind
	// Pointer locates the problem: for DuplicateName and UnknownName, the
	// member itself (its last token is the name); for WrongType and a
	// string's problem, the value (a member name's problem is located at
	// its object); otherwise where reading stopped. "" is the whole text.
	Pointer jsontext.Pointer
	// Offset is the byte offset in the input where the problem was found.
	Offset int64
	// Want and Got are the JSON types of a WrongType: what the Go field
	// takes and what was sent ("string", "number", "boolean", "null",
	// "object", "array").
	Want, Got string
}

// Error describes e in words, with no value in them.
func (e *Error) Error() string {
	switch e.Kind {
	case Syntax:
		return fmt.Sprintf("not valid JSON (error at byte %d)", e.Offset)
	case Truncated:
		return "not valid JSON: it ends early"
	case Trailing:
		return fmt.Sprintf("data after the JSON value (at byte %d)", e.Offset)
	case TooDeep:
		return fmt.Sprintf("nested too deeply (at byte %d)", e.Offset)
	case DuplicateName:
		if p := e.Pointer.Parent(); p != "" {
			return fmt.Sprintf("member %q appears more than once in %s", e.Name(), Where(p))
		}
		return fmt.Sprintf("member %q appears more than once", e.Name())
	case InvalidUTF8:
		return fmt.Sprintf("a string in %s holds bytes that are not UTF-8 (at byte %d)", Where(e.Pointer), e.Offset)
	case LoneSurrogate:
		return fmt.Sprintf("a string in %s holds a lone UTF-16 surrogate escape, \\uD800-\\uDFFF without its pair (at byte %d)", Where(e.Pointer), e.Offset)
	case UnknownName:
		if p := e.Pointer.Parent(); p != "" {
			return fmt.Sprintf("unknown field %q in %s", e.Name(), Where(p))
		}
		return fmt.Sprintf("unknown field %q", e.Name())
	case WrongType:
		if e.Pointer == "" {
			return fmt.Sprintf("must be a JSON %s, not %s", e.Want, Article(e.Got))
		}
		return fmt.Sprintf("%s must be of type %s, not %s", Where(e.Pointer), e.Want, e.Got)
	}
	return "not valid JSON"
}

// Field is the first token of Pointer: the top-level member the problem
// is in, "" if it is at the top level itself.
func (e *Error) Field() string {
	for tok := range e.Pointer.Tokens() {
		return tok
	}
	return ""
}

// Name is the last token of Pointer: the member name of a DuplicateName or
// UnknownName.
func (e *Error) Name() string { return e.Pointer.LastToken() }

// maxWhere bounds a pointer quoted in a message, in bytes.
const maxWhere = 120

// Where names p in a message: "the top level" for "", else the pointer,
// shortened in its middle past 120 bytes (on rune boundaries).
func Where(p jsontext.Pointer) string {
	if p == "" {
		return "the top level"
	}
	return Shorten(string(p), maxWhere)
}

// Shorten cuts s to about n bytes by dropping its middle, which keeps both
// the start of a path and the member it ends with.
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	head, tail := n/3, n-n/3
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	start := len(s) - tail
	for start < len(s) && !utf8.RuneStart(s[start]) {
		start++
	}
	return s[:head] + "…" + s[start:]
}

// textOptions make the rules of the package doc. They are set explicitly,
// so that no change of a default loosens them.
var textOptions = []jsontext.Options{jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false)}

// NewDecoder returns a strict decoder of data. The offsets of its errors
// (and of InputOffset) count from the start of data; pass its errors to
// Wrap.
func NewDecoder(data []byte) *jsontext.Decoder {
	return jsontext.NewDecoder(bytes.NewReader(data), textOptions...)
}

// Unmarshal decodes data, one JSON object and nothing after it, into the
// struct v points to, under the rules of the package doc. Each field is
// named by its json tag (options after the name are ignored) and is a
// string, a *string (nil when absent or null), a []string, a bool, an
// *int64 (a whole number; nil when absent or null) or a raw value
// (json.RawMessage, jsontext.Value: the member's JSON text as sent, read
// strictly too); null leaves a field at its zero value, as encoding/json
// does. Its error is an *Error.
func Unmarshal(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic("strictjson: Unmarshal needs a pointer to a struct, not " + rv.Type().String())
	}
	dec := NewDecoder(data)
	if err := decodeStruct(dec, rv.Elem(), data); err != nil {
		if e := err.(*Error); e.Kind != UnknownName && e.Kind != WrongType {
			// A problem of the text found inside a raw value can come
			// with the member names of its pointer lost; reading token
			// by token locates it exactly.
			if again := Valid(data); again != nil {
				return again
			}
		}
		return err
	}
	return AtEnd(dec, data)
}

var rawType = reflect.TypeFor[[]byte]()

func decodeStruct(dec *jsontext.Decoder, sv reflect.Value, data []byte) error {
	fields := map[string]int{}
	for i := range sv.NumField() {
		if f := sv.Type().Field(i); f.IsExported() {
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
				fields[name] = i
			}
		}
	}
	if err := want(dec, data, "", '{', "object"); err != nil {
		return err
	}
	if _, err := dec.ReadToken(); err != nil {
		return Wrap(err, data)
	}
	for dec.PeekKind() != '}' {
		at := dec.InputOffset()
		tok, err := dec.ReadToken()
		if err != nil {
			return Wrap(err, data)
		}
		name := tok.String()
		ptr := jsontext.Pointer("").AppendToken(name)
		i, ok := fields[name]
		if !ok {
			return &Error{Kind: UnknownName, Pointer: ptr, Offset: skipDelim(data, at)}
		}
		if err := decodeField(dec, sv.Field(i), ptr, data); err != nil {
			return err
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return Wrap(err, data)
	}
	return nil
}

func decodeField(dec *jsontext.Decoder, fv reflect.Value, ptr jsontext.Pointer, data []byte) error {
	t := fv.Type()
	if t.Kind() == reflect.Slice && t.ConvertibleTo(rawType) && t.Elem().Kind() == reflect.Uint8 {
		raw, err := dec.ReadValue()
		if err != nil {
			return Wrap(err, data)
		}
		fv.SetBytes(bytes.Clone(raw))
		return nil
	}
	if dec.PeekKind() == 'n' {
		if _, err := dec.ReadToken(); err != nil {
			return Wrap(err, data)
		}
		fv.SetZero()
		return nil
	}
	switch {
	case t.Kind() == reflect.String:
		s, err := readString(dec, ptr, data)
		if err != nil {
			return err
		}
		fv.SetString(s)
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.String:
		s, err := readString(dec, ptr, data)
		if err != nil {
			return err
		}
		p := reflect.New(t.Elem())
		p.Elem().SetString(s)
		fv.Set(p)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		if err := want(dec, data, ptr, '[', "array"); err != nil {
			return err
		}
		if _, err := dec.ReadToken(); err != nil {
			return Wrap(err, data)
		}
		list := reflect.MakeSlice(t, 0, 0)
		for i := 0; dec.PeekKind() != ']'; i++ {
			s, err := readString(dec, ptr.AppendToken(strconv.Itoa(i)), data)
			if err != nil {
				return err
			}
			list = reflect.Append(list, reflect.ValueOf(s).Convert(t.Elem()))
		}
		if _, err := dec.ReadToken(); err != nil {
			return Wrap(err, data)
		}
		fv.Set(list)
	case t.Kind() == reflect.Bool:
		b, err := readBool(dec, ptr, data)
		if err != nil {
			return err
		}
		fv.SetBool(b)
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Int64:
		n, err := readInt(dec, ptr, data)
		if err != nil {
			return err
		}
		p := reflect.New(t.Elem())
		p.Elem().SetInt(n)
		fv.Set(p)
	default:
		panic("strictjson: unsupported field type " + t.String())
	}
	return nil
}

func readBool(dec *jsontext.Decoder, ptr jsontext.Pointer, data []byte) (bool, error) {
	switch k := dec.PeekKind(); k {
	case 't', 'f':
		tok, err := dec.ReadToken()
		if err != nil {
			return false, Wrap(err, data)
		}
		return tok.Bool(), nil
	case 0:
		_, err := dec.ReadToken()
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return false, Wrap(err, data)
	default:
		return false, &Error{Kind: WrongType, Pointer: ptr, Offset: skipDelim(data, dec.InputOffset()), Want: "boolean", Got: jsonKind(k)}
	}
}

// readInt reads a whole number that fits in 64 bits; anything else (a
// fraction, an exponent, a number out of range) is WrongType.
func readInt(dec *jsontext.Decoder, ptr jsontext.Pointer, data []byte) (int64, error) {
	off := skipDelim(data, dec.InputOffset())
	if err := want(dec, data, ptr, '0', "whole number"); err != nil {
		return 0, err
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return 0, Wrap(err, data)
	}
	n, err := strconv.ParseInt(tok.String(), 10, 64)
	if err != nil {
		return 0, &Error{Kind: WrongType, Pointer: ptr, Offset: off, Want: "whole number", Got: "number"}
	}
	return n, nil
}

func readString(dec *jsontext.Decoder, ptr jsontext.Pointer, data []byte) (string, error) {
	if err := want(dec, data, ptr, '"', "string"); err != nil {
		return "", err
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return "", Wrap(err, data)
	}
	return tok.String(), nil
}

// want checks that the next value is of kind k: a WrongType at ptr if it
// is another, the decoder's own error if there is none.
func want(dec *jsontext.Decoder, data []byte, ptr jsontext.Pointer, k jsontext.Kind, name string) error {
	switch got := dec.PeekKind(); got {
	case k:
		return nil
	case 0:
		_, err := dec.ReadToken()
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Wrap(err, data)
	default:
		return &Error{Kind: WrongType, Pointer: ptr, Offset: skipDelim(data, dec.InputOffset()), Want: name, Got: jsonKind(got)}
	}
}

// skipDelim returns the offset of the next token at or after off: past
// white space and one ',' or ':'.
func skipDelim(data []byte, off int64) int64 {
	for off < int64(len(data)) && (isSpace(data[off]) || data[off] == ',' || data[off] == ':') {
		off++
	}
	return off
}

// Valid reports, as an *Error, what keeps data from being one strict JSON
// value with nothing after it; nil if nothing does.
func Valid(data []byte) error {
	dec := NewDecoder(data)
	for {
		var err error
		switch dec.PeekKind() {
		case '{', '}', '[', ']', 0:
			_, err = dec.ReadToken()
		default:
			_, err = dec.ReadValue()
		}
		if err != nil {
			return Wrap(err, data)
		}
		if dec.StackDepth() == 0 {
			return AtEnd(dec, data)
		}
	}
}

// AtEnd reports, as a Trailing *Error, anything but white space left in a
// decoder of data made by NewDecoder.
func AtEnd(dec *jsontext.Decoder, data []byte) error {
	off := dec.InputOffset()
	if _, err := dec.ReadToken(); err != io.EOF {
		for off < int64(len(data)) && isSpace(data[off]) {
			off++
		}
		return &Error{Kind: Trailing, Offset: off}
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// Wrap turns an error of a strict decoder of data into an
// *Error; nil stays nil, and an *Error is returned as it is.
func Wrap(err error, data []byte) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		return syntactic(syn, data)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Kind: Truncated, Offset: int64(len(data))}
	}
	return &Error{Kind: Syntax}
}

func syntactic(syn *jsontext.SyntacticError, data []byte) *Error {
	e := &Error{Kind: Syntax, Pointer: syn.JSONPointer, Offset: syn.ByteOffset}
	msg := ""
	if syn.Err != nil {
		msg = syn.Err.Error()
	}
	switch {
	case errors.Is(syn.Err, jsontext.ErrDuplicateName):
		e.Kind = DuplicateName
	case errors.Is(syn.Err, io.ErrUnexpectedEOF) || errors.Is(syn.Err, io.EOF):
		e.Kind = Truncated
	case surrogateAt(data, syn.ByteOffset) || strings.Contains(msg, "surrogate"):
		e.Kind = LoneSurrogate
	case msg == "invalid UTF-8" || invalidUTF8At(data, syn.ByteOffset):
		e.Kind = InvalidUTF8
	case strings.Contains(msg, "max depth"):
		e.Kind = TooDeep
	case strings.Contains(msg, "after top-level value"):
		e.Kind = Trailing
	}
	return e
}

// surrogateAt reports whether data holds a \u escape of a surrogate at off.
func surrogateAt(data []byte, off int64) bool {
	if off < 0 || off+6 > int64(len(data)) || data[off] != '\\' || data[off+1] != 'u' {
		return false
	}
	v, err := strconv.ParseUint(string(data[off+2:off+6]), 16, 16)
	return err == nil && v >= 0xD800 && v <= 0xDFFF
}

// invalidUTF8At reports whether data holds a byte that starts no valid
// UTF-8 sequence at off.
func invalidUTF8At(data []byte, off int64) bool {
	if off < 0 || off >= int64(len(data)) || data[off] < utf8.RuneSelf {
		return false
	}
	r, n := utf8.DecodeRune(data[off:])
	return r == utf8.RuneError && n <= 1
}

func jsonKind(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "another type"
}

// Article is kind ("string", "object", "null", ...) with its article, as
// a message says it: "a string", "an object", "null".
func Article(kind string) string {
	switch kind {
	case "array", "object":
		return "an " + kind
	case "null":
		return kind
	}
	return "a " + kind
}

// Walk reads data, one strict JSON value with nothing after it, and calls
// str for every string value and name for every member name, each with
// its JSON Pointer (a member name's is the member's own). Objects and
// arrays nested more than maxDepth deep are a TooDeep *Error. An error
// from str or name ends the walk and is returned as it is; the text's own
// problems are *Error.
func Walk(data []byte, maxDepth int, str, name func(at jsontext.Pointer, s string) error) error {
	dec := NewDecoder(data)
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return Wrap(err, data)
		}
		switch tok.Kind() {
		case '{', '[':
			if dec.StackDepth() > maxDepth {
				return &Error{Kind: TooDeep, Pointer: dec.StackPointer(), Offset: dec.InputOffset()}
			}
		case '"':
			kind, n := dec.StackIndex(dec.StackDepth())
			f := str
			if kind == '{' && n%2 == 1 {
				f = name
			}
			if f != nil {
				if err := f(dec.StackPointer(), tok.String()); err != nil {
					return err
				}
			}
		}
		if dec.StackDepth() == 0 {
			return AtEnd(dec, data)
		}
	}
}
