package resolve_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/internal/testsupport"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/resolve"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// Canary values: they must appear in a resolve output and nowhere else.
const (
	canaryOpenAI = "sk-CANARY-openai-7d1f"
	canaryDB     = "CANARY-db-pass-<&>\"q"
	canaryDBUser = "CANARY-db-user"
	canaryOther  = "sk-CANARY-other-project"
)

type env struct {
	ctx   context.Context
	svc   *secrets.Service
	r     *resolve.Resolver
	store *bolt.Store
	logs  *testsupport.SyncBuffer
	now   time.Time
}

// mustOpen returns a resolver over a fresh embedded store and local key,
// with a fixed clock and a captured JSON log.
func mustOpen(tb testing.TB, keys secrets.KeyWrapper) *env {
	tb.Helper()
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "mobius.db"), bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if keys == nil {
		kek := make([]byte, 32)
		rand.Read(kek)
		w, err := local.New(kek)
		if err != nil {
			tb.Fatal(err)
		}
		keys = w
	}
	e := &env{ctx: context.Background(), store: st, logs: &testsupport.SyncBuffer{}, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.svc = secrets.NewService(st, keys, secrets.Options{Now: func() time.Time { return e.now }, Logger: logger})
	e.r = resolve.New(e.svc, logger)
	tb.Cleanup(func() {
		for _, c := range []string{canaryOpenAI, canaryDB, canaryDBUser, canaryOther, "CANARY"} {
			if strings.Contains(e.logs.String(), c) {
				tb.Errorf("a plaintext value reached the log:\n%s", e.logs.String())
			}
		}
	})
	return e
}

