package bolt_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
	bbolt "go.etcd.io/bbolt"
)

// buildStore writes a closed data file at path with n items of 200-byte
// values (in commits of 50), and returns their keys.
func buildStore(tb testing.TB, path string, n int) []kv.Key {
	tb.Helper()
	d, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	var keys []kv.Key
	var ops []kv.Op
	for i := range n {
		k := key(fmt.Sprintf("P#acme#S#sec_%06d", i/5), fmt.Sprintf("V#%010d", i%5))
		keys = append(keys, k)
		ops = append(ops, kv.Put(kv.Item{Key: k, Rev: int64(i), Value: bytes.Repeat([]byte{byte('a' + i%26)}, 200)}, kv.Cond{}))
		if len(ops) == 50 || i == n-1 {
			mustCommit(tb, d, ops...)
			ops = nil
		}
	}
	if err := d.Close(); err != nil {
		tb.Fatal(err)
	}
	return keys
}

// layout is where a closed data file keeps its pages, as bbolt reports it.
type layout struct {
	pageSize int
	pages    int // the high-water mark
	freelist int
	leaves   []int // in use
	branches []int // in use
	root     int   // the root bucket's page, which names the buckets
}

func pageLayout(tb testing.TB, path string) layout {
	tb.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var l layout
	l.pageSize = db.Info().PageSize
	err = db.View(func(tx *bbolt.Tx) error {
		l.pages = int(tx.Size()) / l.pageSize
		for id := 2; id < l.pages; {
			info, err := tx.Page(id)
			if err != nil {
				return err
			}
			switch info.Type {
			case "leaf":
				l.leaves = append(l.leaves, id)
			case "branch":
				l.branches = append(l.branches, id)
			case "freelist":
				l.freelist = id
			}
			if info.Type == "free" {
				id++
			} else {
				id += 1 + info.OverflowCount
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	// The root bucket's page (named by the newer meta page) holds the
	// bucket names.
	raw := readFile(tb, path)
	meta := func(id int) (root, txid uint64) {
		m := raw[id*l.pageSize+16:]
		return binary.NativeEndian.Uint64(m[16:]), binary.NativeEndian.Uint64(m[48:])
	}
	r0, t0 := meta(0)
	r1, t1 := meta(1)
	l.root = int(r0)
	if t1 > t0 {
		l.root = int(r1)
	}
	return l
}

// kvLeaves returns the leaves that hold items (not the root bucket's).
func (l layout) kvLeaves() []int {
	var out []int
	for _, id := range l.leaves {
		if id != l.root {
			out = append(out, id)
		}
	}
	return out
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func fileSum(tb testing.TB, path string) [32]byte {
	tb.Helper()
	return sha256.Sum256(readFile(tb, path))
}

func inFile(tb testing.TB, path string, b []byte) bool {
	tb.Helper()
	return bytes.Contains(readFile(tb, path), b)
}

// overwrite writes b at off in the file at path.
func overwrite(tb testing.TB, path string, off int64, b []byte) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		tb.Fatal(err)
	}
}

// checkFile runs bbolt's own consistency check on the closed data file.
func checkFile(tb testing.TB, path string) {
	tb.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("bbolt check: %v", err)
	}
}

func dirNames(tb testing.TB, dir string) []string {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
