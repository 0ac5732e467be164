package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeBlock returns the first ```sh block after heading in README.md.
func readmeBlock(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, heading)
	if i < 0 {
		t.Fatalf("README.md has no %q", heading)
	}
	m := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(s[i:])
	if m == nil {
		t.Fatalf("no sh block after %q", heading)
	}
	return m[1]
}

// TestReadmeCurlWalkthrough runs the README's curl walkthrough, as written,
// against a real `mobius serve` with the export lines it printed.
func TestReadmeCurlWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the README walkthrough needs curl: apt-get install -y curl")
	}
	script := readmeBlock(t, "## The same with curl")
	u := newUserEnv(t)
	srv := startServe(t, u, filepath.Join(u.data, "mobius"))
	if len(srv.Exports) != 3 {
		t.Fatalf("first start printed exports %v", srv.Exports)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Env = u.environ(srv.Exports)
	cmd.Dir = u.work
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n%s", err, out)
	}
	o := string(out)
	if strings.Contains(o, `"error"`) {
		t.Fatalf("a walkthrough step answered an error:\n%s", o)
	}
	for _, want := range []string{`"current_version":1`, `"current_version":2`, `"state":"DESTROYED"`, `"resolutions":[]`, `"scopes":["secrets:read"]`, "204"} {
		if !strings.Contains(o, want) {
			t.Errorf("walkthrough output lacks %q:\n%s", want, o)
		}
	}
	if !strings.Contains(strings.ToLower(o), `etag: "1"`) {
		t.Errorf("the get with -i shows no ETag:\n%s", o)
	}
	if strings.Contains(o, "sk-example-rotated") || strings.Contains(o, "sk-example-not-a-real-key") {
		t.Error("a plaintext value came back out of a read")
	}
}

// TestReadmeCLIFlow runs the README's CLI flow, as written, against a real
// `mobius serve`, with ./bin/mobius the binary under test.
func TestReadmeCLIFlow(t *testing.T) {
	o := runReadmeBlock(t, "## The CLI flow")
	for _, want := range []string{
		"/headers/Authorization",                                 // refs check's table
		`{"headers":{"Authorization":"Bearer sk-prod-example"}}`, // resolve's output
		`{"loop":"summarizer","run_id":"r1"}`,                    // the resolution's run
	} {
		if !strings.Contains(o, want) {
			t.Errorf("the CLI flow's output lacks %q:\n%s", want, o)
		}
	}
	if strings.Contains(o, "sk-example-rotated") {
		t.Errorf("a value other than resolve's output was printed:\n%s", o)
	}
}

// TestReadmeRotation runs the README's webhook rotation walkthrough, as
// written, against a real `mobius serve`.
func TestReadmeRotation(t *testing.T) {
	o := runReadmeBlock(t, "## Rotating a webhook signing secret")
	for _, want := range []string{
		`{"keys":["whsec_new_example","whsec_old_example"]}`, // both keys while the grace lasts
		"refused: version 1 is still in use",                 // the in-use guard
		`"run_id":"r7"`,                                      // the consumer it names
	} {
		if !strings.Contains(o, want) {
			t.Errorf("the walkthrough's output lacks %q:\n%s", want, o)
		}
	}
	if n := strings.Count(o, "whsec_"); n != 2 {
		t.Errorf("a value was printed outside resolve's output (%d times):\n%s", n, o)
	}
}

// runReadmeBlock runs the first sh block after heading in README.md with
// bash -euo pipefail, as a user would paste it: in a fresh work folder
// where ./bin/mobius is the binary under test, with the export lines of a
// fresh `mobius serve`. It returns the block's output.
func runReadmeBlock(t *testing.T, heading string) string {
	t.Helper()
	script := readmeBlock(t, heading)
	u := newUserEnv(t)
	srv := startServe(t, u, filepath.Join(u.data, "mobius"))
	if err := os.MkdirAll(filepath.Join(u.work, "bin"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mobiusBin(t), filepath.Join(u.work, "bin", "mobius")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Env = u.environ(srv.Exports)
	cmd.Dir = u.work
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README.md's %q failed: %v\n%s", heading, err, out)
	}
	return string(out)
}