func (e *env) create(tb testing.TB, project, name string, values map[string]string) *secrets.Secret {
	tb.Helper()
	s, err := e.svc.CreateSecret(e.ctx, project, secrets.CreateSecretInput{Name: name, Values: values})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// seed creates the secrets most tests use, in project acme.
func (e *env) seed(tb testing.TB) {
	e.create(tb, "acme", "openai", map[string]string{"api_key": canaryOpenAI})
	e.create(tb, "acme", "db", map[string]string{"password": canaryDB, "user": canaryDBUser})
}

func (e *env) resolve(project, input string) (*resolve.Result, error) {
	return e.r.Resolve(e.ctx, resolve.Event{Project: project, Input: json.RawMessage(input)})
}

func mustResolve(tb testing.TB, e *env, project, input string) *resolve.Result {
	tb.Helper()
	res, err := e.resolve(project, input)
	if err != nil {
		tb.Fatalf("resolve %s: %v", input, err)
	}
	return res
}

func asError(tb testing.TB, err error) *resolve.Error {
	tb.Helper()
	var re *resolve.Error
	if !errors.As(err, &re) {
		tb.Fatalf("error %v (%T) is not a *resolve.Error", err, err)
	}
	return re
}

func TestSubstitution(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	dbq := strings.ReplaceAll(canaryDB, `"`, `\"`) // canaryDB inside a JSON string
	cases := []struct {
		name, in, want string
	}{
		{"whole string", `"${secret:openai.api_key}"`, `"` + canaryOpenAI + `"`},
		{"inside text", `"Bearer ${secret:openai.api_key}!"`, `"Bearer ` + canaryOpenAI + `!"`},
		{"two in one string", `"${secret:db.user}:${secret:db.password}@host"`, `"` + canaryDBUser + ":" + dbq + `@host"`},
		{"escape", `"$${secret:openai.api_key}"`, `"${secret:openai.api_key}"`},
		{"escape then reference", `"$${x} ${secret:db.user}"`, `"${x} ` + canaryDBUser + `"`},
		{"other dollar-brace left alone", `"${HOME} ${ $ $$ ${secret ${secretx:a.b}"`, `"${HOME} ${ $ $$ ${secret ${secretx:a.b}"`},
		{"three dollars", `"$$${secret:a.b}"`, `"$${secret:a.b}"`},
		{"nested", `{"a":[{"b":"${secret:db.password}"},["${secret:openai.api_key}"]],"n":1.50000000000000000001,"big":123456789012345678901234567890,"t":true,"z":null}`,
			`{"a":[{"b":"` + dbq + `"},["` + canaryOpenAI + `"]],"n":1.50000000000000000001,"big":123456789012345678901234567890,"t":true,"z":null}`},
		{"keys are not substituted", `{"${secret:openai.api_key}":"x","${secret:}":"y"}`, `{"${secret:openai.api_key}":"x","${secret:}":"y"}`},
		{"member order and duplicates kept", `{"z":1,"a":2,"z":3}`, `{"z":1,"a":2,"z":3}`},
		{"html not escaped", `"<&> ${secret:db.user}"`, `"<&> ` + canaryDBUser + `"`},
		{"scalar input", `42`, `42`},
		{"null input", `null`, `null`},
		{"whitespace compacted", " { \"a\" : [ 1 , 2 ] } ", `{"a":[1,2]}`},
		{"unicode", `"\u00e9\ud83d\ude00 ${secret:db.user}"`, `"é😀 ` + canaryDBUser + `"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := mustResolve(t, e, "acme", c.in)
			if string(res.Output) != c.want {
				t.Errorf("output\n got %s\nwant %s", res.Output, c.want)
			}
			if !json.Valid(res.Output) {
				t.Errorf("output is not valid JSON: %s", res.Output)
			}
		})
	}
}

func TestResolvedIsSortedAndDeduplicated(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	e.svc.UpdateSecret(e.ctx, "acme", "db", secrets.UpdateSecretInput{Values: map[string]string{"password": canaryDB, "user": canaryDBUser}})
	res := mustResolve(t, e, "acme", `["${secret:openai.api_key}","${secret:db.user}${secret:db.password}",{"x":"${secret:db.user}"},"${secret:openai.api_key}"]`)
	want := []resolve.Resolved{{"db", "password", 2}, {"db", "user", 2}, {"openai", "api_key", 1}}
	got, _ := json.Marshal(res.Resolved)
	wantJ, _ := json.Marshal(want)
	if string(got) != string(wantJ) {
		t.Errorf("resolved = %s, want %s", got, wantJ)
	}
	none := mustResolve(t, e, "acme", `{"a":"no references"}`)
	if none.Resolved == nil || len(none.Resolved) != 0 {
		t.Errorf("resolved with no references = %#v, want an empty list", none.Resolved)
	}
	if b, _ := json.Marshal(none); string(b) != `{"output":{"a":"no references"},"resolved":[]}` {
		t.Errorf("result JSON = %s", b)
	}
}

func TestFailures(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	off := e.create(t, "acme", "retired", map[string]string{"k": "CANARY-retired"})
	if _, _, err := e.svc.ChangeVersionState(e.ctx, "acme", off.Name, "1", secrets.ActionDisable, nil); err != nil {
		t.Fatal(err)
	}
	const syntax = "a reference has the form ${secret:NAME.KEY}"
	const chars = "NAME and KEY are 1-128 characters of A-Z a-z 0-9 _ -, and NAME starts with a letter or digit"
	long := strings.Repeat("x", 200)
	cases := []struct {
		name, in, typ, msg string
	}{
		{"empty", `"${secret:}"`, "BadRequest",
			`1 secret reference did not resolve: ${secret:} (malformed: empty; ` + syntax + `)`},
		{"no key", `"${secret:name}"`, "BadRequest",
			`1 secret reference did not resolve: ${secret:name} (malformed: no key; ` + syntax + `)`},
		{"empty key", `"${secret:name.}"`, "BadRequest",
			`1 secret reference did not resolve: ${secret:name.} (malformed: no key; ` + syntax + `)`},
		{"empty name", `"${secret:.key}"`, "BadRequest",
			`1 secret reference did not resolve: ${secret:.key} (malformed: no secret name; ` + syntax + `)`},
		{"unterminated", `"x ${secret:a.b"`, "BadRequest",
			`1 secret reference did not resolve: ${secret:a.b (malformed: unterminated: no closing })`},
		{"bad name chars", `"${secret:a b.c}"`, "BadRequest",
			`1 secret reference did not resolve: ${secret:a b.c} (malformed: invalid characters; ` + chars + `)`},
		{"bad key chars", `"${secret:a.b.c}"`, "BadRequest",
			`1 secret reference did not resolve: ${secret:a.b.c} (malformed: invalid characters; ` + chars + `)`},
		{"name starts with underscore", `"${secret:_a.b}"`, "BadRequest",
			`1 secret reference did not resolve: ${secret:_a.b} (malformed: invalid characters; ` + chars + `)`},
		{"by ID", `"${secret:sec_01HZZZZZZZZZZZZZZZZZZZZZZZ.k}"`, "BadRequest",
			`1 secret reference did not resolve: ${secret:sec_01HZZZZZZZZZZZZZZZZZZZZZZZ.k} (malformed: names a secret by ID; a reference names the secret by its name)`},
		{"long malformed is shortened", `"${secret:` + long + `"`, "BadRequest",
			`1 secret reference did not resolve: ${secret:` + long[:80-9] + `… (malformed: unterminated: no closing })`},
		{"unknown secret", `"${secret:nope.k}"`, "NotFound",
			`1 secret reference did not resolve: ${secret:nope.k} (secret "nope" not found in project "acme")`},
		{"unknown key", `"${secret:openai.nope}"`, "NotFound",
			`1 secret reference did not resolve: ${secret:openai.nope} (key "nope" not found in secret "openai" (version 1))`},
		{"no enabled version", `"${secret:retired.k}"`, "NotFound",
			`1 secret reference did not resolve: ${secret:retired.k} (secret "retired" has no ENABLED version)`},
		{"every failure listed once, sorted", `{"a":["${secret:zeta.k}","${secret:openai.nope}"],"b":"${secret:zeta.k} ${secret:retired.k} ${secret:openai.api_key}","c":"${secret:zeta.k}"}`, "NotFound",
			`3 secret references did not resolve: ${secret:openai.nope} (key "nope" not found in secret "openai" (version 1)); ` +
				`${secret:retired.k} (secret "retired" has no ENABLED version); ${secret:zeta.k} (secret "zeta" not found in project "acme")`},
		{"malformed with unresolved is BadRequest, both listed", `["${secret:x}","${secret:nope.k}","${secret:db.user}","${secret:x}"]`, "BadRequest",
			`2 secret references did not resolve: ${secret:nope.k} (secret "nope" not found in project "acme"); ${secret:x} (malformed: no key; ` + syntax + `)`},
		{"malformed in a nested value", `{"a":{"b":[["${secret:}"]]}}`, "BadRequest",
			`1 secret reference did not resolve: ${secret:} (malformed: empty; ` + syntax + `)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := e.resolve("acme", c.in)
			if res != nil {
				t.Errorf("partial output %s", res.Output)
			}
			re := asError(t, err)
			if re.Type != c.typ || re.Message != c.msg {
				t.Errorf("error\n got %s: %s\nwant %s: %s", re.Type, re.Message, c.typ, c.msg)
			}
			if strings.Contains(re.Message, "CANARY") {
				t.Errorf("a value reached the error: %s", re.Message)
			}
		})
	}
	// No audit was written by any failure.
	for _, name := range []string{"openai", "db", "retired"} {
		rs, _, err := e.svc.ListResolutions(e.ctx, "acme", name, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 0 {
			t.Errorf("a failed resolve left %d audit records on %s", len(rs), name)
		}
	}
}

func TestEventErrors(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	deep := func(n int) string { return strings.Repeat("[", n) + `"${secret:db.user}"` + strings.Repeat("]", n) }
	var refs1000, refs1001 []string
	for i := 0; i < 1001; i++ {
		if i < 1000 {
			refs1000 = append(refs1000, "${secret:db.user}")
		}
		refs1001 = append(refs1001, "${secret:db.user}")
	}
	j := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	bigRun := `{"x":"` + strings.Repeat("r", 4097) + `"}`
	cases := []struct {
		name string
		ev   resolve.Event
		msg  string // "" when it must succeed
	}{
		{"invalid project", resolve.Event{Project: "no/slash", Input: json.RawMessage(`1`)}, "project must be 1-64 characters of A-Z a-z 0-9 _ -, starting with a letter or digit"},
		{"empty project", resolve.Event{Input: json.RawMessage(`1`)}, "project must be 1-64 characters of A-Z a-z 0-9 _ -, starting with a letter or digit"},
		{"no input", resolve.Event{Project: "acme"}, "input is required"},
		{"invalid input", resolve.Event{Project: "acme", Input: json.RawMessage(`{"a":`)}, "input is not valid JSON"},
		{"trailing input", resolve.Event{Project: "acme", Input: json.RawMessage(`1 2`)}, "input is not valid JSON"},
		{"input too large", resolve.Event{Project: "acme", Input: json.RawMessage(j(strings.Repeat("a", 1<<20)))}, "input is 1048578 bytes; the limit is 1048576"},
		{"input at the size limit", resolve.Event{Project: "acme", Input: json.RawMessage(j(strings.Repeat("a", 1<<20-2)))}, ""},
		{"depth 64", resolve.Event{Project: "acme", Input: json.RawMessage(deep(64))}, ""},
		{"depth 65", resolve.Event{Project: "acme", Input: json.RawMessage(deep(65))}, "input is nested more than 64 levels deep"},
		{"1000 references", resolve.Event{Project: "acme", Input: json.RawMessage(j(refs1000))}, ""},
		{"1001 references", resolve.Event{Project: "acme", Input: json.RawMessage(j(refs1001))}, "input holds more than 1000 secret references"},
		{"1001 references in one string", resolve.Event{Project: "acme", Input: json.RawMessage(j(strings.Join(refs1001, "")))}, "input holds more than 1000 secret references"},
		{"run not an object", resolve.Event{Project: "acme", Input: json.RawMessage(`1`), Run: json.RawMessage(`"r1"`)}, "run must be a JSON object"},
		{"run too large", resolve.Event{Project: "acme", Input: json.RawMessage(`1`), Run: json.RawMessage(bigRun)}, "run is 4105 bytes; the limit is 4096"},
		{"run null", resolve.Event{Project: "acme", Input: json.RawMessage(`1`), Run: json.RawMessage(`null`)}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := e.r.Resolve(e.ctx, c.ev)
			if c.msg == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if res != nil {
				t.Errorf("partial output")
			}
			re := asError(t, err)
			if re.Type != "BadRequest" || re.Message != c.msg {
				t.Errorf("error\n got %s: %s\nwant BadRequest: %s", re.Type, re.Message, c.msg)
			}
		})
	}
}

