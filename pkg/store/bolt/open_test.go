package bolt_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
	bbolt "go.etcd.io/bbolt"
)

// writeBolt makes a closed bbolt file at path with the given buckets and
// keys (bucket → key → value).
func writeBolt(tb testing.TB, path string, buckets map[string]map[string]string) {
	tb.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for name, kvs := range buckets {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			for k, v := range kvs {
				if err := b.Put([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
}

// Every fault of the data file is refused with one line that names the
// file, what is wrong and what to do; the file's bytes stay as they were;
// nothing is created beside it.
func TestOpenRefusesUnusableFiles(t *testing.T) {
	// A store big enough for branch pages, built once and copied.
	good := filepath.Join(t.TempDir(), "good.db")
	buildStore(t, good, 3000)
	l := pageLayout(t, good)
	if len(l.branches) == 0 || len(l.kvLeaves()) < 10 || l.freelist == 0 {
		t.Fatalf("the sample store has %d branches, %d leaves, free list %d: too small for the test", len(l.branches), len(l.kvLeaves()), l.freelist)
	}
	goodBytes := readFile(t, good)
	ps := l.pageSize
	end := l.pages * ps // what the pages need; the file may be longer
	r := rand.New(rand.NewPCG(1, 2))
	randomBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	from := func(edit func(b []byte) []byte) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			if err := os.WriteFile(path, edit(bytes.Clone(goodBytes)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	raw := func(b []byte) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	truncate := func(n int) func(t *testing.T, path string) {
		return from(func(b []byte) []byte { return b[:n] })
	}
	overwritePage := func(id int, with []byte) func(t *testing.T, path string) {
		return from(func(b []byte) []byte { copy(b[id*ps:(id+1)*ps], with); return b })
	}
	mid := l.kvLeaves()[len(l.kvLeaves())/2]
	cases := []struct {
		name  string
		make  func(t *testing.T, path string)
		want  bolt.Problem
		saysT string // what the line must say to do or what it found
	}{
		{"0 bytes", raw(nil), bolt.FileEmpty, "empty"},
		{"truncated to 10 bytes", truncate(10), bolt.FileForeign, "too short"},
		{"truncated to 40 bytes", truncate(40), bolt.FileTruncated, "restore it from a backup"},
		{"truncated to one page", truncate(ps), bolt.FileTruncated, "restore it from a backup"},
		{"truncated to three pages", truncate(3*ps + 100), bolt.FileTruncated, "restore it from a backup"},
		{"truncated to half", truncate(end / 2), bolt.FileTruncated, "restore it from a backup"},
		{"truncated by one byte", truncate(end - 1), bolt.FileTruncated, "restore it from a backup"},
		{"a middle leaf zeroed", overwritePage(mid, make([]byte, ps)), bolt.FileDamaged, "mobius admin check"},
		{"a middle leaf random", overwritePage(mid, randomBytes(ps)), bolt.FileDamaged, "restore it from a backup"},
		{"a branch zeroed", overwritePage(l.branches[0], make([]byte, ps)), bolt.FileDamaged, "restore it from a backup"},
		{"a leaf with the wrong page number", overwritePage(mid, goodBytes[l.kvLeaves()[0]*ps:(l.kvLeaves()[0]+1)*ps]), bolt.FileDamaged, "restore it from a backup"},
		{"the free list overwritten", overwritePage(l.freelist, goodBytes[mid*ps:(mid+1)*ps]), bolt.FileDamaged, "free list"},
		{"both meta pages broken", from(func(b []byte) []byte { b[72] ^= 1; b[ps+72] ^= 1; return b }), bolt.FileDamaged, "meta pages"},
		{"random bytes", raw(randomBytes(64 << 10)), bolt.FileForeign, "not a bbolt database"},
		{"a text file", raw([]byte(strings.Repeat("export MOBIUS_PROJECT=default\n", 300))), bolt.FileForeign, "not a bbolt database"},
		{"an SQLite database", raw(append([]byte("SQLite format 3\x00"), make([]byte, 8192)...)), bolt.FileForeign, "not a bbolt database"},
		{"another program's bbolt file", func(t *testing.T, path string) {
			writeBolt(t, path, map[string]map[string]string{"widgets": {"a": "b"}})
		}, bolt.FileForeign, "meta bucket"},
		{"format 1, the old layout", func(t *testing.T, path string) {
			writeBolt(t, path, map[string]map[string]string{"meta": {"schema": "1"}, "secrets": {}, "names": {}})
		}, bolt.FileOtherFormat, `format "1"`},
		{"format 3", func(t *testing.T, path string) {
			writeBolt(t, path, map[string]map[string]string{"meta": {"format": "3"}, "kv": {}})
		}, bolt.FileOtherFormat, `format "3"`},
		{"format 2 without its kv bucket", func(t *testing.T, path string) {
			writeBolt(t, path, map[string]map[string]string{"meta": {"format": "2"}})
		}, bolt.FileDamaged, "kv bucket"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "mobius.db")
			c.make(t, path)
			before := fileSum(t, path)
			d, err := bolt.Open(path, bolt.Options{Timeout: 100 * time.Millisecond})
			if err == nil {
				d.Close()
				t.Fatal("Open accepted the file")
			}
			var fe *bolt.FileError
			if !errors.As(err, &fe) || !errors.Is(err, bolt.ErrBadDataFile) {
				t.Fatalf("Open: %v (%T), want a *FileError", err, err)
			}
			msg := err.Error()
			t.Log(msg)
			if fe.Problem != c.want || !strings.Contains(msg, path) || !strings.Contains(msg, c.saysT) || strings.Contains(msg, "\n") {
				t.Errorf("Open: %q (%v), want one %v line naming the file and saying %q", msg, fe.Problem, c.want, c.saysT)
			}
			if errors.Is(err, bolt.ErrInUse) {
				t.Error("a bad file is reported as in use")
			}
			if after := fileSum(t, path); after != before {
				t.Error("a refused Open changed the file")
			}
			if names := dirNames(t, dir); !slices.Equal(names, []string{"mobius.db"}) {
				t.Errorf("the folder holds %v after a refused Open", names)
			}
		})
	}
	// The untouched copy opens, and Check finds nothing.
	t.Run("the good file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "mobius.db")
		if err := os.WriteFile(path, goodBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		d := mustOpenAt(t, path)
		if err := d.Check(); err != nil {
			t.Fatalf("Check: %v", err)
		}
		if st := d.Stats(); st.Items != 3000 {
			t.Fatalf("Stats: %+v, want 3000 items", st)
		}
	})
}

// A file another handle holds is refused as in use, with today's message,
// after the timeout; the holder keeps working.
func TestOpenRefusesAHeldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mobius.db")
	d := mustOpenAt(t, path)
	mustCommit(t, d, kv.Put(kv.Item{Key: key("p", "s"), Value: []byte("v")}, kv.Cond{}))
	before := fileSum(t, path)
	d2, err := bolt.Open(path, bolt.Options{Timeout: 100 * time.Millisecond})
	if err == nil {
		d2.Close()
		t.Fatal("a second Open of a held file succeeded")
	}
	if !errors.Is(err, bolt.ErrInUse) || errors.Is(err, bolt.ErrBadDataFile) || !strings.Contains(err.Error(), "the data file is in use by another process") || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open: %v; want ErrInUse naming the file", err)
	}
	if fileSum(t, path) != before {
		t.Error("the refused Open changed the file")
	}
	if got := all(t, d, "p"); len(got) != 1 {
		t.Fatalf("the holder after a refused Open: %v", got)
	}
}

// Random damage anywhere in the pages of a data file never crashes Open,
// a read or Check: each either refuses with a *FileError or a Corrupt
// error, or (when the damage hit only bytes nothing checks, inside a
// value) answers.
func TestOpenSurvivesRandomDamage(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.db")
	keys := buildStore(t, good, 1500)
	l := pageLayout(t, good)
	goodBytes := readFile(t, good)
	inUse := append(append(append([]int{0, 1, l.freelist, l.root}, l.branches...), l.kvLeaves()...), l.leaves...)
	r := rand.New(rand.NewPCG(3, 4))
	refused := 0
	const rounds = 300
	for round := range rounds {
		b := bytes.Clone(goodBytes)
		page := inUse[r.IntN(len(inUse))]
		switch r.IntN(3) {
		case 0: // one byte of the page's first 64: its header and first elements
			b[page*l.pageSize+r.IntN(64)] ^= byte(1 + r.IntN(255))
		case 1: // a few bytes anywhere in it
			for range 1 + r.IntN(4) {
				b[page*l.pageSize+r.IntN(l.pageSize)] = byte(r.Uint32())
			}
		case 2: // a run of zeros
			off := page*l.pageSize + r.IntN(l.pageSize)
			clear(b[off:min(off+1+r.IntN(256), (page+1)*l.pageSize)])
		}
		path := filepath.Join(t.TempDir(), "mobius.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := bolt.Open(path, bolt.Options{})
		if err != nil {
			if !errors.Is(err, bolt.ErrBadDataFile) {
				t.Fatalf("round %d (page %d): Open: %v, want a *FileError", round, page, err)
			}
			refused++
			continue
		}
		for _, p := range []string{keys[0].Partition, keys[len(keys)/2].Partition, keys[len(keys)-1].Partition} {
			if _, err := d.Query(ctx, kv.Query{Partition: p, Limit: 10}); err != nil && kv.ErrorCode(err) != kv.Corrupt {
				t.Errorf("round %d: Query on damage Open accepted: %v", round, err)
			}
		}
		if _, err := d.Get(ctx, keys...); err != nil && kv.ErrorCode(err) != kv.Corrupt {
			t.Errorf("round %d: Get on damage Open accepted: %v", round, err)
		}
		if err := d.Check(); err != nil && !errors.Is(err, bolt.ErrBadDataFile) {
			t.Errorf("round %d: Check: %v", round, err)
		}
		d.Close()
	}
	t.Logf("%d of %d damaged files refused at Open; the others opened: the damage was in bytes no check can judge (values, unused space, a meta page with a good twin)", refused, rounds)
}
