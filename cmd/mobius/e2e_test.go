package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/mobius-secrets/mobius/internal/testsupport"
	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/client"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// The end-to-end tests run the real binary: `mobius serve` as a process and
// the CLI as processes, as a user would.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// mobiusBin builds the mobius binary once per test run.
func mobiusBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "mobius-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "mobius")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// userEnv is a clean environment of one user: its own HOME, config and data
// folders, UTC, and nothing of the machine's MOBIUS_* settings.
type userEnv struct {
	home, config, data, work string
}

func newUserEnv(t *testing.T) *userEnv {
	home := t.TempDir()
	u := &userEnv{home: home, config: filepath.Join(home, "config"), data: filepath.Join(home, "data"), work: filepath.Join(home, "work")}
	if err := os.MkdirAll(u.work, 0o700); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u *userEnv) environ(extra map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + u.home, "XDG_CONFIG_HOME=" + u.config, "XDG_DATA_HOME=" + u.data, "TZ=UTC"}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// startServe starts `mobius serve` for u over dataDir, in u's work folder.
func startServe(t *testing.T, u *userEnv, dataDir string) *testsupport.Serve {
	t.Helper()
	return testsupport.StartServe(t, mobiusBin(t), dataDir, u.environ(nil), u.work)
}

// mobius runs the CLI binary in u's work folder with env added.
func mobius(t *testing.T, u *userEnv, env map[string]string, args ...string) result {
	t.Helper()
	cmd := exec.Command(mobiusBin(t), args...)
	cmd.Env = u.environ(env)
	cmd.Dir = u.work
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	return r
}