func TestOutputLimit(t *testing.T) {
	e := mustOpen(t, nil)
	big := strings.Repeat("v", 60<<10)
	e.create(t, "acme", "big", map[string]string{"k": big})
	refs := make([]string, 110) // 110 × 60 KiB > 6 MiB
	for i := range refs {
		refs[i] = "${secret:big.k}"
	}
	in, _ := json.Marshal(refs)
	_, err := e.resolve("acme", string(in))
	re := asError(t, err)
	if re.Type != "BadRequest" || !strings.HasPrefix(re.Message, "the substituted output would be ") {
		t.Errorf("got %v", re)
	}

	// 1,000 references to it in one string: a 17 KB input whose output
	// would be 60 MB. It is refused before any of the output is built.
	one, _ := json.Marshal(map[string]string{"s": strings.Repeat("${secret:big.k}", 1000)})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = e.resolve("acme", string(one))
	runtime.ReadMemStats(&after)
	if re := asError(t, err); re.Type != "BadRequest" || !strings.HasPrefix(re.Message, "the substituted output would be ") {
		t.Fatalf("got %v", re)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > resolve.MaxOutputBytes {
		t.Errorf("refusing a %d-byte input allocated %d bytes: the output was built before its size was checked", len(one), n)
	}

	// Just under the limit in substituted values still resolves.
	fits := make([]string, resolve.MaxOutputBytes/(60<<10)-2)
	for i := range fits {
		fits[i] = "${secret:big.k}"
	}
	in, _ = json.Marshal(fits)
	if _, err := e.resolve("acme", string(in)); err != nil {
		t.Fatalf("%d references to a 60 KiB value: %v", len(fits), err)
	}
}

func TestDecodeEvent(t *testing.T) {
	ev, err := resolve.DecodeEvent([]byte(`{"project":"acme","input":{"n":1.000000000000000000001},"run":{"run_id":"r1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Project != "acme" || string(ev.Input) != `{"n":1.000000000000000000001}` || string(ev.Run) != `{"run_id":"r1"}` {
		t.Errorf("event = %+v", ev)
	}
	for _, c := range []struct{ in, msg string }{
		{`{"project":"acme","inputs":1}`, `the event must be a JSON object {"project", "input", "run"?}: unknown field "inputs"`},
		{`{"project":1,"input":1}`, `the event must be a JSON object {"project", "input", "run"?}: field "project" must be a string`},
		{`{"project":"acme"`, `the event must be a JSON object {"project", "input", "run"?}: invalid JSON`},
		{`[1]`, `the event must be a JSON object {"project", "input", "run"?}: field "" must be a resolve.Event`},
		{`{"project":"acme","input":1} {}`, `the event must be one JSON object`},
	} {
		_, err := resolve.DecodeEvent([]byte(c.in))
		re := asError(t, err)
		if re.Type != "BadRequest" || re.Message != c.msg {
			t.Errorf("DecodeEvent(%s) = %s: %s, want BadRequest: %s", c.in, re.Type, re.Message, c.msg)
		}
	}
}

func TestAudit(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	run := `{"run_id": "run_42", "step": "deploy"}`
	_, err := e.r.Resolve(e.ctx, resolve.Event{Project: "acme", Run: json.RawMessage(run),
		Input: json.RawMessage(`["${secret:db.user}","${secret:db.password}","${secret:db.user}","${secret:openai.api_key}"]`)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"db":     `{"Keys":["password","user"],"Project":"acme","ResolvedAt":"2026-03-01T12:00:00Z","Run":{"run_id":"run_42","step":"deploy"},"SecretName":"db","Version":1}`,
		"openai": `{"Keys":["api_key"],"Project":"acme","ResolvedAt":"2026-03-01T12:00:00Z","Run":{"run_id":"run_42","step":"deploy"},"SecretName":"openai","Version":1}`,
	}
	for name, w := range want {
		sec, err := e.svc.GetSecret(e.ctx, "acme", name)
		if err != nil {
			t.Fatal(err)
		}
		rs, _, err := e.svc.ListResolutions(e.ctx, "acme", name, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 {
			t.Fatalf("%s: %d audit records, want 1", name, len(rs))
		}
		r := rs[0]
		if r.SecretID != sec.ID || r.ID == "" {
			t.Errorf("%s: record %+v", name, r)
		}
		raw, _ := json.Marshal(r)
		if strings.Contains(string(raw), "CANARY") {
			t.Errorf("%s: a value reached the audit: %s", name, raw)
		}
		got, _ := json.Marshal(map[string]any{"Project": r.Project, "SecretName": r.SecretName, "Version": r.Version,
			"Keys": r.Keys, "Run": r.Run, "ResolvedAt": r.ResolvedAt})
		if string(got) != w {
			t.Errorf("%s: audit\n got %s\nwant %s", name, got, w)
		}
	}
	// A call without run leaves a record without one.
	e.now = e.now.Add(time.Second)
	mustResolve(t, e, "acme", `"${secret:openai.api_key}"`)
	rs, _, _ := e.svc.ListResolutions(e.ctx, "acme", "openai", "", 100)
	if len(rs) != 2 || rs[0].Run != nil {
		t.Errorf("records = %d, newest run = %s", len(rs), rs[0].Run)
	}
}

func TestCrossProjectIsolation(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	_, err := e.resolve("bravo", `"${secret:openai.api_key}"`)
	re := asError(t, err)
	if re.Type != "NotFound" || re.Message != `1 secret reference did not resolve: ${secret:openai.api_key} (secret "openai" not found in project "bravo")` {
		t.Errorf("got %s: %s", re.Type, re.Message)
	}
	e.create(t, "bravo", "openai", map[string]string{"api_key": canaryOther})
	if res := mustResolve(t, e, "bravo", `"${secret:openai.api_key}"`); string(res.Output) != `"`+canaryOther+`"` {
		t.Errorf("bravo sees %s", res.Output)
	}
	if res := mustResolve(t, e, "acme", `"${secret:openai.api_key}"`); string(res.Output) != `"`+canaryOpenAI+`"` {
		t.Errorf("acme sees %s", res.Output)
	}
}

func TestLifecycleSeenOnNextCall(t *testing.T) {
	e := mustOpen(t, nil)
	e.create(t, "acme", "api", map[string]string{"k": "CANARY-v1"})
	in := `"${secret:api.k}"`
	check := func(step, want, wantErr string, version int) {
		t.Helper()
		res, err := e.resolve("acme", in)
		if wantErr != "" {
			if re := asError(t, err); re.Type != "NotFound" || !strings.Contains(re.Message, wantErr) {
				t.Errorf("%s: got %s: %s, want NotFound containing %q", step, re.Type, re.Message, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if string(res.Output) != `"`+want+`"` || res.Resolved[0].Version != version {
			t.Errorf("%s: output %s version %d, want %s version %d", step, res.Output, res.Resolved[0].Version, want, version)
		}
	}
	check("created", "CANARY-v1", "", 1)
	if _, err := e.svc.UpdateSecret(e.ctx, "acme", "api", secrets.UpdateSecretInput{Values: map[string]string{"k": "CANARY-v2"}}); err != nil {
		t.Fatal(err)
	}
	check("rotated", "CANARY-v2", "", 2)
	if _, _, err := e.svc.ChangeVersionState(e.ctx, "acme", "api", "2", secrets.ActionDisable, nil); err != nil {
		t.Fatal(err)
	}
	check("disabled", "", `secret "api" has no ENABLED version`, 0)
	if _, _, err := e.svc.ChangeVersionState(e.ctx, "acme", "api", "1", secrets.ActionEnable, nil); err != nil {
		t.Fatal(err)
	}
	check("rolled back", "CANARY-v1", "", 1)
	if _, _, err := e.svc.ChangeVersionState(e.ctx, "acme", "api", "1", secrets.ActionDestroy, nil); err != nil {
		t.Fatal(err)
	}
	check("destroyed", "", `secret "api" has no ENABLED version`, 0)
	newName := "api2"
	if _, err := e.svc.UpdateSecret(e.ctx, "acme", "api", secrets.UpdateSecretInput{Name: &newName, Values: map[string]string{"k": "CANARY-v3"}}); err != nil {
		t.Fatal(err)
	}
	check("renamed", "", `secret "api" not found in project "acme"`, 0)
	if res := mustResolve(t, e, "acme", `"${secret:api2.k}"`); string(res.Output) != `"CANARY-v3"` {
		t.Errorf("renamed: %s", res.Output)
	}
	if err := e.svc.DeleteSecret(e.ctx, "acme", "api2", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.resolve("acme", `"${secret:api2.k}"`); asError(t, err).Type != "NotFound" {
		t.Errorf("deleted: %v", err)
	}
}

func TestInvoke(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	res, err := e.r.Invoke(e.ctx, []byte(`{"project":"acme","input":{"auth":"Bearer ${secret:openai.api_key}","n":0.1e1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != `{"auth":"Bearer `+canaryOpenAI+`","n":0.1e1}` {
		t.Errorf("output %s", res.Output)
	}
	if _, err := e.r.Invoke(e.ctx, []byte(`{"project":"acme"}`)); asError(t, err).Message != "input is required" {
		t.Errorf("got %v", err)
	}
}

func TestConcurrentResolves(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			run := fmt.Sprintf(`{"i":%d}`, i)
			res, err := e.r.Resolve(e.ctx, resolve.Event{Project: "acme", Input: json.RawMessage(`"${secret:db.user}"`), Run: json.RawMessage(run)})
			if err == nil && string(res.Output) != `"`+canaryDBUser+`"` {
				err = fmt.Errorf("output %s", res.Output)
			}
			if err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	rs, _, _ := e.svc.ListResolutions(e.ctx, "acme", "db", "", 100)
	if len(rs) != 16 {
		t.Errorf("%d audit records, want 16", len(rs))
	}
}

// A failing key service surfaces as Unavailable, with no output and no
// audit.
func TestUnavailable(t *testing.T) {
	kek := make([]byte, 32)
	rand.Read(kek)
	w, _ := local.New(kek)
	fw := &failingKeys{KeyWrapper: w}
	e := mustOpen(t, fw)
	e.seed(t)
	fw.fail = true
	res, err := e.resolve("acme", `"${secret:db.user}"`)
	re := asError(t, err)
	if res != nil || re.Type != "Unavailable" || re.Message != "the key service is unavailable" {
		t.Errorf("got %v, %s: %s", res, re.Type, re.Message)
	}
	if rs, _, _ := e.svc.ListResolutions(e.ctx, "acme", "db", "", 10); len(rs) != 0 {
		t.Errorf("%d audit records after a failure", len(rs))
	}
}

type failingKeys struct {
	secrets.KeyWrapper
	fail bool
}

func (f *failingKeys) UnwrapDataKey(ctx context.Context, wrapped []byte, ec map[string]string) ([]byte, error) {
	if f.fail {
		return nil, errors.New("connection refused")
	}
	return f.KeyWrapper.UnwrapDataKey(ctx, wrapped, ec)
}

// An input packed with references to the 1 MiB limit is refused once the
// count passes the limit, without the rest of it being decoded: the memory
// it costs does not grow with what follows the 1001st reference.
func TestTooManyReferencesStopsEarly(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	input := func(n int) json.RawMessage {
		refs := make([]string, n)
		for i := range refs {
			refs[i] = "${secret:db.user}"
		}
		b, _ := json.Marshal(refs)
		return b
	}
	allocated := func(in json.RawMessage) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := e.r.Resolve(e.ctx, resolve.Event{Project: "acme", Input: in})
		runtime.ReadMemStats(&after)
		if re := asError(t, err); re.Type != "BadRequest" || re.Message != "input holds more than 1000 secret references" {
			t.Fatalf("got %v", re)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	large := input(50_000) // ~1 MiB, just under the input limit
	if len(large) > resolve.MaxInputBytes {
		t.Fatalf("the test input is %d bytes, over the limit", len(large))
	}
	small, big := allocated(input(1001)), allocated(large)
	t.Logf("allocated: %d bytes for 1,001 references, %d for 50,000", small, big)
	// Both stop at the 1001st reference; the larger input may cost only
	// what its size does (the decoder's buffer), not 50 times as much.
	if big > small+4*uint64(len(large)) {
		t.Errorf("50,000 references allocated %d bytes, 1,001 allocated %d: the decoding did not stop at the limit", big, small)
	}

	// The same in one string: the parse of that string stops there too.
	one, _ := json.Marshal(map[string]string{"s": strings.Repeat("${secret:db.user}", 60_000)})
	if len(one) > resolve.MaxInputBytes {
		t.Fatalf("the test input is %d bytes, over the limit", len(one))
	}
	oneSmall, _ := json.Marshal(map[string]string{"s": strings.Repeat("${secret:db.user}", 1001)})
	small, big = allocated(oneSmall), allocated(one)
	t.Logf("allocated: %d bytes for 1,001 references in one string, %d for 60,000", small, big)
	if big > small+4*uint64(len(one)) {
		t.Errorf("60,000 references in one string allocated %d bytes, 1,001 allocated %d: the parse did not stop at the limit", big, small)
	}
}
