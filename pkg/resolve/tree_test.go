package resolve

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mobius-secrets/mobius/internal/strictjson"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// FuzzDecodeTree checks the order-keeping decoder of the input on any
// bytes: it never panics; it accepts exactly what the strict decoder
// accepts (nesting aside); what it accepts is JSON with valid UTF-8
// strings and no member name twice in an object, checked here on the tree
// itself; and encoding what it read gives back the input compacted, byte
// for byte, which decodes again to the same.
func FuzzDecodeTree(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,2.50,-0e+1,true,false,null,"x"],"b":{"c":"\u00e9\/\"\\"}}`,
		` [ "${secret:a.b}" , {"$${k}":"v"} ] `,
		`"\ud83d\ude00\u2028\uffff\u0000"`,
		`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a":{"b":1},"b":{"b":1}}`,
		`"\ud800"`, `"\udc00"`, `"\ud800\u0041"`, "\"\xff\"", "\"\xed\xa0\x80\"", `{"\ud800":1}`,
		`1 2`, `{`, `[1,]`, ``, ` `, `nul`, `1e999`, `"\u00"`,
		strings.Repeat("[", 70) + strings.Repeat("]", 70),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		root, err := decodeTree(b, MaxDepth, nil, nil)
		if err == errDepth {
			return
		}
		strictErr := strictjson.Valid(b)
		if (err == nil) != (strictErr == nil) {
			t.Fatalf("decodeTree(%q) = %v, the strict decoder says %v", b, err, strictErr)
		}
		if err != nil {
			var e *strictjson.Error
			if !errors.As(err, &e) {
				t.Fatalf("decodeTree(%q): error %T %v, want a *strictjson.Error", b, err, err)
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("decodeTree accepted %q, which encoding/json says is not JSON", b)
		}
		checkTree(t, b, root)
		var out bytes.Buffer
		encodeTree(&out, root, func(n *node) string { return n.text })
		want := jsontext.Value(bytes.Clone(b))
		if err := want.Compact(); err != nil {
			t.Fatalf("Compact(%q): %v", b, err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("decode→encode of %q gives %q, want %q", b, out.Bytes(), want)
		}
		again, err := decodeTree(out.Bytes(), MaxDepth, nil, nil)
		if err != nil {
			t.Fatalf("the encoding %q of %q does not decode: %v", out.Bytes(), b, err)
		}
		var out2 bytes.Buffer
		encodeTree(&out2, again, func(n *node) string { return n.text })
		if !bytes.Equal(out2.Bytes(), out.Bytes()) {
			t.Fatalf("re-encoding changed %q into %q", out.Bytes(), out2.Bytes())
		}
	})
}

// checkTree checks a decoded tree: strings (values and member names) are
// valid UTF-8, decoded as encoding/json decodes them, and no object names
// a member twice.
func checkTree(t *testing.T, b []byte, n *node) {
	t.Helper()
	str := func(raw []byte, text string) {
		var v string
		if err := json.Unmarshal(raw, &v); err != nil || v != text || !utf8.ValidString(text) {
			t.Fatalf("in %q: string %s decoded to %q (encoding/json: %q, %v)", b, raw, text, v, err)
		}
	}
	switch n.kind {
	case 'o':
		seen := map[string]bool{}
		for i, k := range n.keys {
			var name string
			if err := json.Unmarshal(k, &name); err != nil || !utf8.ValidString(name) {
				t.Fatalf("in %q: member name %s: %v", b, k, err)
			}
			if seen[name] {
				t.Fatalf("in %q: member %q accepted twice", b, name)
			}
			seen[name] = true
			checkTree(t, b, n.kids[i])
		}
	case 'a':
		for _, k := range n.kids {
			checkTree(t, b, k)
		}
	case 's':
		str(n.raw, n.text)
	}
}

// Substituted strings are written as JSON strings, the rest as sent.
func TestEncodeTreeRewritesOnlyChangedStrings(t *testing.T) {
	in := []byte(`{"k\u0065y":["\u0041","\u0041 ${x}","$${y}"],"n":1E2}`)
	root, err := decodeTree(in, MaxDepth, func(n *node) error {
		if strings.Contains(n.text, "${") {
			n.tmpl, _ = secrets.ParseReferences(n.text)
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	encodeTree(&out, root, func(n *node) string { return n.tmpl.Render(nil) })
	if want := `{"k\u0065y":["\u0041","\u0041 ${x}","${y}"],"n":1E2}`; out.String() != want {
		t.Fatalf("got %s, want %s", out.String(), want)
	}
}
