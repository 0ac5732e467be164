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
