package app

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// folderState is every file of a data folder with its SHA-256 and mode.
func folderState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		info, _ := e.Info()
		sum := sha256.Sum256(b)
		out[e.Name()] = info.Mode().Perm().String() + " " + string(sum[:])
	}
	return out
}

// TestDataFolderFaults: a data folder whose key or data file is missing,
// replaced, damaged or foreign is refused at start with one line that names
// the file and what to do; nothing in the folder changes; it is never
// taken for a new, empty store.
func TestDataFolderFaults(t *testing.T) {
	ctx := context.Background()
	// A folder that holds data: one secret, sealed.
	good := t.TempDir()
	a, err := New(ctx, Config{Store: StoreBolt, DataDir: good}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Service.CreateSecret(ctx, "default", secrets.CreateSecretInput{Name: "db", Values: map[string]string{"k": "datafolder-canary"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	copyOf := func(t *testing.T) string {
		dir := t.TempDir()
		for _, name := range []string{dataFileName, keyFileName} {
			b, err := os.ReadFile(filepath.Join(good, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	data := func(dir string) string { return filepath.Join(dir, dataFileName) }
	key := func(dir string) string { return filepath.Join(dir, keyFileName) }
	write := func(t *testing.T, path string, b []byte, mode os.FileMode) {
		if err := os.WriteFile(path, b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name  string
		spoil func(t *testing.T, dir string)
		says  []string // the one line names these
	}{
		{"missing key file", func(t *testing.T, dir string) { os.Remove(key(dir)) },
			[]string{keyFileName, "is missing", "restore"}},
		{"replaced key file", func(t *testing.T, dir string) { write(t, key(dir), []byte(strings.Repeat("k", 32)), 0o600) },
			[]string{keyFileName, "does not open", dataFileName}},
		{"key file readable by others", func(t *testing.T, dir string) { os.Chmod(key(dir), 0o644) },
			[]string{keyFileName, "chmod"}},
		{"key file of the wrong size", func(t *testing.T, dir string) { write(t, key(dir), []byte("short"), 0o600) },
			[]string{keyFileName, "32 bytes"}},
		{"0-byte data file", func(t *testing.T, dir string) { write(t, data(dir), nil, 0o600) },
			[]string{dataFileName}},
		{"truncated data file", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(data(dir))
			write(t, data(dir), b[:len(b)/2], 0o600)
		}, []string{dataFileName}},
		{"damaged data file (both meta pages)", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(data(dir))
			for _, page := range []int{0, 1} {
				for i := page*4096 + 16; i < page*4096+64; i++ {
					b[i] ^= 0x5a
				}
			}
			write(t, data(dir), b, 0o600)
		}, []string{dataFileName}},
		{"foreign data file", func(t *testing.T, dir string) {
			write(t, data(dir), []byte("SQLite format 3\x00"+strings.Repeat("x", 8000)), 0o600)
		},
			[]string{dataFileName}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyOf(t)
			c.spoil(t, dir)
			before := folderState(t, dir)
			a, err := New(ctx, Config{Store: StoreBolt, DataDir: dir}, quietLogger())
			if err == nil {
				a.Close()
				t.Fatal("the start was not refused")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || strings.Contains(msg, "datafolder-canary") {
				t.Fatalf("not one clean line: %q", msg)
			}
			for _, want := range c.says {
				if !strings.Contains(msg, want) {
					t.Fatalf("the refusal %q does not say %q", msg, want)
				}
			}
			if after := folderState(t, dir); len(after) != len(before) {
				t.Fatalf("the folder changed: %d files before, %d after", len(before), len(after))
			} else {
				for name, st := range before {
					if after[name] != st {
						t.Fatalf("%s changed", name)
					}
				}
			}
		})
	}
	// The untouched copy still opens and holds its secret.
	dir := copyOf(t)
	b, err := New(ctx, Config{Store: StoreBolt, DataDir: dir}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Service.GetSecret(ctx, "default", "db"); err != nil {
		t.Fatal(err)
	}
}
