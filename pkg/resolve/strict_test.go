package resolve_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/resolve"
)

// noAudit fails if any seeded secret has an audit record.
func (e *env) noAudit(t *testing.T) {
	t.Helper()
	for _, name := range []string{"openai", "db"} {
		rs, _, err := e.svc.ListResolutions(e.ctx, "acme", name, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 0 {
			t.Fatalf("a refused call left %d audit records on %s", len(rs), name)
		}
	}
}

// wantRefused checks a refused call: BadRequest, no output, a message that
// holds want and no value.
func wantRefused(t *testing.T, res *resolve.Result, err error, want string) string {
	t.Helper()
	if res != nil {
		t.Fatalf("output %s, want a BadRequest", res.Output)
	}
	re := asError(t, err)
	if re.Type != resolve.TypeBadRequest {
		t.Fatalf("errorType %s (%s), want BadRequest", re.Type, re.Message)
	}
	if !strings.Contains(re.Message, want) {
		t.Fatalf("message %q does not say %q", re.Message, want)
	}
	for _, c := range []string{canaryOpenAI, canaryDB, canaryDBUser, "CANARY"} {
		if strings.Contains(re.Message, c) {
			t.Fatalf("a value reached the error: %s", re.Message)
		}
	}
	return re.Message
}

// The event is read strictly: a duplicate member, a lone surrogate or
// invalid UTF-8, or a field named in another case is BadRequest naming
// the field, and nothing is read or audited.
func TestStrictEvent(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	ref := `"${secret:db.user}"`
	for _, c := range []struct{ name, payload, want string }{
		{"duplicate project", `{"project":"acme","project":"other","input":` + ref + `}`, `field "project" appears more than once`},
		{"duplicate input", `{"project":"acme","input":"x","input":` + ref + `}`, `field "input" appears more than once`},
		{"Project in capitals", `{"Project":"acme","input":` + ref + `}`, `unknown field "Project" (field names match exactly, case included: "project")`},
		{"INPUT in capitals", `{"project":"acme","INPUT":` + ref + `}`, `unknown field "INPUT"`},
		{"lone surrogate in project", `{"project":"acme\ud800","input":` + ref + `}`, `field "project" is not valid Unicode: it holds a lone UTF-16 surrogate escape`},
		{"invalid UTF-8 in project", "{\"project\":\"acme\xc0\",\"input\":" + ref + "}", `field "project" is not valid Unicode: it holds bytes that are not UTF-8`},
		{"lone surrogate in a field name", `{"project":"acme","\udc00":1,"input":` + ref + `}`, `a field name holds a lone UTF-16 surrogate escape`},
		{"duplicate in step", `{"project":"acme","input":` + ref + `,"step":{"id":"a","id":"b"}}`, `step is not strict JSON: member "id" appears more than once in its top-level object`},
		{"lone surrogate in step", `{"project":"acme","input":` + ref + `,"step":{"step":["\ud800"]}}`, `step is not strict JSON: a string in the value at /step/0 holds a lone UTF-16 surrogate escape`},
		{"duplicate grant", `{"grant":"a","grant":"b","input":` + ref + `}`, `field "grant" appears more than once`},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := e.r.Invoke(e.ctx, []byte(c.payload))
			wantRefused(t, res, err, c.want)
			e.noAudit(t)
		})
	}
}