func mustMobius(t *testing.T, u *userEnv, env map[string]string, args ...string) string {
	t.Helper()
	r := mobius(t, u, env, args...)
	if r.code != 0 {
		t.Fatalf("mobius %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	for _, v := range []string{"sk-...", "sk-new-...", "sk-prod-", canary} {
		if strings.Contains(r.stdout, v) || strings.Contains(r.stderr, v) {
			t.Fatalf("mobius %s printed a value (%q):\n%s%s", strings.Join(args, " "), v, r.stdout, r.stderr)
		}
	}
	return r.stdout
}

// TestNarrativeFlow runs the product narrative's "Typical flow from the CLI"
// command for command against a real `mobius serve`.
func TestNarrativeFlow(t *testing.T) {
	u := newUserEnv(t)
	srv := startServe(t, u, filepath.Join(u.home, "mobius-data"))
	lines := strings.Split(strings.TrimSpace(srv.Stdout.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[3], "# then try: ") || srv.Exports["MOBIUS_ENDPOINT"] != srv.Endpoint || srv.Exports["MOBIUS_PROJECT"] != "default" || !strings.HasPrefix(srv.Exports["MOBIUS_API_KEY"], "mbs_") {
		t.Fatalf("first start printed:\n%s", srv.Stdout.String())
	}
	env := srv.Exports // as after `eval` of the export lines

	// Register a secret and its first version.
	mustMobius(t, u, env, "secrets", "create",
		"--name", "openai",
		"--description", "OpenAI key used by the summarizer.",
		"--values", `{"api_key":"sk-..."}`)
	// Read metadata (no plaintext, ever).
	out := mustMobius(t, u, env, "secrets", "get", "openai")
	if !strings.Contains(out, "Current version:  1") {
		t.Errorf("get:\n%s", out)
	}
	out = mustMobius(t, u, env, "secrets", "list")
	if !strings.Contains(out, "openai") || !strings.Contains(out, "OpenAI key used by the summarizer.") {
		t.Errorf("list:\n%s", out)
	}
	// Rotate: a new ENABLED version, old one moves to DISABLED.
	mustMobius(t, u, env, "secrets", "update", "openai", "--values", `{"api_key":"sk-new-..."}`)
	// For non-trivial payloads, file input.
	writeFile(t, u.work, "new-creds.json", "{\n  \"api_key\": \"sk-prod-4f9a\",\n  \"environment\": \"${ENV}\"\n}\n")
	digest := strings.TrimSpace(mustMobius(t, u, env, "secrets", "digest", "--file", "new-creds.json", "--var", "ENV=prod"))
	mustMobius(t, u, env, "secrets", "update", "openai", "--file", "new-creds.json", "--var", "ENV=prod")
	if err := os.Remove(filepath.Join(u.work, "new-creds.json")); err != nil { // rm new-creds.json
		t.Fatal(err)
	}
	// Audit history.
	out = mustMobius(t, u, env, "secrets", "list-versions", "openai")
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 4 || !strings.HasPrefix(rows[1], "3  ") || !strings.Contains(rows[1], "ENABLED") ||
		!strings.Contains(rows[2], "DISABLED") || !strings.Contains(rows[3], "DISABLED") || !strings.Contains(rows[1], digest[:12]) {
		t.Errorf("list-versions:\n%s", out)
	}
	out = mustMobius(t, u, env, "secrets", "get-version", "openai", "3")
	if !strings.Contains(out, "SHA-256:        "+digest) || !strings.Contains(out, "State:          ENABLED") || !strings.Contains(out, "api_key,environment") {
		t.Errorf("get-version openai 3 (digest %s):\n%s", digest, out)
	}
	var v client.Version
	if err := json.Unmarshal([]byte(mustMobius(t, u, env, "secrets", "get-version", "openai", "3", "-o", "json")), &v); err != nil {
		t.Fatal(err)
	}
	if want := secrets.Digest(map[string]string{"api_key": "sk-prod-4f9a", "environment": "prod"}); v.SHA256 != want || digest != want {
		t.Errorf("sha256 %s, digest %s, want %s", v.SHA256, digest, want)
	}

	// Errors: exit 1 with the API's error; usage: exit 2.
	r := mobius(t, u, env, "secrets", "create", "--name", "openai", "--values", `{"api_key":"sk-..."}`)
	if r.code != 1 || r.stderr != "error: Conflict (409): secret \"openai\" already exists in project \"default\"\n" {
		t.Errorf("duplicate create: exit %d %q", r.code, r.stderr)
	}
	if r := mobius(t, u, env, "secrets", "update", "openai", "--file", "absent.json"); r.code != 2 {
		t.Errorf("missing file: exit %d %q", r.code, r.stderr)
	}

	// The config file the server wrote is enough on its own.
	if fi, err := os.Stat(filepath.Join(u.config, "mobius", "config.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(u.config, "mobius")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("config folder: %v %v", fi, err)
	}
	if out := mustMobius(t, u, nil, "secrets", "list"); !strings.Contains(out, "openai") {
		t.Errorf("list with the config file only:\n%s", out)
	}

	// SIGTERM stops it gracefully; a second start prints no key.
	if err := srv.Stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("after SIGTERM: %v\n%s", err, srv.Stderr.String())
	}
	if !strings.Contains(srv.Stderr.String(), "mobius server stopped") {
		t.Errorf("no shutdown log:\n%s", srv.Stderr.String())
	}
	again := startServe(t, u, filepath.Join(u.home, "mobius-data"))
	if again.Stdout.String() != "" || len(again.Exports) != 0 || strings.Contains(again.Stderr.String(), env["MOBIUS_API_KEY"]) {
		t.Errorf("second start printed:\n%s", again.Stdout.String())
	}
	env2 := map[string]string{"MOBIUS_ENDPOINT": again.Endpoint, "MOBIUS_API_KEY": env["MOBIUS_API_KEY"]}
	if out := mustMobius(t, u, env2, "secrets", "get-version", "openai", "current"); !strings.Contains(out, digest) {
		t.Errorf("after restart:\n%s", out)
	}
	// No log line holds a value.
	for _, v := range []string{"sk-...", "sk-new-...", "sk-prod-4f9a"} {
		if strings.Contains(srv.Stderr.String(), v) || strings.Contains(again.Stderr.String(), v) {
			t.Errorf("the server log holds the value %q", v)
		}
	}
}

// TestAcknowledgedWritesSurviveSIGKILL kills the server right after the last
// acknowledged write and checks, after a restart on the same data folder,
// that every acknowledged write is there.
func TestAcknowledgedWritesSurviveSIGKILL(t *testing.T) {
	u := newUserEnv(t)
	data := filepath.Join(u.home, "mobius-data")
	srv := startServe(t, u, data)
	key := srv.Exports["MOBIUS_API_KEY"]
	ctx := context.Background()
	cl := client.New(srv.Endpoint, key, client.WithProject("default"))

	type want struct {
		digests []string // by version number - 1
		states  []string
	}
	expect := map[string]*want{}
	const secretsN, rotations = 4, 3
	for i := range secretsN {
		name := fmt.Sprintf("svc-%d", i)
		w := &want{}
		for n := 0; n <= rotations; n++ {
			values := map[string]string{"token": fmt.Sprintf("%s-%d-%d", canary, i, n)}
			var err error
			if n == 0 {
				_, err = cl.CreateSecret(ctx, "", api.CreateSecretRequest{Name: name, Values: values})
			} else {
				_, err = cl.UpdateSecret(ctx, "", name, api.UpdateSecretRequest{Values: values})
			}
			if err != nil {
				t.Fatal(err)
			}
			for j := range w.states {
				if w.states[j] == api.StateEnabled {
					w.states[j] = api.StateDisabled
				}
			}
			w.digests = append(w.digests, secrets.Digest(values))
			w.states = append(w.states, api.StateEnabled)
		}
		expect[name] = w
	}
	// Version actions, the last of them acknowledged just before the kill.
	if _, err := cl.DestroyVersion(ctx, "", "svc-0", "1"); err != nil {
		t.Fatal(err)
	}
	expect["svc-0"].states[0] = api.StateDestroyed
	if _, err := cl.EnableVersion(ctx, "", "svc-1", "2"); err != nil {
		t.Fatal(err)
	}
	expect["svc-1"].states[1], expect["svc-1"].states[3] = api.StateEnabled, api.StateDisabled
	if _, err := cl.DisableVersion(ctx, "", "svc-2", "current"); err != nil {
		t.Fatal(err)
	}
	expect["svc-2"].states[3] = api.StateDisabled
	if err := srv.Cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-srv.Done()

	again := startServe(t, u, data)
	if again.Stdout.String() != "" {
		t.Errorf("restart printed %q", again.Stdout.String())
	}
	cl = client.New(again.Endpoint, key, client.WithProject("default"))
	if err := cl.Health(ctx); err != nil {
		t.Fatal(err)
	}
	for name, w := range expect {
		page, err := cl.ListVersions(ctx, "", name, 0, "")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(page.Versions) != len(w.states) {
			t.Fatalf("%s: %d versions, want %d", name, len(page.Versions), len(w.states))
		}
		for _, v := range page.Versions {
			i := v.Number - 1
			if v.State != w.states[i] || v.SHA256 != w.digests[i] {
				t.Errorf("%s v%d: %s %s, want %s %s", name, v.Number, v.State, v.SHA256, w.states[i], w.digests[i])
			}
		}
	}
	// And the CLI reads the same.
	out := mustMobius(t, u, map[string]string{"MOBIUS_ENDPOINT": again.Endpoint, "MOBIUS_API_KEY": key}, "secrets", "list")
	if strings.Count(out, "svc-") != secretsN {
		t.Errorf("list after restart:\n%s", out)
	}
	// It still takes writes.
	if _, err := cl.UpdateSecret(ctx, "", "svc-3", api.UpdateSecretRequest{Values: map[string]string{"token": canary}}); err != nil {
		t.Fatal(err)
	}
}

// The CLI config file follows the server it was written for: a second
// server on another data folder leaves it alone, a restart on another
// port updates its endpoint, and a first start takes it over once the
// folder it was written for is gone.
func TestConfigFollowsItsServer(t *testing.T) {
	u := newUserEnv(t)
	cfgFile := filepath.Join(u.config, "mobius", "config.json")
	saved := func() fileConfig {
		t.Helper()
		b, err := os.ReadFile(cfgFile)
		if err != nil {
			t.Fatal(err)
		}
		var c fileConfig
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Only the config file tells the CLI where to go.
	listWorks := func(when string) {
		t.Helper()
		if r := mobius(t, u, nil, "secrets", "list"); r.code != 0 {
			t.Fatalf("%s: secrets list with the config file: exit %d %s", when, r.code, r.stderr)
		}
	}
	dataA, dataB, dataC := filepath.Join(u.home, "a"), filepath.Join(u.home, "b"), filepath.Join(u.home, "c")

	a := startServe(t, u, dataA)
	if c := saved(); c.Endpoint != a.Endpoint || c.APIKey != a.Exports["MOBIUS_API_KEY"] || c.Data != dataA {
		t.Fatalf("first start saved %+v", c)
	}
	listWorks("first server")
	// A second server on the same folder says what is wrong, in one line.
	if r := mobius(t, u, nil, "serve", "--addr", "127.0.0.1:0", "--data", dataA); r.code != 1 ||
		!strings.HasPrefix(r.stderr, "error: the data folder "+dataA+" is in use by another mobius server") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("serve on a folder in use: exit %d, stderr %q", r.code, r.stderr)
	}

	b := startServe(t, u, dataB)
	if b.Exports["MOBIUS_API_KEY"] == "" {
		t.Fatal("the second server printed no key")
	}
	if c := saved(); c.Endpoint != a.Endpoint || c.Data != dataA {
		t.Errorf("a second server on another data folder rewrote the config: %+v", c)
	}
	if !strings.Contains(b.Stderr.String(), "left the CLI config file as it is") {
		t.Errorf("the second server did not say why it left the config:\n%s", b.Stderr.String())
	}
	listWorks("with a second server running")

	if err := a.Stop(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	a2 := startServe(t, u, dataA) // on another free port
	if a2.Endpoint == a.Endpoint {
		t.Fatalf("restarted on the same endpoint %s; the test needs another", a.Endpoint)
	}
	if c := saved(); c.Endpoint != a2.Endpoint || c.APIKey != a.Exports["MOBIUS_API_KEY"] {
		t.Errorf("a restart on another port left the config at %+v, want endpoint %s", c, a2.Endpoint)
	}
	listWorks("after a restart on another port")

	if err := b.Stop(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	startServe(t, u, dataB)
	if c := saved(); c.Endpoint != a2.Endpoint {
		t.Errorf("a restart of the other server took the config: %+v", c)
	}

	// Once the first server's folder is gone, a new server's first start
	// takes the config over.
	if err := a2.Stop(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dataA); err != nil {
		t.Fatal(err)
	}
	cs := startServe(t, u, dataC)
	if c := saved(); c.Endpoint != cs.Endpoint || c.APIKey != cs.Exports["MOBIUS_API_KEY"] || c.Data != dataC {
		t.Errorf("a first start after the old folder was removed saved %+v", c)
	}
	listWorks("after the takeover")
}

// The line a first start prints after its export lines works as printed:
// pasted into a shell with those exports, it stores a secret and resolves a
// reference to it through the server's resolve function.
func TestFirstStartTryLine(t *testing.T) {
	u := newUserEnv(t)
	srv := startServe(t, u, filepath.Join(u.home, "mobius-data"))
	lines := strings.Split(strings.TrimSpace(srv.Stdout.String()), "\n")
	line := lines[len(lines)-1]
	cmdline, ok := strings.CutPrefix(line, "# then try: ")
	if !ok {
		t.Fatalf("first start printed:\n%s", srv.Stdout.String())
	}
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Env = u.environ(srv.Exports)
	cmd.Dir = u.work
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, out)
	}
	if !strings.HasSuffix(string(out), `{"auth":"Bearer not-a-real-secret"}`+"\n") {
		t.Fatalf("%s printed:\n%s", cmdline, out)
	}
}
