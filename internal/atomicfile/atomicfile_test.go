package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteMakesAWholeFileAndKeepsAnExistingOne(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "made")
	path := filepath.Join(dir, "f")
	if err := Write(path, []byte("one"), false); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "one" {
		t.Fatalf("file holds %q, want %q", got, "one")
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: mode %v (%v), want %v", p, fi.Mode().Perm(), err, want)
		}
	}

	err := Write(path, []byte("two"), false)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("writing over a file without replace: %v, want fs.ErrExist", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "one" {
		t.Fatalf("a refused write changed the file: %q", got)
	}
	if err := Write(path, []byte("two"), true); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "two" {
		t.Fatalf("file holds %q after a replace, want %q", got, "two")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("the folder holds %d entries, want only the file (no temporary left)", len(entries))
	}
}
