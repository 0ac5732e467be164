package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

func TestValuesInputErrorsAreUsageErrorsBeforeAnyRequest(t *testing.T) {
	ts := newTestServer(t)
	dir := t.TempDir()
	files := map[string]string{
		"unknown-var.json": "{\n  \"api_key\": \"" + canary + "\",\n  \"env\": \"${NOPE}\"\n}\n",
		"bad-json.json":    "{\n  \"api_key\": \"" + canary + "\",\n  \"env\": prod\n}\n",
		"array.json":       "[\"" + canary + "\"]\n",
		"number.json":      "{\n  \"api_key\": \"" + canary + "\",\n  \"port\": 5432\n}\n",
		"nested.json":      "{\"db\": {\"password\": \"" + canary + "\"}}",
		"dup.json":         "{\n\"a\": \"" + canary + "\",\n\"a\": \"x\"\n}",
		"malformed.json":   "{\"a\": \"${" + canary + "}\"}",
		"unclosed.json":    "{\"a\": \"${ENV\"\n}",
		"ok.json":          "{\"api_key\": \"" + canary + "-${ENV}\"}",
		"latin1.json":      "{\n\"a\": \"caf\xe9\"\n}",
	}
	for name, content := range files {
		writeFile(t, dir, name, content)
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	cases := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown variable", []string{"secrets", "create", "--name", "a", "--file", f("unknown-var.json")}, "unknown-var.json:3: unknown variable ${NOPE}"},
		{"unknown variable with others given", []string{"secrets", "update", "a", "--file", f("unknown-var.json"), "--var", "ENV=prod"}, "unknown-var.json:3: unknown variable ${NOPE}"},
		{"malformed --var", []string{"secrets", "create", "--name", "a", "--file", f("ok.json"), "--var", "ENV=prod", "--var", canary}, "--var #2 is malformed"},
		{"--var with a bad name", []string{"secrets", "create", "--name", "a", "--file", f("ok.json"), "--var", "1ENV=" + canary}, "--var #1"},
		{"invalid JSON in a file", []string{"secrets", "create", "--name", "a", "--file", f("bad-json.json")}, "bad-json.json:3: invalid JSON"},
		{"not an object", []string{"secrets", "create", "--name", "a", "--file", f("array.json")}, "array.json:1: the values must be a JSON object"},
		{"a number value", []string{"secrets", "update", "a", "--file", f("number.json")}, `number.json:3: the value of "port" must be a string`},
		{"a nested value", []string{"secrets", "create", "--name", "a", "--file", f("nested.json")}, `nested.json:1: the value of "db" must be a string`},
		{"a duplicate key", []string{"secrets", "create", "--name", "a", "--file", f("dup.json")}, `dup.json:3: key "a" appears twice`},
		{"invalid UTF-8 in a file", []string{"secrets", "create", "--name", "a", "--file", f("latin1.json")}, "latin1.json:2: not valid UTF-8 text"},
		{"invalid UTF-8 inline", []string{"secrets", "digest", "--values", "{\"a\":\"\xff\"}"}, "--values: not valid UTF-8 text"},
		{"a malformed reference", []string{"secrets", "create", "--name", "a", "--file", f("malformed.json")}, "malformed.json:1: malformed variable reference"},
		{"an unclosed reference", []string{"secrets", "create", "--name", "a", "--file", f("unclosed.json"), "--var", "ENV=x"}, "unclosed.json:1: ${ is not closed"},
		{"invalid inline JSON", []string{"secrets", "create", "--name", "a", "--values", `{"api_key":"` + canary}, "--values is not valid JSON"},
		{"an inline non-string", []string{"secrets", "create", "--name", "a", "--values", `{"api_key":true}`}, `--values: the value of "api_key" must be a string`},
		{"an inline non-object", []string{"secrets", "update", "a", "--values", `"` + canary + `"`}, "--values: the values must be a JSON object"},
		{"--values and --file", []string{"secrets", "create", "--name", "a", "--values", `{"a":"b"}`, "--file", f("ok.json")}, "give either --values or --file, not both"},
		{"--var without --file", []string{"secrets", "create", "--name", "a", "--values", `{"a":"b"}`, "--var", "ENV=x"}, "--var applies to --file only"},
		{"a missing file", []string{"secrets", "create", "--name", "a", "--file", f("absent.json")}, "absent.json: no such file or directory"},
		{"no values", []string{"secrets", "create", "--name", "a"}, "give the values with --file FILE or --values JSON"},
		{"no name", []string{"secrets", "create", "--values", `{"a":"b"}`}, "--name is required"},
		{"nothing to update", []string{"secrets", "update", "a"}, "nothing to update"},
		{"digest of a bad file", []string{"secrets", "digest", "--file", f("number.json")}, `number.json:3: the value of "port"`},
		{"a bad version", []string{"secrets", "get-version", "a", "x1"}, `invalid version "x1"`},
		{"a missing argument", []string{"secrets", "get"}, "takes 1 argument(s)"},
		{"an extra argument", []string{"secrets", "list", "extra"}, "takes no arguments"},
		{"an unknown flag", []string{"secrets", "list", "--nope"}, "unknown flag: --nope"},
		{"an unknown command", []string{"secrets", "nope"}, `unknown command "nope"`},
		{"a typo in a command", []string{"secrets", "craete"}, `unknown command "craete" for "mobius secrets"; did you mean create?`},
		{"an unknown flag on the root", []string{"--bogus"}, "unknown flag: --bogus"},
		{"an unknown flag on a group", []string{"secrets", "--bogus"}, "unknown flag: --bogus"},
		{"a typo in a group", []string{"secret", "list"}, `unknown command "secret" for "mobius"; did you mean secrets?`},
		{"an unknown output", []string{"secrets", "list", "-o", "yaml"}, `invalid --output "yaml"`},
		{"a bad flag value", []string{"secrets", "list", "--page-size", "many"}, "invalid argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.requests.Load()
			r := runCLI(t, ts.env(), "", tc.args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tc.want)
			}
			if !strings.HasPrefix(r.stderr, "error: ") || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr is not one error line: %q", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			noCanary(t, r)
			if n := ts.requests.Load() - before; n != 0 {
				t.Errorf("%d requests were sent", n)
			}
		})
	}
}

