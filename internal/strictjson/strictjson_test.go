package strictjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

type body struct {
	Name   string          `json:"name"`
	Desc   *string         `json:"description"`
	Scopes []string        `json:"scopes"`
	Values json.RawMessage `json:"values"`
}

// canary stands for a value: no error may quote it.
const canary = "CANARY-7f3a"

func TestUnmarshal(t *testing.T) {
	for _, c := range []struct {
		name    string
		in      string
		kind    Kind
		pointer string
		field   string
	}{
		{"accepted", `{"name":"` + canary + `","values":{"a":"1"}}`, 0, "", ""},
		{"white space around", " \t\n{\"name\":\"x\"}\r\n ", 0, "", ""},
		{"tricky but valid", `{"name":"\u0000\"\\\u2028\uffff\ud83d\ude00` + "\u2028\U0001F600" + `"}`, 0, "", ""},
		{"duplicate member", `{"name":"a","name":"` + canary + `"}`, DuplicateName, "/name", "name"},
		{"duplicate written with an escape", `{"name":"a","n\u0061me":"` + canary + `"}`, DuplicateName, "/name", "name"},
		{"duplicate deep in a raw value", `{"values":{"a":[{"k":"` + canary + `","k":"x"}]}}`, DuplicateName, "/values/a/0/k", "values"},
		{"names differing in case are two", `{"values":{"k":"1","K":"2"}}`, 0, "", ""},
		{"escaped lone high surrogate", `{"name":"` + canary + `\ud800"}`, LoneSurrogate, "/name", "name"},
		{"escaped lone low surrogate", `{"name":"\udc00` + canary + `"}`, LoneSurrogate, "/name", "name"},
		{"high surrogate then not a low one", `{"name":"\ud800\u0041"}`, LoneSurrogate, "/name", "name"},
		{"two high surrogates", `{"name":"\uD800\uD800"}`, LoneSurrogate, "/name", "name"},
		{"lone surrogate at depth", `{"values":{"a":{"b":["` + canary + `\udfff"]}}}`, LoneSurrogate, "/values/a/b/0", "values"},
		{"lone surrogate in a member name", `{"values":{"\ud800":"` + canary + `"}}`, LoneSurrogate, "/values", "values"},
		{"raw invalid UTF-8", "{\"name\":\"" + canary + "\xff\"}", InvalidUTF8, "/name", "name"},
		{"raw encoded surrogate", "{\"name\":\"\xed\xa0\x80\"}", InvalidUTF8, "/name", "name"},
		{"raw invalid UTF-8 in a member name", "{\"values\":{\"a\xc3\":\"1\"}}", InvalidUTF8, "/values", "values"},
		{"upper-case field", `{"NAME":"` + canary + `"}`, UnknownName, "/NAME", "NAME"},
		{"capitalised field", `{"Values":{"a":"` + canary + `"}}`, UnknownName, "/Values", "Values"},
		{"unknown field", `{"name":"x","color":"` + canary + `"}`, UnknownName, "/color", "color"},
		{"wrong type", `{"name":1234}`, WrongType, "/name", "name"},
		{"wrong type in an array", `{"scopes":["a",5]}`, WrongType, "/scopes/1", "scopes"},
		{"not an object", `["` + canary + `"]`, WrongType, "", ""},
		{"null", `null`, WrongType, "", ""},
		{"a string for an array", `{"scopes":"` + canary + `"}`, WrongType, "/scopes", "scopes"},
		{"an object for a string", `{"description":{"a":"` + canary + `"}}`, WrongType, "/description", "description"},
		{"trailing value", `{"name":"x"} {"name":"` + canary + `"}`, Trailing, "", ""},
		{"trailing garbage", `{"name":"x"}` + canary, Trailing, "", ""},
		{"trailing invalid UTF-8", "{}\xff", Trailing, "", ""},
		{"empty", ``, Truncated, "", ""},
		{"only white space", "  \n", Truncated, "", ""},
		{"ends early", `{"name":"` + canary, Truncated, "/name", "name"},
		{"syntax", `{"name" "` + canary + `"}`, Syntax, "/name", "name"},
		{"trailing comma", `{"name":"x",}`, Syntax, "", ""},
		{"deep", `{"values":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, TooDeep, "", "values"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var v body
			err := Unmarshal([]byte(c.in), &v)
			if c.kind == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v, want an *Error", err, err)
			}
			t.Log(e)
			if e.Kind != c.kind {
				t.Fatalf("kind %d (%v), want %d", e.Kind, e, c.kind)
			}
			if c.kind != TooDeep && string(e.Pointer) != c.pointer {
				t.Errorf("pointer %q, want %q", e.Pointer, c.pointer)
			}
			if e.Field() != c.field && c.kind != TooDeep {
				t.Errorf("field %q, want %q", e.Field(), c.field)
			}
			if strings.Contains(e.Error(), canary) || strings.Contains(e.Error(), "ud800") || strings.Contains(e.Error(), "udfff") {
				t.Errorf("the message quotes the input: %s", e)
			}
		})
	}
}

func TestUnmarshalKeepsValues(t *testing.T) {
	in := `{"name":"\u0000\"\\\u2028\uffff\ud83d\ude00/\/","values":{"b":"1" , "a":2}}`
	var v body
	if err := Unmarshal([]byte(in), &v); err != nil {
		t.Fatal(err)
	}
	if want := "\x00\"\\\u2028\uffff\U0001F600//"; v.Name != want {
		t.Errorf("name %q, want %q", v.Name, want)
	}
	if string(v.Values) != `{"b":"1" , "a":2}` {
		t.Errorf("values %s: a raw value is not kept as it was sent", v.Values)
	}
}

func TestUnmarshalNullsAndAbsence(t *testing.T) {
	v := body{Name: "set", Scopes: []string{"x"}}
	if err := Unmarshal([]byte(`{"name":null,"description":null,"scopes":null,"values":null}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.Name != "" || v.Desc != nil || v.Scopes != nil || string(v.Values) != "null" {
		t.Errorf("nulls decoded to %+v", v)
	}
	v = body{}
	if err := Unmarshal([]byte(`{"description":"","scopes":[]}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.Desc == nil || *v.Desc != "" || v.Scopes == nil || len(v.Scopes) != 0 || v.Values != nil {
		t.Errorf("empty values decoded to %+v", v)
	}
	var empty struct{}
	if err := Unmarshal([]byte(" {} "), &empty); err != nil {
		t.Errorf("an empty object: %v", err)
	}
}

func TestValid(t *testing.T) {
	for _, c := range []struct {
		in   string
		kind Kind
	}{
		{`{"a":[1,{"b":null}],"c":"\ud83d\ude00"}`, 0},
		{`"x"`, 0},
		{`{"a":{"b":1,"b":2}}`, DuplicateName},
		{`["\udc00"]`, LoneSurrogate},
		{"[\"\x80\"]", InvalidUTF8},
		{`1 2`, Trailing},
		{`[`, Truncated},
	} {
		err := Valid([]byte(c.in))
		var e *Error
		switch {
		case c.kind == 0 && err != nil:
			t.Errorf("Valid(%q) = %v", c.in, err)
		case c.kind != 0 && (!errors.As(err, &e) || e.Kind != c.kind):
			t.Errorf("Valid(%q) = %v, want kind %d", c.in, err, c.kind)
		}
	}
}

func TestShorten(t *testing.T) {
	long := "/a/" + strings.Repeat("é", 200) + "/${secret:x.k}"
	got := Shorten(long, 120)
	if len(got) > 120+len("…") || !strings.HasPrefix(got, "/a/") || !strings.HasSuffix(got, "/${secret:x.k}") || !strings.Contains(got, "…") {
		t.Fatalf("Shorten = %q", got)
	}
	if !json.Valid([]byte(`"` + got + `"`)) {
		t.Fatalf("Shorten cut a rune: %q", got)
	}
	if Shorten("/short", 120) != "/short" {
		t.Fatal("a short pointer changed")
	}
}

// The pointer of a problem deep in a value decoded whole names every
// member on its way, whatever comes before it.
func TestPointerInsideARawValue(t *testing.T) {
	type event struct {
		Project string          `json:"project"`
		Input   json.RawMessage `json:"input"`
	}
	for _, c := range []struct{ in, pointer string }{
		{`{"project":"acme","input":{"a":{"b":[{"x":"1","x":"y"}]}}}`, "/input/a/b/0/x"},
		{`{"project":"acme","input":{"a":{"b":["\ud800"]}}}`, "/input/a/b/0"},
		{`{"project":"acme","input":{"a":{"b":{"\ud800":1}}}}`, "/input/a/b"},
	} {
		var ev event
		var e *Error
		if err := Unmarshal([]byte(c.in), &ev); !errors.As(err, &e) || string(e.Pointer) != c.pointer {
			t.Errorf("Unmarshal(%s) = %#v, want pointer %s", c.in, err, c.pointer)
		}
	}
}

func TestNumbersAndBooleans(t *testing.T) {
	var v struct {
		N *int64 `json:"n"`
		B bool   `json:"b"`
	}
	if err := Unmarshal([]byte(`{"n":604800,"b":true}`), &v); err != nil || v.N == nil || *v.N != 604800 || !v.B {
		t.Fatalf("%+v %v", v, err)
	}
	for in, want := range map[string]string{
		`{"n":1.5}`:                  "whole number",
		`{"n":1e3}`:                  "whole number",
		`{"n":99999999999999999999}`: "whole number",
		`{"n":"1"}`:                  "whole number",
		`{"b":1}`:                    "boolean",
	} {
		var w struct {
			N *int64 `json:"n"`
			B bool   `json:"b"`
		}
		err := Unmarshal([]byte(in), &w)
		var e *Error
		if !errors.As(err, &e) || e.Kind != WrongType || e.Want != want {
			t.Errorf("%s: %v, want WrongType %s", in, err, want)
		}
	}
	var n struct {
		N *int64 `json:"n"`
	}
	if err := Unmarshal([]byte(`{"n":null}`), &n); err != nil || n.N != nil {
		t.Fatalf("null: %+v %v", n, err)
	}
}

// Walk visits every string and member name with its pointer, in order,
// and refuses what Valid refuses and what is nested too deep.
func TestWalk(t *testing.T) {
	var got []string
	rec := func(tag string) func(jsontext.Pointer, string) error {
		return func(at jsontext.Pointer, s string) error {
			got = append(got, tag+" "+string(at)+" "+s)
			return nil
		}
	}
	doc := `{"a":"x","b":[1,"y",{"c~/":"z"}],"\u0064":{"e":null}}`
	if err := Walk([]byte(doc), 8, rec("str"), rec("name")); err != nil {
		t.Fatal(err)
	}
	want := []string{"name /a a", "str /a x", "name /b b", "str /b/1 y", "name /b/2/c~0~1 c~/", "str /b/2/c~0~1 z", "name /d d", "name /d/e e"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("walk:\n got %q\nwant %q", got, want)
	}
	got = nil
	if err := Walk([]byte(`"top"`), 0, rec("str"), nil); err != nil || len(got) != 1 || got[0] != "str  top" {
		t.Fatalf("a lone string: %q, %v", got, err)
	}
	for _, c := range []struct {
		doc  string
		kind Kind
	}{
		{`{"a":1,"a":2}`, DuplicateName},
		{`["\ud800"]`, LoneSurrogate},
		{"[\"\xff\"]", InvalidUTF8},
		{`[[[1]]]`, TooDeep},
		{`[1] x`, Trailing},
		{`[1`, Truncated},
		{``, Truncated},
	} {
		err := Walk([]byte(c.doc), 2, nil, nil)
		var e *Error
		if !errors.As(err, &e) || e.Kind != c.kind {
			t.Errorf("Walk(%q) = %v, want kind %d", c.doc, err, c.kind)
		}
	}
	stop := errors.New("stop")
	if err := Walk([]byte(`["a","b"]`), 2, func(jsontext.Pointer, string) error { return stop }, nil); err != stop {
		t.Fatalf("an error of str: %v", err)
	}
}
