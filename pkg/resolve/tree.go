package resolve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// node is a JSON value that keeps the order of object members and the exact
// text of numbers, so that the output differs from the input only in the
// strings that held references or escapes.
type node struct {
	kind byte   // 'o' object, 'a' array, 's' string, 'l' literal (number, true, false, null)
	text string // string value, or literal text
	keys []string
	kids []*node
	tmpl *Template // parsed string, set by the resolver
}

var errDepth = errors.New("too deep")

// decodeTree reads one JSON value from b, nested at most maxDepth deep.
// onString, if set, sees each string value (object keys excluded) as soon
// as it is read, in document order; an error from it stops the decoding and
// is returned as it is, so a limit on what the strings hold stops a large
// input early instead of after all of it is in memory.
func decodeTree(b []byte, maxDepth int, onString func(*node) error) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	d := decoder{dec: dec, maxDepth: maxDepth, onString: onString}
	n, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the input value")
	}
	return n, nil
}

type decoder struct {
	dec      *json.Decoder
	maxDepth int
	onString func(*node) error
}

func (d *decoder) value(depth int) (*node, error) {
	dec := d.dec
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch v := tok.(type) {
	case json.Delim:
		if depth >= d.maxDepth {
			return nil, errDepth
		}
		switch v {
		case '{':
			n := &node{kind: 'o'}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is not a string")
				}
				kid, err := d.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k)
				n.kids = append(n.kids, kid)
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			return n, nil
		case '[':
			n := &node{kind: 'a'}
			for dec.More() {
				kid, err := d.value(depth + 1)
				if err != nil {
					return nil, err
				}
				n.kids = append(n.kids, kid)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return n, nil
		default:
			return nil, fmt.Errorf("unexpected %q", v)
		}
	case string:
		n := &node{kind: 's', text: v}
		if d.onString != nil {
			if err := d.onString(n); err != nil {
				return nil, err
			}
		}
		return n, nil
	case json.Number:
		return &node{kind: 'l', text: v.String()}, nil
	case bool:
		if v {
			return &node{kind: 'l', text: "true"}, nil
		}
		return &node{kind: 'l', text: "false"}, nil
	case nil:
		return &node{kind: 'l', text: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected token %T", tok)
}

// encodeTree appends n as compact JSON, with every string value passed
// through str.
func encodeTree(buf *bytes.Buffer, n *node, str func(*node) string) {
	switch n.kind {
	case 'o':
		buf.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
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
		writeString(buf, str(n))
	default:
		buf.WriteString(n.text)
	}
}

// writeString appends s as a JSON string, without HTML escaping.
func writeString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	buf.Truncate(buf.Len() - 1) // Encode's newline
}
