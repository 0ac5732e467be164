package resolve_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/internal/testenv"
	"github.com/mobius-secrets/mobius/internal/testsupport"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
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
	store *bolt.Driver
	logs  *testsupport.SyncBuffer
	now   time.Time
	// key mints the grants of e.resolve; made on first use.
	key *secrets.APIKey
}

// mustOpen returns a resolver over a fresh embedded store and local key,
// with a fixed clock and a captured JSON log.
func mustOpen(tb testing.TB, keys secrets.KeyWrapper) *env {
	tb.Helper()
	st := testenv.Bolt(tb)
	if keys == nil {
		keys = testenv.LocalKeys(tb)
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

// apiKey returns an API key of project with every scope.
func (e *env) apiKey(tb testing.TB, project string) *secrets.APIKey {
	tb.Helper()
	if e.key != nil && e.key.Project == project {
		return e.key
	}
	k, _, err := e.svc.CreateAPIKey(e.ctx, project, "scheduler", secrets.AllScopes)
	if err != nil {
		tb.Fatal(err)
	}
	e.key = k
	return k
}

// grant mints a grant of project covering names, with run.
func (e *env) grant(tb testing.TB, project, run string, names ...string) string {
	tb.Helper()
	_, g, err := e.svc.MintGrant(e.ctx, project, e.apiKey(tb, project), secrets.MintGrantInput{Secrets: names, Run: json.RawMessage(run)})
	if err != nil {
		tb.Fatalf("minting a grant for %v: %v", names, err)
	}
	return g
}

// grantAll mints a grant covering every secret of project now.
func (e *env) grantAll(tb testing.TB, project string) string {
	tb.Helper()
	list, _, err := e.svc.ListSecrets(e.ctx, project, secrets.ListQuery{Limit: secrets.MaxGrantSecrets})
	if err != nil || len(list) == 0 {
		tb.Fatalf("project %s has no secrets to grant (%v)", project, err)
	}
	var names []string
	for _, s := range list {
		names = append(names, s.ID)
	}
	return e.grant(tb, project, "", names...)
}

// resolve resolves input under a grant covering every secret of project
// at the time of the call.
func (e *env) resolve(project, input string) (*resolve.Result, error) {
	return e.r.Resolve(e.ctx, resolve.Event{Grant: e.grantAll(testingT{}, project), Input: json.RawMessage(input)})
}

// testingT lets resolve mint outside a test's own T: a failure to mint
// panics, which fails the test that called it.
type testingT struct{ testing.TB }

func (testingT) Helper() {}
func (testingT) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
func (testingT) Fatal(args ...any) { panic(fmt.Sprint(args...)) }

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
		{"keys are neither substituted nor unescaped", `{"$${secret:openai.api_key}":"x","$${HOME}":"${secret:db.user}"}`, `{"$${secret:openai.api_key}":"x","$${HOME}":"` + canaryDBUser + `"}`},
		{"member order kept", `{"z":1,"a":2,"m":3}`, `{"z":1,"a":2,"m":3}`},
		{"text kept as sent", `{"k\u0065y":"\u00e9\/","n":1E+2,"m":-0.0e-0,"s":"${HOME}"}`, `{"k\u0065y":"\u00e9\/","n":1E+2,"m":-0.0e-0,"s":"${HOME}"}`},
		{"only substituted strings change", `{"a":"\u0041","b":"\u0041${secret:db.user}"}`, `{"a":"\u0041","b":"A` + canaryDBUser + `"}`},
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
	want := []resolve.Resolved{{Secret: "db", Key: "password", Version: 2}, {Secret: "db", Key: "user", Version: 2}, {Secret: "openai", Key: "api_key", Version: 1}}
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
	const syntax = "a reference has the form ${secret:NAME.KEY}, optionally with @pending, @previous or @N after KEY"
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
		{"unknown secret", `"${secret:nope.k}"`, "Forbidden",
			`1 secret reference did not resolve: ${secret:nope.k} (not covered by the resolve grant)`},
		{"unknown key", `"${secret:openai.nope}"`, "NotFound",
			`1 secret reference did not resolve: ${secret:openai.nope} (key "nope" not found in secret "openai" (version 1))`},
		{"no enabled version", `"${secret:retired.k}"`, "NotFound",
			`1 secret reference did not resolve: ${secret:retired.k} (secret "retired" has no ENABLED version)`},
		{"every failure listed once, sorted", `{"a":["${secret:openai.nope}"],"b":"${secret:retired.k} ${secret:openai.api_key} ${secret:openai.nope}"}`, "NotFound",
			`2 secret references did not resolve: ${secret:openai.nope} (key "nope" not found in secret "openai" (version 1)); ` +
				`${secret:retired.k} (secret "retired" has no ENABLED version)`},
		{"uncovered before not found, every one listed", `{"a":["${secret:zeta.k}","${secret:openai.nope}"],"b":"${secret:nope.k}","c":"${secret:zeta.k}"}`, "Forbidden",
			`2 secret references did not resolve: ${secret:nope.k} (not covered by the resolve grant); ${secret:zeta.k} (not covered by the resolve grant)`},
		{"malformed before anything else, only malformed listed", `["${secret:x}","${secret:nope.k}","${secret:db.user}","${secret:x}"]`, "BadRequest",
			`1 secret reference did not resolve: ${secret:x} (malformed: no key; ` + syntax + `)`},
		{"bad version selector", `"${secret:db.user@latest}"`, "BadRequest",
			`1 secret reference did not resolve: ${secret:db.user@latest} (malformed: the version after @ must be pending, previous or a version number)`},
		{"no pending version", `"${secret:db.user@pending}"`, "NotFound",
			`1 secret reference did not resolve: ${secret:db.user@pending} (secret "db" has no PENDING version)`},
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
	g := e.grantAll(t, "acme")
	deep := func(n int) string { return strings.Repeat("[", n) + `"${secret:db.user}"` + strings.Repeat("]", n) }
	var refs1000, refs1001 []string
	for i := 0; i < 1001; i++ {
		if i < 1000 {
			refs1000 = append(refs1000, "${secret:db.user}")
		}
		refs1001 = append(refs1001, "${secret:db.user}")
	}
	j := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	bigStep := `{"x":"` + strings.Repeat("r", 4097) + `"}`
	cases := []struct {
		name string
		ev   resolve.Event
		msg  string // "" when it must succeed
	}{
		{"invalid project", resolve.Event{Grant: g, Project: "no/slash", Input: json.RawMessage(`1`)}, "project must be 1-64 characters of A-Z a-z 0-9 _ -, starting with a letter or digit"},
		{"no input", resolve.Event{Grant: g}, "input is required"},
		{"invalid input", resolve.Event{Grant: g, Input: json.RawMessage(`{"a":`)}, "input is not valid JSON"},
		{"trailing input", resolve.Event{Grant: g, Input: json.RawMessage(`1 2`)}, "input is not valid JSON"},
		{"input too large", resolve.Event{Grant: g, Input: json.RawMessage(j(strings.Repeat("a", 1<<20)))}, "input is 1048578 bytes; the limit is 1048576"},
		{"input at the size limit", resolve.Event{Grant: g, Input: json.RawMessage(j(strings.Repeat("a", 1<<20-2)))}, ""},
		{"depth 64", resolve.Event{Grant: g, Input: json.RawMessage(deep(64))}, ""},
		{"depth 65", resolve.Event{Grant: g, Input: json.RawMessage(deep(65))}, "input is nested more than 64 levels deep"},
		{"1000 references", resolve.Event{Grant: g, Input: json.RawMessage(j(refs1000))}, ""},
		{"1001 references", resolve.Event{Grant: g, Input: json.RawMessage(j(refs1001))}, "input holds more than 1000 secret references"},
		{"1001 references in one string", resolve.Event{Grant: g, Input: json.RawMessage(j(strings.Join(refs1001, "")))}, "input holds more than 1000 secret references"},
		{"step not an object", resolve.Event{Grant: g, Input: json.RawMessage(`1`), Step: json.RawMessage(`"s1"`)}, "step must be a JSON object"},
		{"step too large", resolve.Event{Grant: g, Input: json.RawMessage(`1`), Step: json.RawMessage(bigStep)}, "step is 4105 bytes; the limit is 4096"},
		{"step null", resolve.Event{Grant: g, Input: json.RawMessage(`1`), Step: json.RawMessage(`null`)}, ""},
		{"the grant's project named", resolve.Event{Grant: g, Project: "acme", Input: json.RawMessage(`1`)}, ""},
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
	if re.Type != "BadRequest" || !strings.HasPrefix(re.Message, "the response would be ") {
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
	if re := asError(t, err); re.Type != "BadRequest" || !strings.HasPrefix(re.Message, "the response would be ") {
		t.Fatalf("got %v", re)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > resolve.MaxResponseBytes {
		t.Errorf("refusing a %d-byte input allocated %d bytes: the output was built before its size was checked", len(one), n)
	}

	// Just under the limit in substituted values still resolves.
	fits := make([]string, resolve.MaxResponseBytes/(60<<10)-2)
	for i := range fits {
		fits[i] = "${secret:big.k}"
	}
	in, _ = json.Marshal(fits)
	if _, err := e.resolve("acme", string(in)); err != nil {
		t.Fatalf("%d references to a 60 KiB value: %v", len(fits), err)
	}
}

func TestDecodeEvent(t *testing.T) {
	ev, err := resolve.DecodeEvent([]byte(`{"grant":"mbg_x.y","input":{"n":1.000000000000000000001},"step":{"step":"s1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Grant != "mbg_x.y" || string(ev.Input) != `{"n":1.000000000000000000001}` || string(ev.Step) != `{"step":"s1"}` {
		t.Errorf("event = %+v", ev)
	}
	const shape = `the event must be a JSON object {"grant", "input", "step"?, "project"?}: `
	for _, c := range []struct{ in, msg string }{
		{`{"grant":"g","inputs":1}`, shape + `unknown field "inputs"`},
		{`{"grant":1,"input":1}`, shape + `field "grant" must be a string`},
		{`{"grant":"g"`, shape + `invalid JSON: it ends early`},
		{`{"grant":"g" "input":1}`, shape + `invalid JSON at byte 13`},
		{`[1]`, shape + `it is an array`},
		{`null`, shape + `it is null`},
		{`"acme"`, shape + `it is a string`},
		{`{"grant":"g","input":1} {}`, `the event must be one JSON object`},
		{`{"project":"acme","input":1,"run":{"run_id":"r1"}}`, shape + `unknown field "run"`},
		{`{"Grant":"g","input":1}`, shape + `unknown field "Grant" (field names match exactly, case included: "grant")`},
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
	g := e.grant(t, "acme", `{"run_id": "run_42", "loop": "deploy"}`, "db", "openai")
	_, err := e.r.Resolve(e.ctx, resolve.Event{Grant: g, Step: json.RawMessage(`{"step": "push"}`),
		Input: json.RawMessage(`["${secret:db.user}","${secret:db.password}","${secret:db.user}","${secret:openai.api_key}"]`)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"db":     `{"Keys":["password","user"],"Project":"acme","ResolvedAt":"2026-03-01T12:00:00Z","Run":{"run_id":"run_42","loop":"deploy"},"SecretName":"db","Step":{"step":"push"},"Version":1}`,
		"openai": `{"Keys":["api_key"],"Project":"acme","ResolvedAt":"2026-03-01T12:00:00Z","Run":{"run_id":"run_42","loop":"deploy"},"SecretName":"openai","Step":{"step":"push"},"Version":1}`,
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
		if r.SecretID != sec.ID || r.ID == "" || !strings.HasPrefix(r.GrantID, "grt_") || r.KeyID != e.key.ID {
			t.Errorf("%s: record %+v", name, r)
		}
		raw, _ := json.Marshal(r)
		if strings.Contains(string(raw), "CANARY") {
			t.Errorf("%s: a value reached the audit: %s", name, raw)
		}
		got, _ := json.Marshal(map[string]any{"Project": r.Project, "SecretName": r.SecretName, "Version": r.Version,
			"Keys": r.Keys, "Run": r.Run, "Step": r.Step, "ResolvedAt": r.ResolvedAt})
		if string(got) != w {
			t.Errorf("%s: audit\n got %s\nwant %s", name, got, w)
		}
	}
	// A grant without a run, and a call without a step, leave records
	// without them.
	e.now = e.now.Add(time.Second)
	mustResolve(t, e, "acme", `"${secret:openai.api_key}"`)
	rs, _, _ := e.svc.ListResolutions(e.ctx, "acme", "openai", "", 100)
	if len(rs) != 2 || rs[0].Run != nil || rs[0].Step != nil {
		t.Errorf("records = %d, newest run = %s, step = %s", len(rs), rs[0].Run, rs[0].Step)
	}
}

func TestCrossProjectIsolation(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	acme := e.grantAll(t, "acme")
	e.create(t, "bravo", "openai", map[string]string{"api_key": canaryOther})
	e.key = nil
	bravo := e.grantAll(t, "bravo")
	if res, err := e.r.Resolve(e.ctx, resolve.Event{Grant: bravo, Input: json.RawMessage(`"${secret:openai.api_key}"`)}); err != nil || string(res.Output) != `"`+canaryOther+`"` {
		t.Errorf("bravo's grant: %v", err)
	}
	if res, err := e.r.Resolve(e.ctx, resolve.Event{Grant: acme, Input: json.RawMessage(`"${secret:openai.api_key}"`)}); err != nil || string(res.Output) != `"`+canaryOpenAI+`"` {
		t.Errorf("acme's grant: %v", err)
	}
	// Naming another project than the grant's is Unauthorized.
	_, err := e.r.Resolve(e.ctx, resolve.Event{Grant: acme, Project: "bravo", Input: json.RawMessage(`"${secret:openai.api_key}"`)})
	if re := asError(t, err); re.Type != "Unauthorized" {
		t.Errorf("acme's grant naming bravo: %s: %s", re.Type, re.Message)
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
	// Just resolved, so in use: disabling it needs force.
	if _, _, err := e.svc.ChangeVersionState(e.ctx, "acme", "api", "2", secrets.ActionDisable, nil); secrets.ErrorCode(err) != secrets.Conflict {
		t.Fatalf("disabling a version just resolved: %v, want Conflict", err)
	}
	if _, _, err := e.svc.ChangeVersionStateWith(e.ctx, "acme", "api", "2", secrets.ActionDisable, secrets.ActionOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	check("disabled", "", `secret "api" has no ENABLED version`, 0)
	if _, _, err := e.svc.ChangeVersionState(e.ctx, "acme", "api", "1", secrets.ActionEnable, nil); err != nil {
		t.Fatal(err)
	}
	check("rolled back", "CANARY-v1", "", 1)
	if _, _, err := e.svc.ChangeVersionStateWith(e.ctx, "acme", "api", "1", secrets.ActionDestroy, secrets.ActionOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	check("destroyed", "", `secret "api" has no ENABLED version`, 0)
	newName := "api2"
	if _, err := e.svc.UpdateSecret(e.ctx, "acme", "api", secrets.UpdateSecretInput{Name: &newName, Values: map[string]string{"k": "CANARY-v3"}}); err != nil {
		t.Fatal(err)
	}
	check("renamed: the old name is an alias", "CANARY-v3", "", 3)
	if res := mustResolve(t, e, "acme", `"${secret:api2.k}"`); string(res.Output) != `"CANARY-v3"` {
		t.Errorf("renamed: %s", res.Output)
	}
	g := e.grantAll(t, "acme")
	if err := e.svc.DeleteSecret(e.ctx, "acme", "api2", nil); err != nil {
		t.Fatal(err)
	}
	// The grant covers it: it is in the trash, and says so.
	_, err := e.r.Resolve(e.ctx, resolve.Event{Grant: g, Input: json.RawMessage(`"${secret:api2.k}"`)})
	if re := asError(t, err); re.Type != "NotFound" || !strings.Contains(re.Message, `secret "api2" is in the trash`) {
		t.Errorf("deleted: %s: %s", re.Type, re.Message)
	}
	// A grant for another secret does not cover it.
	e.seed(t)
	other := e.grant(t, "acme", "", "db")
	if _, err := e.r.Resolve(e.ctx, resolve.Event{Grant: other, Input: json.RawMessage(`"${secret:api2.k}"`)}); asError(t, err).Type != "Forbidden" {
		t.Errorf("deleted, with a grant minted after: %v", err)
	}
	// Restored, it resolves again under the grant that covered it (a grant
	// binds IDs), with the version it had.
	trash, _, err := e.svc.ListTrash(e.ctx, "acme", "", 0)
	if err != nil || len(trash) != 1 {
		t.Fatalf("trash: %v, %v", trash, err)
	}
	if _, err := e.svc.RestoreSecret(e.ctx, "acme", trash[0].Secret.ID, ""); err != nil {
		t.Fatal(err)
	}
	res, err := e.r.Resolve(e.ctx, resolve.Event{Grant: g, Input: json.RawMessage(`"${secret:api2.k}"`)})
	if err != nil || string(res.Output) != `"CANARY-v3"` {
		t.Errorf("restored: %v, %v", res, err)
	}
}

func TestInvoke(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	res, err := e.r.Invoke(e.ctx, []byte(`{"grant":"`+e.grantAll(t, "acme")+`","input":{"auth":"Bearer ${secret:openai.api_key}","n":0.1e1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != `{"auth":"Bearer `+canaryOpenAI+`","n":0.1e1}` {
		t.Errorf("output %s", res.Output)
	}
	if _, err := e.r.Invoke(e.ctx, []byte(`{"grant":"`+e.grantAll(t, "acme")+`"}`)); asError(t, err).Message != "input is required" {
		t.Errorf("got %v", err)
	}
}

func TestConcurrentResolves(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	g := e.grantAll(t, "acme")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			step := fmt.Sprintf(`{"i":%d}`, i)
			res, err := e.r.Resolve(e.ctx, resolve.Event{Grant: g, Input: json.RawMessage(`"${secret:db.user}"`), Step: json.RawMessage(step)})
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
	fw := &failingKeys{KeyWrapper: testenv.LocalKeys(t)}
	e := mustOpen(t, fw)
	e.seed(t)
	g := e.grantAll(t, "acme")
	fw.fail = true
	res, err := e.r.Resolve(e.ctx, resolve.Event{Grant: g, Input: json.RawMessage(`"${secret:db.user}"`)})
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
	g := e.grantAll(t, "acme")
	allocated := func(in json.RawMessage) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := e.r.Resolve(e.ctx, resolve.Event{Grant: g, Input: in})
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

// After its expires_at a secret resolves nothing, naming the expiry, and
// nothing of it is decrypted or audited; before, it resolves.
func TestExpiredSecret(t *testing.T) {
	e := mustOpen(t, nil)
	at := e.now.Add(30 * time.Minute) // within the grant's hour
	if _, err := e.svc.CreateSecret(e.ctx, "acme", secrets.CreateSecretInput{Name: "temp", Values: map[string]string{"k": "CANARY-temp"}, ExpiresAt: at}); err != nil {
		t.Fatal(err)
	}
	g := e.grantAll(t, "acme")
	res, err := e.r.Resolve(e.ctx, resolve.Event{Grant: g, Input: json.RawMessage(`"${secret:temp.k}"`)})
	if err != nil || string(res.Output) != `"CANARY-temp"` {
		t.Fatalf("before expiry: %v, %v", res, err)
	}
	before := e.logs.String()
	e.now = at
	_, err = e.r.Resolve(e.ctx, resolve.Event{Grant: g, Input: json.RawMessage(`"${secret:temp.k}"`)})
	re := asError(t, err)
	if re.Type != "NotFound" || !strings.Contains(re.Message, `secret "temp" expired at 2026-03-01T12:30:00Z`) || strings.Contains(re.Message, "CANARY") {
		t.Fatalf("at expiry: %s: %s", re.Type, re.Message)
	}
	if strings.Contains(e.logs.String()[len(before):], "CANARY") {
		t.Fatal("a value reached the log")
	}
}
