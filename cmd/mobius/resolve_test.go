package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/app"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// grantServer is what `mobius serve` answers (the HTTP API, its
// resolve-grants route and the Invoke API of the resolve function, on one
// handler), recording the grant requests and the invocation payloads it
// sees. withGrants false stands for an older server, which answers the
// resolve-grants route with "no such route".
type grantServer struct {
	URL, Key string
	Svc      *secrets.Service
	by       *secrets.APIKey

	mu     sync.Mutex
	minted []string // the bodies of the grant requests
	events []string // the invocation payloads
}

func newGrantServer(t *testing.T, withGrants bool) *grantServer {
	t.Helper()
	ctx := context.Background()
	a, err := app.New(ctx, app.Config{Store: app.StoreBolt, DataDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	gs := &grantServer{Svc: a.Service}
	gs.by, gs.Key, err = gs.Svc.CreateAPIKey(ctx, "default", "test", secrets.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gs.Svc.CreateSecret(ctx, "default", secrets.CreateSecretInput{Name: "db", Values: map[string]string{"password": canary, "user": "app"}}); err != nil {
		t.Fatal(err)
	}
	h := a.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		grants := strings.HasSuffix(req.URL.Path, "/resolve-grants")
		if grants && !withGrants {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			io.WriteString(w, `{"error":{"code":"Not Found","status":404,"message":"no such route"}}`)
			return
		}
		if grants || strings.HasPrefix(req.URL.Path, "/2015-03-31/") {
			b, _ := io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(b))
			gs.mu.Lock()
			if grants {
				gs.minted = append(gs.minted, string(b))
			} else {
				gs.events = append(gs.events, string(b))
			}
			gs.mu.Unlock()
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	gs.URL = srv.URL
	return gs
}

func (gs *grantServer) env() map[string]string {
	return map[string]string{"MOBIUS_ENDPOINT": gs.URL, "MOBIUS_API_KEY": gs.Key, "MOBIUS_PROJECT": "default"}
}

// grant mints a grant of project for every secret the tests resolve.
func (gs *grantServer) grant(project string) string {
	_, g, err := gs.Svc.MintGrant(context.Background(), project, gs.by, secrets.MintGrantInput{Secrets: []string{"db"}})
	if err != nil {
		panic(err)
	}
	return g
}

func (gs *grantServer) last() (minted, event string) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if len(gs.minted) > 0 {
		minted = gs.minted[len(gs.minted)-1]
	}
	if len(gs.events) > 0 {
		event = gs.events[len(gs.events)-1]
	}
	return minted, event
}

func (gs *grantServer) invocations() int {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	return len(gs.events)
}

func without(env map[string]string, keys ...string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

func TestResolve(t *testing.T) {
	gs := newGrantServer(t, true)
	dir := t.TempDir()
	params := writeFile(t, dir, "params.json", `{"dsn":"postgres://${secret:db.user}:${secret:db.password}@db/app","n":1.000000000000000000001}`)
	missing := writeFile(t, dir, "missing.json", `{"a":"${secret:db.nope}","b":"${secret:ghost.k}"}`)
	wantOut := `{"dsn":"postgres://app:` + canary + `@db/app","n":1.000000000000000000001}` + "\n"

	t.Run("minting a grant for the secrets the file names", func(t *testing.T) {
		r := runCLI(t, gs.env(), "", "resolve", "--file", params, "--run", `{"run_id":"r1"}`)
		if r.code != 0 || r.stdout != wantOut || r.stderr != "" {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
		minted, event := gs.last()
		if minted != `{"secrets":["db"],"run":{"run_id":"r1"},"ttl_seconds":60}` {
			t.Errorf("grant request %s", minted)
		}
		if !strings.HasPrefix(event, `{"grant":"mbg_`) || strings.Contains(event, `"step"`) || strings.Contains(event, `"project"`) {
			t.Errorf("event %s", event)
		}
	})
	t.Run("-o json prints the whole result", func(t *testing.T) {
		r := runCLI(t, gs.env(), "", "resolve", "--file", params, "-o", "json")
		var res struct {
			Output   json.RawMessage
			Resolved []struct {
				Secret, Key string
				Version     int
			}
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil || string(res.Output)+"\n" != wantOut || len(res.Resolved) != 2 || res.Resolved[0].Version != 1 {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("a grant given, with a step, and no API key", func(t *testing.T) {
		g := gs.grant("default")
		r := runCLI(t, without(gs.env(), "MOBIUS_API_KEY"), "", "resolve", "--file", params, "--grant", g, "--step", `{"step":"fetch"}`)
		if r.code != 0 || r.stdout != wantOut {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
		_, event := gs.last()
		if !strings.HasPrefix(event, `{"grant":"`+g+`",`) || !strings.HasSuffix(event, `,"step":{"step":"fetch"}}`) {
			t.Errorf("event %s", event)
		}
	})
	t.Run("a grant from the environment, parameters from stdin", func(t *testing.T) {
		env := without(gs.env(), "MOBIUS_API_KEY")
		env["MOBIUS_GRANT"] = gs.grant("default")
		r := runCLI(t, env, `["${secret:db.user}"]`, "resolve", "--file", "-")
		if r.code != 0 || r.stdout != `["app"]`+"\n" {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("a secret that does not exist: no grant is minted", func(t *testing.T) {
		r := runCLI(t, gs.env(), "", "resolve", "--file", missing)
		want := `error: minting a resolve grant: Not Found (404): secret "ghost" not found in project "default"` + "\n"
		if r.code != 1 || r.stdout != "" || r.stderr != want {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("a reference that does not resolve", func(t *testing.T) {
		r := runCLI(t, gs.env(), `{"a":"${secret:db.nope}","b":"${secret:db.user}"}`, "resolve", "--file", "-")
		want := `error: resolve: NotFound: 1 secret reference did not resolve: ${secret:db.nope} (key "nope" not found in secret "db" (version 1))` + "\n"
		if r.code != 1 || r.stdout != "" || r.stderr != want {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("a grant that is not valid", func(t *testing.T) {
		r := runCLI(t, gs.env(), "", "resolve", "--file", params, "--grant", "mbg_forged")
		if r.code != 1 || r.stdout != "" || r.stderr != "error: resolve: Unauthorized: the resolve grant is malformed\n" {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("at a terminal, a warning", func(t *testing.T) {
		full := map[string]string{"HOME": t.TempDir(), "TZ": "UTC"}
		for k, v := range gs.env() {
			full[k] = v
		}
		var out ttyBuffer
		var errb bytes.Buffer
		code := run(context.Background(), []string{"resolve", "--file", params}, func(k string) string { return full[k] }, strings.NewReader(""), &out, &errb)
		if code != 0 || out.String() != wantOut || errb.String() != plaintextWarning+"\n" {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out.String(), errb.String())
		}
	})
	t.Run("no warning when not at a terminal", func(t *testing.T) {
		r := runCLI(t, gs.env(), "", "resolve", "--file", params)
		if strings.Contains(r.stderr, "plaintext") {
			t.Errorf("stderr %q", r.stderr)
		}
	})

	usage := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no --file", gs.env(), []string{"resolve"}, "give the parameters with --file"},
		{"a missing file", gs.env(), []string{"resolve", "--file", filepath.Join(dir, "nope.json")}, "no such file or directory"},
		{"invalid JSON", gs.env(), []string{"resolve", "--file", writeFile(t, dir, "bad.json", "{\n\"a\": \""+canary+"\",\n\"b\": x\n}")}, "bad.json:3: invalid JSON"},
		{"two JSON values", gs.env(), []string{"resolve", "--file", writeFile(t, dir, "two.json", `{} {}`)}, "more than one JSON value"},
		{"an empty file", gs.env(), []string{"resolve", "--file", writeFile(t, dir, "empty.json", ``)}, "it ends early or is empty"},
		{"a step that is not an object", gs.env(), []string{"resolve", "--file", params, "--step", `["s"]`}, "--step must be a JSON object"},
		{"a run that is not JSON", gs.env(), []string{"resolve", "--file", params, "--run", `{run`}, "--run must be a JSON object"},
		{"--run with --grant", gs.env(), []string{"resolve", "--file", params, "--grant", "mbg_x", "--run", `{}`}, "--run applies to the grant mobius mints"},
		{"an empty --grant", gs.env(), []string{"resolve", "--file", params, "--grant", ""}, "--grant must not be empty"},
		{"no grant and no API key", without(gs.env(), "MOBIUS_API_KEY"), []string{"resolve", "--file", params}, "no grant, and no API key to mint one"},
		{"an argument", gs.env(), []string{"resolve", "params.json"}, "takes no arguments"},
	}
	for _, c := range usage {
		t.Run("usage: "+c.name, func(t *testing.T) {
			before := gs.invocations()
			r := runCLI(t, c.env, "", c.args...)
			if r.code != 2 || !strings.Contains(r.stderr, c.want) || strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
				t.Errorf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
			}
			noCanary(t, r)
			if gs.invocations() != before {
				t.Error("a usage error invoked the function")
			}
		})
	}
}

// ttyBuffer is a standard output that says it is a terminal.
type ttyBuffer struct{ bytes.Buffer }

func (*ttyBuffer) IsTerminal() bool { return true }

func TestResolveAgainstServersWithout(t *testing.T) {
	dir := t.TempDir()
	params := writeFile(t, dir, "params.json", `{"p":"${secret:db.password}"}`)
	t.Run("a server without resolve grants", func(t *testing.T) {
		gs := newGrantServer(t, false)
		r := runCLI(t, gs.env(), "", "resolve", "--file", params)
		want := "error: minting a resolve grant: the server at " + gs.URL + " does not issue resolve grants (POST /v1/projects/default/resolve-grants answered 404): update it, or give a grant made elsewhere\n"
		if r.code != 1 || r.stderr != want || r.stdout != "" {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("a server without the Invoke API", func(t *testing.T) {
		ts := newTestServer(t)
		r := runCLI(t, ts.env(), "", "resolve", "--file", params, "--grant", "mbg_x")
		if r.code != 1 || !strings.Contains(r.stderr, "resolve: UnknownError: HTTP 404") || !strings.Contains(r.stderr, "use --function <ResolveFunctionArn>") {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("no server", func(t *testing.T) {
		env := map[string]string{"MOBIUS_ENDPOINT": "http://" + closedAddr(t)}
		r := runCLI(t, env, "", "resolve", "--file", params, "--grant", "mbg_x")
		if r.code != 1 || !strings.Contains(r.stderr, "resolve: ConnectionError") || !strings.Contains(r.stderr, `Start one with "mobius serve"`) || strings.Count(r.stderr, "\n") != 1 {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
	})
}

// --function invokes a deployed function through the AWS SDK's default
// configuration: here the Invoke API of the stand-in, reached through
// AWS_ENDPOINT_URL_LAMBDA as the SDK reads it.
func TestResolveFunctionFlag(t *testing.T) {
	gs := newGrantServer(t, true)
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", gs.URL)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-test")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	params := writeFile(t, t.TempDir(), "params.json", `{"p":"${secret:db.password}"}`)
	// MOBIUS_ENDPOINT points nowhere: the invocation goes to the function.
	env := map[string]string{"MOBIUS_ENDPOINT": "http://" + closedAddr(t)}
	r := runCLI(t, env, "", "resolve", "--file", params, "--grant", gs.grant("default"),
		"--function", "arn:aws:lambda:us-east-1:123456789012:function:mobius-resolve")
	if r.code != 0 || r.stdout != `{"p":"`+canary+`"}`+"\n" {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, env, "", "resolve", "--file", params, "--grant", gs.grant("default"), "--function", "other-function")
	if r.code != 1 || !strings.Contains(r.stderr, "resolve: ResourceNotFoundException: Function not found: arn:aws:lambda:us-east-1:000000000000:function:other-function") ||
		strings.Contains(r.stderr, "--function <ResolveFunctionArn>") {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
}
