package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// storeWithData makes a stopped data folder holding one secret.
func storeWithData(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	a := openApp(t, dir)
	if _, err := a.Service.CreateSecret(context.Background(), "acme", secrets.CreateSecretInput{Name: "db", Values: map[string]string{"k": backupCanary}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCheck: every problem of a data folder is one line naming the file;
// a whole store has none; the folder is never changed.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	data := func(dir string) string { return filepath.Join(dir, dataFileName) }
	key := func(dir string) string { return filepath.Join(dir, keyFileName) }
	otherKey := func(t *testing.T, dir string) { os.WriteFile(key(dir), bytes.Repeat([]byte{8}, 32), 0o600) }
	for _, c := range []struct {
		name  string
		spoil func(t *testing.T, dir string)
		says  [][]string // one entry per problem: what its line names
	}{
		{"a whole store", func(t *testing.T, dir string) {}, nil},
		{"key file readable by others", func(t *testing.T, dir string) { os.Chmod(key(dir), 0o644) },
			[][]string{{keyFileName, "chmod 600"}}},
		{"another key", otherKey,
			[][]string{{keyFileName, "does not open", dataFileName}}},
		{"another key, readable by others", func(t *testing.T, dir string) { otherKey(t, dir); os.Chmod(key(dir), 0o640) },
			[][]string{{keyFileName, "chmod"}, {keyFileName, "does not open"}}},
		{"missing key file", func(t *testing.T, dir string) { os.Remove(key(dir)) },
			[][]string{{keyFileName, "is missing", "restore"}}},
		{"key file of the wrong size", func(t *testing.T, dir string) { os.WriteFile(key(dir), []byte("short"), 0o600) },
			[][]string{{keyFileName, "32 bytes"}}},
		{"0-byte data file", func(t *testing.T, dir string) { os.Truncate(data(dir), 0) },
			[][]string{{dataFileName, "empty"}}},
		{"truncated data file, and no key", func(t *testing.T, dir string) {
			fi, _ := os.Stat(data(dir))
			os.Truncate(data(dir), fi.Size()/2)
			os.Remove(key(dir))
		}, [][]string{{dataFileName, "truncated"}, {keyFileName, "is missing"}}},
		{"damaged meta pages", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(data(dir))
			for i := 16; i < 64; i++ {
				b[i] ^= 0x5a
				b[4096+i] ^= 0x5a
			}
			os.WriteFile(data(dir), b, 0o600)
		}, [][]string{{dataFileName}}},
		{"foreign data file", func(t *testing.T, dir string) {
			os.WriteFile(data(dir), []byte("SQLite format 3\x00"+strings.Repeat("x", 9000)), 0o600)
		}, [][]string{{dataFileName, "not a Mobius data file"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := storeWithData(t)
			c.spoil(t, dir)
			before := dirState(t, dir)
			rep, err := Check(ctx, dir)
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			sameState(t, "the data folder", before, dirState(t, dir))
			if len(rep.Problems) != len(c.says) {
				t.Fatalf("%d problems, want %d: %q", len(rep.Problems), len(c.says), rep.Problems)
			}
			for i, p := range rep.Problems {
				if strings.Contains(p, "\n") || strings.Contains(p, backupCanary) {
					t.Fatalf("not one clean line: %q", p)
				}
				for _, s := range c.says[i] {
					if !strings.Contains(p, s) {
						t.Fatalf("problem %q does not say %q", p, s)
					}
				}
			}
			if c.says == nil && (rep.Items < 1 || rep.KeyID == "" || rep.FileBytes <= 0) {
				t.Fatalf("report of a whole store: %+v", rep)
			}
		})
	}
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		says  string
	}{
		{"a running server", func(t *testing.T, dir string) {
			a := openApp(t, dir)
			t.Cleanup(func() { a.Close() })
			serveAdmin(t, a)
		}, "in use by a running mobius server"},
		{"a process holding the store", func(t *testing.T, dir string) {
			a := openApp(t, dir)
			t.Cleanup(func() { a.Close() })
		}, "in use by a running mobius server"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := storeWithData(t)
			c.setup(t, dir)
			_, err := Check(ctx, dir)
			if !errors.Is(err, ErrStoreInUse) || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "stop the server") {
				t.Fatalf("err %v", err)
			}
		})
	}
	t.Run("no store", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := Check(ctx, dir); err == nil || !strings.Contains(err.Error(), "no store") {
			t.Fatalf("err %v", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("check made files: %v", entries)
		}
	})
}

// TestCompact: a store that shrank is rewritten smaller, holding the same
// records and values; a store in use or damaged is left as it is.
func TestCompact(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := openApp(t, dir)
	big := strings.Repeat("x", 2000)
	for i := range 200 {
		if _, err := a.Service.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: fmt.Sprintf("s%03d", i), Values: map[string]string{"k": backupCanary + big}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 190 {
		if err := a.Service.DeleteSecret(ctx, "acme", fmt.Sprintf("s%03d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	want, values := listing(t, a.Service), revealAll(t, a.Service)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	t.Run("in use", func(t *testing.T) {
		b := openApp(t, dir)
		defer b.Close()
		before := dirState(t, dir)
		if _, err := Compact(ctx, dir); !errors.Is(err, ErrStoreInUse) {
			t.Fatalf("err %v", err)
		}
		sameState(t, "the data folder", before, dirState(t, dir))
	})
	t.Run("damaged", func(t *testing.T) {
		d := t.TempDir()
		b, _ := os.ReadFile(filepath.Join(dir, dataFileName))
		for i := 16; i < 64; i++ {
			b[i] ^= 0x5a
			b[4096+i] ^= 0x5a
		}
		os.WriteFile(filepath.Join(d, dataFileName), b, 0o600)
		before := dirState(t, d)
		if _, err := Compact(ctx, d); err == nil || !strings.Contains(err.Error(), "damaged") {
			t.Fatalf("err %v", err)
		}
		sameState(t, "the data folder", before, dirState(t, d))
	})
	t.Run("a store that shrank", func(t *testing.T) {
		res, err := Compact(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, dataFileName))
		if err != nil {
			t.Fatal(err)
		}
		if res.After >= res.Before || res.After != fi.Size() || res.Items < 10 {
			t.Fatalf("result %+v, file %d bytes", res, fi.Size())
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v", fi.Mode().Perm())
		}
		t.Logf("compacted: %d → %d bytes, %d items", res.Before, res.After, res.Items)
		if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*")); len(leftovers) > 0 {
			t.Fatalf("temporary files left: %v", leftovers)
		}
		rep, err := Check(ctx, dir)
		if err != nil || len(rep.Problems) > 0 {
			t.Fatalf("check after compact: %+v %v", rep, err)
		}
		b := openApp(t, dir)
		defer b.Close()
		sameListing(t, want, listing(t, b.Service))
		sameValues(t, values, revealAll(t, b.Service))
	})
}
