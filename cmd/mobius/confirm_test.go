package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// terminal is stdin as a person at a terminal types it.
type terminal struct{ *strings.Reader }

func (terminal) IsTerminal() bool { return true }

func typed(s string) terminal { return terminal{strings.NewReader(s)} }

// The commands that cannot be undone ask first at a terminal, send nothing
// unless the answer is yes, and ask nothing with --yes or when stdin is not
// a terminal (scripts, pipes, /dev/null).
func TestIrreversibleCommandsAskAtATerminal(t *testing.T) {
	ts := newTestServer(t)
	env := ts.env()
	mustRun(t, env, "secrets", "create", "--name", "openai", "--values", `{"api_key":"`+canary+`"}`)
	mustRun(t, env, "secrets", "update", "openai", "--values", `{"api_key":"`+canary+`-2"}`)
	k := createKey(t, env)

	state := func(version string) string {
		t.Helper()
		out := mustRun(t, env, "secrets", "get-version", "openai", version)
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "State:"); ok {
				return strings.TrimSpace(v)
			}
		}
		t.Fatalf("no State line in\n%s", out)
		return ""
	}

	commands := []struct {
		name     string
		args     []string
		question string
		done     func() bool
	}{
		{"destroy-version", []string{"secrets", "destroy-version", "openai", "1"},
			`Destroy version 1 of secret "openai"? Its values are purged for good. [y/N] `,
			func() bool { return state("1") == "DESTROYED" }},
		{"keys revoke", []string{"keys", "revoke", k},
			"Revoke API key " + k + "? Every request that uses it will be refused. [y/N] ",
			func() bool { return !strings.Contains(mustRun(t, env, "keys", "list"), k) }},
		{"delete", []string{"secrets", "delete", "openai"},
			`Delete secret "openai"? It goes to the trash, and is purged for good when the trash's time ends. [y/N] `,
			func() bool { return runCLI(t, env, "", "secrets", "get", "openai").code == 1 }},
	}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			for _, answer := range []string{"", "\n", "n\n", "no\n", "yes please\n", "N"} {
				before := ts.requests.Load()
				r := runCLIFrom(t, env, typed(answer), c.args...)
				if r.code != 1 || r.stderr != c.question+"error: aborted; nothing was changed\n" || r.stdout != "" {
					t.Fatalf("answer %q: exit %d, stdout %q, stderr %q", answer, r.code, r.stdout, r.stderr)
				}
				if n := ts.requests.Load() - before; n != 0 {
					t.Fatalf("answer %q: %d requests were sent", answer, n)
				}
				if c.done() {
					t.Fatalf("answer %q: the command acted", answer)
				}
			}
			r := runCLIFrom(t, env, typed(" Y \n"), c.args...)
			if r.code != 0 || r.stderr != c.question {
				t.Fatalf("answer Y: exit %d, stderr %q", r.code, r.stderr)
			}
			if !c.done() {
				t.Fatal("answer Y: the command did not act")
			}
		})
	}

	// --yes, a pipe and /dev/null (a character device, not a terminal) go
	// straight on.
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pw.Close()
	defer pr.Close()
	for i, run := range []func(args ...string) result{
		func(args ...string) result { return runCLIFrom(t, env, typed("n\n"), append(args, "--yes")...) },
		func(args ...string) result { return runCLIFrom(t, env, typed("n\n"), append(args, "-y")...) },
		func(args ...string) result { return runCLIFrom(t, env, devNull, args...) },
		func(args ...string) result { return runCLIFrom(t, env, pr, args...) },
	} {
		name := "unasked-" + string(rune('a'+i))
		mustRun(t, env, "secrets", "create", "--name", name, "--values", `{"k":"v"}`)
		mustRun(t, env, "secrets", "update", name, "--values", `{"k":"w"}`)
		for _, args := range [][]string{
			{"secrets", "destroy-version", name, "current"},
			{"keys", "revoke", createKey(t, env)},
			{"secrets", "delete", name},
		} {
			r := run(args...)
			if r.code != 0 || r.stderr != "" {
				t.Errorf("%s %v: exit %d, stderr %q", name, args, r.code, r.stderr)
			}
		}
		if r := runCLI(t, env, "", "secrets", "get", name); r.code != 1 {
			t.Errorf("%s still exists", name)
		}
	}
}

// createKey makes a read-only API key and returns its ID.
func createKey(t *testing.T, env map[string]string) string {
	t.Helper()
	var k struct{ ID string }
	out := mustRun(t, env, "keys", "create", "--name", "to-revoke", "-o", "json")
	if err := json.Unmarshal([]byte(out), &k); err != nil || !strings.HasPrefix(k.ID, "key_") {
		t.Fatalf("keys create: %v %q", err, out)
	}
	return k.ID
}

// Ctrl-C at the question (the context main cancels on SIGINT) ends the
// wait: nothing is sent and the command exits 1.
func TestInterruptAtTheQuestion(t *testing.T) {
	ts := newTestServer(t)
	env := ts.env()
	mustRun(t, env, "secrets", "create", "--name", "openai", "--values", `{"api_key":"`+canary+`"}`)
	pr, pw := io.Pipe() // nobody ever answers
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	full := map[string]string{"HOME": t.TempDir(), "XDG_CONFIG_HOME": t.TempDir()}
	for k, v := range env {
		full[k] = v
	}
	var out, errb strings.Builder
	done := make(chan int)
	before := ts.requests.Load()
	go func() {
		done <- run(ctx, []string{"secrets", "delete", "openai"}, func(k string) string { return full[k] }, terminalPipe{pr}, &out, &errb)
	}()
	select {
	case code := <-done:
		t.Fatalf("returned %d before any answer or interrupt; stderr %q", code, errb.String())
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	code := <-done
	if code != 1 || !strings.HasSuffix(errb.String(), "[y/N] \nerror: aborted; nothing was changed\n") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if n := ts.requests.Load() - before; n != 0 {
		t.Fatalf("%d requests were sent", n)
	}
	if r := runCLI(t, env, "", "secrets", "get", "openai"); r.code != 0 {
		t.Fatalf("the secret is gone: %q", r.stderr)
	}
}

type terminalPipe struct{ *io.PipeReader }

func (terminalPipe) IsTerminal() bool { return true }