func TestFileSubstitution(t *testing.T) {
	ts := newTestServer(t)
	dir := t.TempDir()
	// A value with quotes, a backslash and a newline must land in the JSON
	// string intact; $${ stays a literal ${.
	p := writeFile(t, dir, "creds.json", "{\n  \"url\": \"postgres://${USER}@db/${ENV}\",\n  \"tpl\": \"$${ENV}\",\n  \"pw\": \"${PW}\"\n}\n")
	pw := canary + "\"\\\n"
	want := map[string]string{"url": "postgres://app@db/prod", "tpl": "${ENV}", "pw": pw}
	out := mustRun(t, ts.env(), "secrets", "digest", "--file", p, "--var", "USER=app", "--var", "ENV=prod", "--var", "PW="+pw)
	if got := strings.TrimSpace(out); got != secrets.Digest(want) {
		t.Fatalf("digest %s, want %s", got, secrets.Digest(want))
	}
	// Standard input works as "-", and the server computes the same digest.
	stdin := "{\"api_key\": \"" + canary + "-${ENV}\"}"
	r := runCLI(t, ts.env(), stdin, "secrets", "create", "--name", "from-stdin", "--file", "-", "--var", "ENV=dev", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	noCanary(t, r)
	v := mustRun(t, ts.env(), "secrets", "get-version", "from-stdin", "1", "-o", "json")
	var got struct{ SHA256 string }
	if err := json.Unmarshal([]byte(v), &got); err != nil {
		t.Fatal(err)
	}
	if want := secrets.Digest(map[string]string{"api_key": canary + "-dev"}); got.SHA256 != want {
		t.Fatalf("server sha256 %s, want %s", got.SHA256, want)
	}
}

func TestSecretsLifecycle(t *testing.T) {
	ts := newTestServer(t)
	env := ts.env()
	mustRun(t, env, "secrets", "create", "--name", "openai", "--description", "OpenAI key used by the summarizer.", "--values", `{"api_key":"`+canary+`"}`)

	t.Run("json output is the API's JSON", func(t *testing.T) {
		for _, args := range [][]string{
			{"secrets", "get", "openai"},
			{"secrets", "list"},
			{"secrets", "list-versions", "openai"},
			{"secrets", "get-version", "openai", "1"},
			{"secrets", "resolutions", "openai"},
			{"keys", "list"},
		} {
			got := mustRun(t, env, append(args, "-o", "json")...)
			path := map[string]string{
				"get": "/secrets/openai", "list": "/secrets", "list-versions": "/secrets/openai/versions",
				"get-version": "/secrets/openai/versions/1", "resolutions": "/secrets/openai/resolutions",
			}[args[1]]
			if args[0] == "keys" {
				path = "/api-keys"
			}
			want := apiGet(t, ts, "/v1/projects/default"+path)
			if strings.TrimSpace(got) != strings.TrimSpace(want) {
				t.Errorf("mobius %v -o json:\n%s\nthe API:\n%s", args, got, want)
			}
		}
	})

	r := runCLI(t, env, "", "secrets", "create", "--name", "openai", "--values", `{"api_key":"`+canary+`"}`)
	if r.code != 1 || r.stderr != "error: Conflict (409): secret \"openai\" already exists in project \"default\"\n" {
		t.Fatalf("duplicate create: exit %d, stderr %q", r.code, r.stderr)
	}
	noCanary(t, r)

	mustRun(t, env, "secrets", "update", "openai", "--values", `{"api_key":"`+canary+`-2"}`)
	mustRun(t, env, "secrets", "update", "openai", "--name", "openai-prod", "--description", "")
	out := mustRun(t, env, "secrets", "get", "openai-prod")
	for _, want := range []string{"Name:             openai-prod", "Current version:  2", "Latest version:   2", "Description:      -"} {
		if !strings.Contains(out, want) {
			t.Errorf("get: %q missing from\n%s", want, out)
		}
	}
	out = mustRun(t, env, "secrets", "disable-version", "openai-prod", "current")
	if !strings.Contains(out, "State:          DISABLED") {
		t.Errorf("disable-version:\n%s", out)
	}
	if out := mustRun(t, env, "secrets", "get", "openai-prod"); !strings.Contains(out, "Current version:  none") {
		t.Errorf("get after disable:\n%s", out)
	}
	mustRun(t, env, "secrets", "enable-version", "openai-prod", "1")
	mustRun(t, env, "secrets", "destroy-version", "openai-prod", "2")
	r = runCLI(t, env, "", "secrets", "enable-version", "openai-prod", "2")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: Conflict (409): version 2") {
		t.Errorf("enable DESTROYED: exit %d, stderr %q", r.code, r.stderr)
	}
	out = mustRun(t, env, "secrets", "delete", "openai-prod")
	if !strings.Contains(out, "Deleted secret") {
		t.Errorf("delete: %q", out)
	}
	r = runCLI(t, env, "", "secrets", "get", "openai-prod")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: Not Found (404): secret \"openai-prod\" not found in project \"default\": it is in the trash") || r.stdout != "" {
		t.Errorf("get deleted: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	mustRun(t, env, "secrets", "create", "--name", "tmp", "--values", `{"k":"v"}`)
	if out := mustRun(t, env, "secrets", "delete", "tmp", "-o", "json"); out != "" {
		t.Errorf("delete -o json printed %q; the API answers 204 with no body", out)
	}
}

func apiGet(t *testing.T, ts *testServer, path string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+ts.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

func TestAPIAndNetworkErrorsExitOne(t *testing.T) {
	ts := newTestServer(t)
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"not found", ts.env(), []string{"secrets", "get", "nope"}, `error: Not Found (404): secret "nope" not found in project "default"`},
		{"another project", ts.env(), []string{"secrets", "list", "--project", "acme"}, "error: Not Found (404)"},
		{"a bad key", ts.env(), []string{"secrets", "list", "--api-key", "mbs_nope"}, "error: Unauthorized (401)"},
		{"a server-side validation", ts.env(), []string{"secrets", "create", "--name", "-bad", "--values", `{"a":"b"}`}, "error: Bad Request (400)"},
		{"an empty values object", ts.env(), []string{"secrets", "create", "--name", "empty", "--values", `{}`}, "error: Bad Request (400)"},
		{"no server", map[string]string{"MOBIUS_ENDPOINT": "http://" + closedAddr(t), "MOBIUS_API_KEY": ts.Key},
			[]string{"secrets", "list"}, "error: cannot reach the Mobius server at http://127.0.0.1:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, tc.env, "", tc.args...)
			if r.code != 1 {
				t.Errorf("exit %d, want 1; stderr %q", r.code, r.stderr)
			}
			if !strings.HasPrefix(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line starting %q", r.stderr, tc.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q", r.stdout)
			}
		})
	}
	r := runCLI(t, map[string]string{"MOBIUS_ENDPOINT": "http://" + closedAddr(t), "MOBIUS_API_KEY": ts.Key}, "", "secrets", "list")
	if !strings.Contains(r.stderr, "mobius serve") {
		t.Errorf("a network error does not point at mobius serve: %q", r.stderr)
	}
}

