package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/internal/testsupport"
	"github.com/mobius-secrets/mobius/pkg/httpapi"
	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// canary is a plaintext value that must never appear in any output.
const canary = "CANARY-9f2c-plaintext-value"

// testServer is the real HTTP API on a bolt store in a temp folder, with an
// injected clock, counting the requests it serves.
type testServer struct {
	URL      string
	Key      string
	Svc      *secrets.Service
	Clock    *testsupport.Clock
	requests atomic.Int64
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "mobius.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w, err := local.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Clock: testsupport.NewClock(time.Date(2026, 11, 28, 14, 3, 0, 0, time.UTC))}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	ts.Svc = secrets.NewService(st, w, secrets.Options{Now: ts.Clock.Now, Logger: discard})
	h := httpapi.NewHandler(ts.Svc, httpapi.Options{Logger: discard, Now: ts.Clock.Now})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		ts.requests.Add(1)
		h.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	ts.URL = srv.URL
	_, key, err := ts.Svc.CreateAPIKey(context.Background(), "default", "test", secrets.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	ts.Key = key
	return ts
}

// env returns the environment that points the CLI at the server.
func (ts *testServer) env() map[string]string {
	return map[string]string{"MOBIUS_ENDPOINT": ts.URL, "MOBIUS_API_KEY": ts.Key, "MOBIUS_PROJECT": "default"}
}

type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs one command line in-process. The environment is only what env
// gives, plus a private HOME and config folder and TZ=UTC unless env sets
// them: nothing leaks in from the machine.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	return runCLIFrom(t, env, strings.NewReader(stdin), args...)
}

// runCLIFrom is runCLI with stdin read from r.
func runCLIFrom(t *testing.T, env map[string]string, stdin io.Reader, args ...string) result {
	t.Helper()
	return runCLIAt(t, time.Now, env, stdin, args...)
}

// runCLIAt is runCLIFrom with the CLI's clock (of spans from now, such as
// --expires-in 30d) set to now.
func runCLIAt(t *testing.T, now func() time.Time, env map[string]string, stdin io.Reader, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	c := &cli{ctx: context.Background(), getenv: testEnv(t, env), stdin: stdin, stdout: &out, stderr: &errb, now: now}
	code := c.run(args)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// testEnv is env plus a private HOME and config folder and TZ=UTC unless
// env sets them.
func testEnv(t *testing.T, env map[string]string) func(string) string {
	full := map[string]string{"HOME": t.TempDir(), "TZ": "UTC"}
	full["XDG_CONFIG_HOME"] = filepath.Join(full["HOME"], "config")
	for k, v := range env {
		full[k] = v
	}
	return func(k string) string { return full[k] }
}

// run runs a command line against ts with the CLI's clock set to the
// server's.
func (ts *testServer) run(t *testing.T, args ...string) result {
	t.Helper()
	r := runCLIAt(t, ts.Clock.Now, ts.env(), strings.NewReader(""), args...)
	noCanary(t, r)
	return r
}

// mustRun is run for a command that must succeed; it returns stdout.
func (ts *testServer) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	r := ts.run(t, args...)
	if r.code != 0 {
		t.Fatalf("mobius %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// mustRun runs a command that must succeed.
func mustRun(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	r := runCLI(t, env, "", args...)
	if r.code != 0 {
		t.Fatalf("mobius %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	noCanary(t, r)
	return r.stdout
}

func noCanary(t *testing.T, r result) {
	t.Helper()
	if strings.Contains(r.stdout, canary) || strings.Contains(r.stderr, canary) {
		t.Fatalf("a plaintext value leaked into the output:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	}
}

// writeFile writes a file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the output (go test -update rewrites it)\n--- want\n%s--- got\n%s", path, want, got)
	}
}