// The input is read strictly at any depth, through Invoke and through
// Resolve alike (the same message), and a reference in an object key is
// refused: keys are never substituted.
func TestStrictInput(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	g := e.grantAll(t, "acme")
	long := "${secret:db.user}" + strings.Repeat("x", 300)
	for _, c := range []struct{ name, input, want string }{
		{"duplicate at depth", `{"a":{"b":[{"x":"${secret:db.user}","x":"y"}]}}`, `input is not strict JSON: member "x" appears more than once in the object at /a/b/0`},
		{"duplicate at the top", `{"x":1,"x":"${secret:db.user}"}`, `input is not strict JSON: member "x" appears more than once in its top-level object`},
		{"duplicate written with an escape", `{"x":1,"\u0078":"${secret:db.user}"}`, `member "x" appears more than once`},
		{"lone high surrogate", `{"a":["\ud800${secret:db.user}"]}`, `input is not strict JSON: a string in the value at /a/0 holds a lone UTF-16 surrogate escape`},
		{"lone low surrogate", `{"a":{"b":"${secret:db.user}\udc00"}}`, `a string in the value at /a/b holds a lone UTF-16 surrogate escape`},
		{"high surrogate then not a low one", `["${secret:db.user}","\ud83d\u0041"]`, `a string in the value at /1 holds a lone UTF-16 surrogate escape`},
		{"raw invalid UTF-8", "{\"a\":[[\"${secret:db.user}\xff\"]]}", `a string in the value at /a/0/0 holds bytes that are not UTF-8`},
		{"raw encoded surrogate", "[\"\xed\xb0\x80\"]", `a string in the value at /0 holds bytes that are not UTF-8`},
		{"lone surrogate in a key", `{"a":{"\ud800":"${secret:db.user}"}}`, `a string in the value at /a holds a lone UTF-16 surrogate escape`},
		{"lone surrogate at the top", `"\udfff"`, `input is not strict JSON: a string in its top-level value holds a lone UTF-16 surrogate escape`},
		{"reference in a key", `{"a":{"${secret:db.user}":1}}`, `input has a secret reference in an object key, at /a/${secret:db.user}: references are substituted in string values only, never in keys`},
		{"reference in a key beside one in a value", `{"k":"${secret:db.password}","${secret:openai.api_key}":1}`, `at /${secret:openai.api_key}:`},
		{"malformed reference in a key", `{"${secret:":1}`, `input has a secret reference in an object key, at /${secret::`},
		{"invalid reference in a key", `[{"x ${secret:a b.c} y":true}]`, `at /0/x ${secret:a b.c} y:`},
		{"keys written as JSON Pointer tokens", `{"a/b":{"~${secret:db.user}":1}}`, `at /a~1b/~0${secret:db.user}:`},
		{"every key listed", `{"${secret:db.user}":1,"b":{"${secret:x}":2}}`, `input has secret references in 2 object keys, at /${secret:db.user}; /b/${secret:x}:`},
		{"a long key is shortened", `{"` + long + `":1}`, `at /${secret:db.user}xxxxxxxxxxxxxxxxxxxxxx…xxxxxxxx`},
		{"a reference escaped by a JSON escape is one", `{"\u0024{secret:db.user}":1}`, `at /${secret:db.user}:`},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := e.r.Resolve(e.ctx, resolve.Event{Grant: g, Input: json.RawMessage(c.input)})
			direct := wantRefused(t, res, err, c.want)
			res, err = e.r.Invoke(e.ctx, []byte(`{"grant":"`+g+`","input":`+c.input+`}`))
			if viaEvent := wantRefused(t, res, err, c.want); viaEvent != direct {
				t.Errorf("Invoke says %q, Resolve %q", viaEvent, direct)
			}
			if len(direct) > 600 {
				t.Errorf("message of %d bytes: %s", len(direct), direct)
			}
			e.noAudit(t)
		})
	}

	t.Run("many keys are counted as references", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("{")
		for i := range resolve.MaxReferences + 1 {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"${secret:db.k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `}` + strings.Repeat(" ", i/182) + `":1`)
		}
		b.WriteString("}")
		res, err := e.r.Resolve(e.ctx, resolve.Event{Grant: g, Input: json.RawMessage(b.String())})
		wantRefused(t, res, err, "input holds more than 1000 secret references")
	})

	t.Run("twenty keys are listed, the rest counted", func(t *testing.T) {
		var keys []string
		for i := range 25 {
			keys = append(keys, `"${secret:db.k`+string(rune('a'+i))+`}":1`)
		}
		res, err := e.r.Resolve(e.ctx, resolve.Event{Grant: g, Input: json.RawMessage("{" + strings.Join(keys, ",") + "}")})
		msg := wantRefused(t, res, err, "input has secret references in 25 object keys")
		if !strings.Contains(msg, "/${secret:db.kt} (and 5 more)") || strings.Contains(msg, "db.ku") {
			t.Errorf("message %s", msg)
		}
	})
	e.noAudit(t)
}

// What is strict but valid passes, and comes out as it went in but for
// the substituted strings.
func TestStrictButValid(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	g := e.grantAll(t, "acme")
	in := `{"a":"\u2028\uffff\ud83d\ude00\u0000\"\\` + "\u2028\U0001F600" + `","K":1,"k":2,"$${secret:db.user}":"${secret:db.user}","n":[1e400,-0]}`
	want := `{"a":"\u2028\uffff\ud83d\ude00\u0000\"\\` + "\u2028\U0001F600" + `","K":1,"k":2,"$${secret:db.user}":"` + canaryDBUser + `","n":[1e400,-0]}`
	for _, via := range []string{"Resolve", "Invoke"} {
		t.Run(via, func(t *testing.T) {
			var res *resolve.Result
			var err error
			if via == "Resolve" {
				res, err = e.r.Resolve(e.ctx, resolve.Event{Grant: g, Input: json.RawMessage(in)})
			} else {
				res, err = e.r.Invoke(e.ctx, []byte(`{"grant":"`+g+`","input":`+in+`}`))
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Output) != want {
				t.Errorf("output\n got %s\nwant %s", res.Output, want)
			}
		})
	}
}