func TestNoAPIKeyIsAUsageError(t *testing.T) {
	ts := newTestServer(t)
	r := runCLI(t, map[string]string{"MOBIUS_ENDPOINT": ts.URL}, "", "secrets", "list")
	if r.code != 2 || !strings.Contains(r.stderr, "no API key") || ts.requests.Load() != 0 {
		t.Fatalf("exit %d, stderr %q, %d requests", r.code, r.stderr, ts.requests.Load())
	}
}

// recorder is a fake API that remembers who called it, with what.
type recorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	auth string
	path string
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.auth, rec.path = r.Header.Get("Authorization"), r.URL.Path
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"secrets":[],"next_page_token":""}`)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (r *recorder) last() (auth, path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.auth, r.path
}

func TestSettingsPrecedence(t *testing.T) {
	fromFile, fromEnv, fromFlag := newRecorder(t), newRecorder(t), newRecorder(t)
	cfgHome := t.TempDir()
	if err := os.MkdirAll(filepath.Join(cfgHome, "mobius"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(fileConfig{Endpoint: fromFile.srv.URL, Project: "fileproj", APIKey: "key-file"})
	writeFile(t, filepath.Join(cfgHome, "mobius"), "config.json", string(cfg))

	cases := []struct {
		name     string
		env      map[string]string
		flags    []string
		want     *recorder
		wantAuth string
		wantProj string
	}{
		{"config file", nil, nil, fromFile, "key-file", "fileproj"},
		{"env over config file", map[string]string{"MOBIUS_ENDPOINT": fromEnv.srv.URL, "MOBIUS_API_KEY": "key-env", "MOBIUS_PROJECT": "envproj"}, nil, fromEnv, "key-env", "envproj"},
		{"flags over env", map[string]string{"MOBIUS_ENDPOINT": fromEnv.srv.URL, "MOBIUS_API_KEY": "key-env", "MOBIUS_PROJECT": "envproj"},
			[]string{"--endpoint", fromFlag.srv.URL, "--api-key", "key-flag", "--project", "flagproj"}, fromFlag, "key-flag", "flagproj"},
		{"each setting on its own", map[string]string{"MOBIUS_API_KEY": "key-env"}, []string{"--project", "flagproj"}, fromFile, "key-env", "flagproj"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"XDG_CONFIG_HOME": cfgHome}
			for k, v := range tc.env {
				env[k] = v
			}
			r := runCLI(t, env, "", append([]string{"secrets", "list"}, tc.flags...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			auth, path := tc.want.last()
			if auth != "Bearer "+tc.wantAuth || path != "/v1/projects/"+tc.wantProj+"/secrets" {
				t.Errorf("request to %s with %q, want project %s and key %s", path, auth, tc.wantProj, tc.wantAuth)
			}
		})
	}

	t.Run("defaults without a config file", func(t *testing.T) {
		rec := newRecorder(t)
		r := runCLI(t, map[string]string{"MOBIUS_ENDPOINT": rec.srv.URL, "MOBIUS_API_KEY": "k"}, "", "secrets", "list")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if _, path := rec.last(); path != "/v1/projects/default/secrets" {
			t.Errorf("path %s, want the default project", path)
		}
		c := &cli{getenv: func(string) string { return "" }}
		c.rootCommand()
		ep, _, _, err := c.settings()
		if err != nil || ep != defaultEndpoint {
			t.Errorf("default endpoint %q, %v", ep, err)
		}
	})

	t.Run("a broken config file is a usage error", func(t *testing.T) {
		bad := t.TempDir()
		if err := os.MkdirAll(filepath.Join(bad, "mobius"), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(bad, "mobius"), "config.json", "{not json")
		r := runCLI(t, map[string]string{"XDG_CONFIG_HOME": bad}, "", "secrets", "list")
		if r.code != 2 || !strings.Contains(r.stderr, "config.json is not valid JSON") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func TestListsFetchEveryPage(t *testing.T) {
	ts := newTestServer(t)
	env := ts.env()
	names := []string{"a1", "a2", "a3", "b1", "b2"}
	for _, n := range names {
		mustRun(t, env, "secrets", "create", "--name", n, "--values", `{"k":"`+canary+`"}`)
	}
	for i := 0; i < 4; i++ {
		mustRun(t, env, "secrets", "update", "a1", "--values", `{"k":"`+canary+`"}`)
	}
	var page struct {
		Secrets []struct{ Name string } `json:"secrets"`
		Next    string                  `json:"next_page_token"`
	}
	out := mustRun(t, env, "secrets", "list", "--page-size", "2", "-o", "json")
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Secrets) != 5 || page.Next != "" {
		t.Fatalf("list over pages: %v %+v", err, page)
	}
	out = mustRun(t, env, "secrets", "list", "--page-size", "2", "--prefix", "a", "-o", "json")
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Secrets) != 3 || page.Secrets[2].Name != "a3" {
		t.Fatalf("list with a prefix: %v %+v", err, page)
	}
	out = mustRun(t, env, "secrets", "list-versions", "a1", "--page-size", "2")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 6 || !strings.HasPrefix(lines[5], "1 ") {
		t.Fatalf("list-versions over pages:\n%s", out)
	}
}

// TestTableGolden pins the table output of list, list-versions, get-version,
// get and resolutions, on a server and a CLI with an injected clock.
func TestTableGolden(t *testing.T) {
	ts := newTestServer(t)
	env := ts.env()
	ts.mustRun(t, "secrets", "create", "--name", "openai", "--description", "OpenAI key used by the summarizer.", "--values", `{"api_key":"`+canary+`"}`,
		"--label", "team=ml", "--label", "env=prod", "--expires-in", "30d")
	ts.Clock.Advance(time.Hour)
	mustRun(t, env, "secrets", "create", "--name", "stripe", "--values", `{"secret_key":"`+canary+`","webhook_secret":"`+canary+`"}`)
	ts.Clock.Advance(24 * time.Hour)
	mustRun(t, env, "secrets", "update", "openai", "--values", `{"api_key":"`+canary+`-2"}`)
	ts.Clock.Advance(3 * time.Minute)
	mustRun(t, env, "secrets", "update", "openai", "--values", `{"api_key":"`+canary+`-3","org":"acme"}`)
	ts.Clock.Advance(time.Minute)
	mustRun(t, env, "secrets", "destroy-version", "openai", "1")
	mustRun(t, env, "secrets", "disable-version", "stripe", "1")
	mustRun(t, env, "secrets", "update", "stripe", "--stage", "pending", "--values", `{"secret_key":"`+canary+`-2","webhook_secret":"`+canary+`-2"}`)

	sec, err := ts.Svc.GetSecret(context.Background(), "default", "openai")
	if err != nil {
		t.Fatal(err)
	}
	ts.Clock.Advance(time.Minute)
	if err := ts.Svc.RecordResolutions(context.Background(), []*secrets.Resolution{
		{Project: "default", SecretID: sec.ID, SecretName: "openai", Version: 3, Keys: []string{"api_key"}, Run: json.RawMessage(`{"run_id":"run_1","step":"summarize"}`)},
	}); err != nil {
		t.Fatal(err)
	}

	golden(t, "list.golden", mustRun(t, env, "secrets", "list"))
	golden(t, "list-versions.golden", mustRun(t, env, "secrets", "list-versions", "openai"))
	golden(t, "get-version.golden", mustRun(t, env, "secrets", "get-version", "openai", "3"))
	golden(t, "resolutions.golden", mustRun(t, env, "secrets", "resolutions", "openai"))
	// IDs are random: the golden files hold a placeholder.
	noID := func(out string) string {
		return regexp.MustCompile(`sec_[0-9A-Z]{26}`).ReplaceAllString(out, "sec_<id>")
	}
	golden(t, "get.golden", noID(ts.mustRun(t, "secrets", "get", "openai")))
	golden(t, "get-pending.golden", noID(ts.mustRun(t, "secrets", "get", "stripe")))
	// Times follow TZ.
	out := mustRun(t, map[string]string{"MOBIUS_ENDPOINT": ts.URL, "MOBIUS_API_KEY": ts.Key, "TZ": "Asia/Tokyo"}, "secrets", "get-version", "openai", "3")
	if !strings.Contains(out, "2026-11-30 00:06") {
		t.Errorf("get-version in Asia/Tokyo:\n%s", out)
	}
}

func TestDigestMatchesTheServer(t *testing.T) {
	ts := newTestServer(t)
	values := `{"b":"` + canary + `","a":"é\u00e9 \ud83d\ude00","c":"<&>"}`
	mustRun(t, ts.env(), "secrets", "create", "--name", "d", "--values", values)
	local := strings.TrimSpace(mustRun(t, ts.env(), "secrets", "digest", "--values", values))
	var v struct{ SHA256 string }
	json.Unmarshal([]byte(mustRun(t, ts.env(), "secrets", "get-version", "d", "current", "-o", "json")), &v)
	if local != v.SHA256 || len(local) != 64 {
		t.Fatalf("local digest %q, server %q", local, v.SHA256)
	}
	js := mustRun(t, nil, "secrets", "digest", "--values", values, "-o", "json")
	if js != `{"sha256":"`+local+`"}`+"\n" {
		t.Errorf("digest -o json: %q", js)
	}
}

func TestKeysCommands(t *testing.T) {
	ts := newTestServer(t)
	env := ts.env()
	out := mustRun(t, env, "keys", "create", "--name", "ci", "--scopes", "secrets:read,secrets:write", "-o", "json")
	var k struct{ ID, Key string }
	if err := json.Unmarshal([]byte(out), &k); err != nil || !strings.HasPrefix(k.Key, "mbs_") {
		t.Fatalf("keys create: %v %q", err, out)
	}
	// The new key works, and cannot manage keys.
	ciEnv := map[string]string{"MOBIUS_ENDPOINT": ts.URL, "MOBIUS_API_KEY": k.Key}
	mustRun(t, ciEnv, "secrets", "list")
	if r := runCLI(t, ciEnv, "", "keys", "list"); r.code != 1 || !strings.HasPrefix(r.stderr, "error: Forbidden (403)") {
		t.Errorf("keys list without keys:admin: exit %d %q", r.code, r.stderr)
	}
	out = mustRun(t, env, "keys", "list")
	if !strings.Contains(out, k.ID) || !strings.Contains(out, "secrets:read,secrets:write") || strings.Contains(out, k.Key) {
		t.Errorf("keys list:\n%s", out)
	}
	mustRun(t, env, "keys", "revoke", k.ID)
	if r := runCLI(t, ciEnv, "", "secrets", "list"); r.code != 1 || !strings.HasPrefix(r.stderr, "error: Unauthorized (401)") {
		t.Errorf("revoked key: exit %d %q", r.code, r.stderr)
	}
	if r := runCLI(t, env, "", "keys", "create", "--scopes", "root"); r.code != 1 || !strings.HasPrefix(r.stderr, "error: Bad Request (400)") {
		t.Errorf("unknown scope: exit %d %q", r.code, r.stderr)
	}
}

func TestAdminCreateKey(t *testing.T) {
	data := t.TempDir()
	r := runCLI(t, nil, "", "admin", "create-key", "--project", "acme", "--name", "ops", "--data", data, "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var k map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || len(k) != 3 || k["project"] != "acme" || !strings.HasPrefix(k["key"], "mbs_") || !strings.HasPrefix(k["id"], "key_") {
		t.Fatalf("admin create-key -o json: %v %q", err, r.stdout)
	}
	r = runCLI(t, nil, "", "admin", "create-key", "--project", "acme", "--data", data)
	if r.code != 0 || !strings.Contains(r.stdout, "Key:") || !strings.Contains(r.stdout, "secrets:read,secrets:write,keys:admin") {
		t.Fatalf("admin create-key: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	t.Run("without a project", func(t *testing.T) {
		r := runCLI(t, nil, "", "admin", "create-key", "--data", data)
		if r.code != 2 || !strings.Contains(r.stderr, "--project is required") {
			t.Errorf("exit %d %q", r.code, r.stderr)
		}
	})
	t.Run("an unknown scope", func(t *testing.T) {
		r := runCLI(t, nil, "", "admin", "create-key", "--project", "acme", "--scopes", "root", "--data", data)
		if r.code != 2 || r.stderr != "error: unknown scope \"root\"; scopes are secrets:read, secrets:write, keys:admin, secrets:resolve\n" {
			t.Errorf("exit %d %q", r.code, r.stderr)
		}
	})
	t.Run("while a server holds the store", func(t *testing.T) {
		st, err := bolt.Open(filepath.Join(data, "mobius.db"), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		r := runCLI(t, nil, "", "admin", "create-key", "--project", "acme", "--data", data)
		if r.code != 1 || !strings.Contains(r.stderr, "in use by a running mobius server") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("exit %d %q", r.code, r.stderr)
		}
	})
	t.Run("create-table without a table", func(t *testing.T) {
		r := runCLI(t, nil, "", "admin", "create-table")
		if r.code != 2 || !strings.Contains(r.stderr, "MOBIUS_TABLE") {
			t.Errorf("exit %d %q", r.code, r.stderr)
		}
	})
}

func TestVersionAndCompletion(t *testing.T) {
	if out := mustRun(t, nil, "version"); out != "mobius dev\n" {
		t.Errorf("version: %q", out)
	}
	if out := mustRun(t, nil, "version", "-o", "json"); out != `{"version":"dev"}`+"\n" {
		t.Errorf("version -o json: %q", out)
	}
	if out := mustRun(t, nil, "completion", "bash"); !strings.Contains(out, "mobius") {
		t.Errorf("completion bash: %.80q", out)
	}
}

// TestEveryCommandHasHelp walks the command tree: every command says what it
// does in one line and shows an example, and --help works.
func TestEveryCommandHasHelp(t *testing.T) {
	c := &cli{getenv: func(string) string { return "" }}
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
		path := cmd.CommandPath()
		if strings.HasPrefix(path, "mobius completion") || strings.HasPrefix(path, "mobius help") {
			return
		}
		if cmd.Short == "" || strings.Contains(cmd.Short, "\n") {
			t.Errorf("%s: Short %q", path, cmd.Short)
		}
		if cmd.Runnable() && !cmd.HasSubCommands() && cmd.Example == "" {
			t.Errorf("%s: no Example", path)
		}
		args := append(strings.Fields(path)[1:], "--help")
		r := runCLI(t, nil, "", args...)
		want := cmd.Long
		if want == "" {
			want = cmd.Short
		}
		if r.code != 0 || !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("%s --help: exit %d", path, r.code)
		}
	}
	walk(c.rootCommand())
	r := runCLI(t, nil, "", "secrets", "create", "--help")
	if !strings.Contains(r.stdout, "--file") || !strings.Contains(r.stdout, "shell history") {
		t.Errorf("secrets create --help does not recommend --file:\n%s", r.stdout)
	}
}

// A project the key cannot see answers as a missing one; the CLI says the
// usual cause.
func TestAnotherProjectsKeyIsExplained(t *testing.T) {
	ts := newTestServer(t)
	env := ts.env()
	env["MOBIUS_PROJECT"] = "acme" // the key is default's
	r := runCLI(t, env, "", "secrets", "list")
	want := `error: Not Found (404): project "acme" not found (an API key sees only its own project: check --project or MOBIUS_PROJECT)` + "\n"
	if r.code != 1 || r.stderr != want {
		t.Fatalf("exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	// A missing secret in the key's own project gets no such hint.
	r = runCLI(t, ts.env(), "", "secrets", "get", "nope")
	if r.code != 1 || strings.Contains(r.stderr, "own project") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}
