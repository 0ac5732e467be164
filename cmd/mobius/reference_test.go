package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// TestCLIReference keeps the README's CLI reference equal to what the
// command definitions generate; -update rewrites it.
func TestCLIReference(t *testing.T) {
	c := &cli{ctx: context.Background(), getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}
	var b strings.Builder
	writeReference(&b, c.rootCommand())
	ref := b.String()
	for _, must := range []string{"mobius secrets create", "mobius secrets digest", "mobius keys revoke", "mobius admin create-key", "mobius admin backup", "mobius admin restore", "mobius admin check", "mobius admin compact", "--with-key", "mobius serve", "--file", "--var",
		"mobius secrets promote-version", "mobius secrets consumers", "mobius secrets delete-alias", "mobius secrets trash", "mobius secrets restore",
		"mobius secrets purge", "mobius events", "--stage", "--replace-pending", "--previous-grace", "--rename-alias-ttl", "--label", "--expires-in",
		"--rotate-due", "--expiring", "--no-expiry", "--clear-labels", "--purge", "--force", "--follow"} {
		if !strings.Contains(ref, must) {
			t.Errorf("the generated reference lacks %q", must)
		}
	}
	const path = "../../README.md"
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i, j := strings.Index(s, referenceStart), strings.Index(s, referenceEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the markers %q ... %q", referenceStart, referenceEnd)
	}
	want := s[:i] + referenceStart + "\n\n" + ref + "\n" + s[j:]
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if s != want {
		t.Errorf("README.md's CLI reference is out of date: run go test ./cmd/mobius -run TestCLIReference -update")
	}
}
