package resolve

import (
	"bytes"
	"errors"
	"io"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mobius-secrets/mobius/internal/strictjson"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// node is a JSON value that keeps the order of object members and the
// exact text of everything that is not substituted (numbers, literals,
// member names and strings as they were written, escapes included), so
// that the output differs from the input only in the strings that held
// references or escapes, and in white space.
type node struct {
	kind byte     // 'o' object, 'a' array, 's' string, 'l' literal (number, true, false, null)
	raw  []byte   // a string's or literal's JSON text, as sent (a slice of the input)
	text string   // a string's value
	keys [][]byte // an object's member names, as sent
	kids []*node
	tmpl *secrets.Template // parsed string, set by the resolver
}

var errDepth = errors.New("too deep")

// treeDecoder reads one JSON value strictly (internal/strictjson): no
// member name twice in an object, no string that is not valid Unicode, at
// any depth, nothing after the value.
type treeDecoder struct {
	b        []byte
	dec      *jsontext.Decoder
	maxDepth int
	// onString, if set, sees each string value (member names excluded) as
	// soon as it is read, in document order; an error from it stops the
	// decoding and is returned as it is, so a limit on what the strings
	// hold stops a large input early instead of after all of it is in
	// memory.
	onString func(*node) error
	// onName, if set, sees each member name with its JSON Pointer; an
	// error from it stops the decoding and is returned as it is.
	onName func(name string, at jsontext.Pointer) error
}

// decodeTree reads one JSON value from b, nested at most maxDepth deep.
// A syntax or strictness problem is a *strictjson.Error (its offsets count
// from the start of b, its pointers from b's value); too deep is errDepth;
// an error of a callback is returned as it is.
func decodeTree(b []byte, maxDepth int, onString func(*node) error, onName func(string, jsontext.Pointer) error) (*node, error) {
	d := treeDecoder{b: b, dec: strictjson.NewDecoder(b), maxDepth: maxDepth, onString: onString, onName: onName}
	n, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if err := strictjson.AtEnd(d.dec, b); err != nil {
		return nil, err
	}
	return n, nil
}

func (d *treeDecoder) fail(err error) error { return strictjson.Wrap(err, d.b) }

// raw reads the next scalar (or member name) and returns its text as a
// slice of the input.
func (d *treeDecoder) raw() ([]byte, error) {
	v, err := d.dec.ReadValue()
	if err != nil {
		return nil, d.fail(err)
	}
	end := d.dec.InputOffset()
	return d.b[end-int64(len(v)) : end : end], nil
}

// unquote returns the value of a JSON string known to be valid.
func unquote(raw []byte) (string, error) {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	s, err := jsontext.AppendUnquote(nil, raw)
	return string(s), err
}

func (d *treeDecoder) value(depth int) (*node, error) {
	switch k := d.dec.PeekKind(); k {
	case '{', '[':
		if depth >= d.maxDepth {
			return nil, errDepth
		}
		if _, err := d.dec.ReadToken(); err != nil {
			return nil, d.fail(err)
		}
		n := &node{kind: 'a'}
		end := jsontext.Kind(']')
		if k == '{' {
			n.kind, end = 'o', '}'
		}
		for d.dec.PeekKind() != end {
			if n.kind == 'o' {
				name, err := d.raw()
				if err != nil {
					return nil, err
				}
				if d.onName != nil {
					s, err := unquote(name)
					if err != nil {
						return nil, d.fail(err)
					}
					if err := d.onName(s, d.dec.StackPointer()); err != nil {
						return nil, err
					}
				}
				n.keys = append(n.keys, name)
			}
			kid, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, kid)
		}
		if _, err := d.dec.ReadToken(); err != nil {
			return nil, d.fail(err)
		}
		return n, nil
	case 0:
		_, err := d.dec.ReadToken()
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, d.fail(err)
	default:
		raw, err := d.raw()
		if err != nil {
			return nil, err
		}
		if k != '"' {
			return &node{kind: 'l', raw: raw}, nil
		}
		s, err := unquote(raw)
		if err != nil {
			return nil, d.fail(err)
		}
		n := &node{kind: 's', raw: raw, text: s}
		if d.onString != nil {
			if err := d.onString(n); err != nil {
				return nil, err
			}
		}
		return n, nil
	}
}

// encodeTree appends n as compact JSON, with every string that holds a
// template passed through str; everything else is written as it was sent.
func encodeTree(buf *bytes.Buffer, n *node, str func(*node) string) {
	switch n.kind {
	case 'o':
		buf.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.Write(k)
			buf.WriteByte(':')
			encodeTree(buf, n.kids[i], str)
		}
		buf.WriteByte('}')
	case 'a':
		buf.WriteByte('[')
		for i, k := range n.kids {
			if i > 0 {
				buf.WriteByte(',')
			}
			encodeTree(buf, k, str)
		}
		buf.WriteByte(']')
	case 's':
		if n.tmpl == nil {
			buf.Write(n.raw)
			return
		}
		s := str(n)
		if s == n.text {
			buf.Write(n.raw)
			return
		}
		writeString(buf, s)
	default:
		buf.Write(n.raw)
	}
}

// writeString appends s as a JSON string, without HTML escaping. Every
// string it is given is valid UTF-8 (read strictly, or a stored value);
// were one not, its invalid bytes would become U+FFFD.
func writeString(buf *bytes.Buffer, s string) {
	b, _ := jsontext.AppendQuote(buf.AvailableBuffer(), s)
	buf.Write(b)
}
