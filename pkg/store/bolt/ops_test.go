package bolt_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// A backup taken while writers run opens as a store, holds every item as
// it was, and is one snapshot: of each writer's run of keys, a prefix.
func TestBackupWhileServing(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "mobius.db")
	keys := buildStore(t, src, 500)
	d := mustOpenAt(t, src)
	base, err := d.Get(ctx, keys...)
	if err != nil || len(base) != len(keys) {
		t.Fatalf("Get: %d items, %v", len(base), err)
	}
	const writers = 4
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; !stop.Load() && i < 10_000; i++ {
				if err := d.Commit(ctx, put(fmt.Sprint("live", w), fmt.Sprintf("%05d", i), "v", absent)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for len(all(t, d, "live0")) < 5 { // let the writers get going
		time.Sleep(time.Millisecond)
	}
	out, err := os.Create(filepath.Join(dir, "backup.db"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := d.Backup(out)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(out.Name()); fi.Size() != n {
		t.Fatalf("Backup reported %d bytes, wrote %d", n, fi.Size())
	}
	b := mustOpenAt(t, out.Name())
	if err := b.Check(); err != nil {
		t.Fatalf("Check of the backup: %v", err)
	}
	got, err := b.Get(ctx, keys...)
	if err != nil || !reflect.DeepEqual(got, base) {
		t.Fatalf("the backup's items differ from the store's (%v)", err)
	}
	for w := range writers {
		items := all(t, b, fmt.Sprint("live", w))
		for i, it := range items {
			if it.Sort != fmt.Sprintf("%05d", i) {
				t.Fatalf("writer %d: the backup holds %s at %d: not a snapshot", w, it.Sort, i)
			}
		}
		if len(items) > len(all(t, d, fmt.Sprint("live", w))) {
			t.Fatalf("writer %d: the backup holds more than the store", w)
		}
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after -= len(p); f.after < 0 {
		return 0, errors.New("no space left on the backup disk")
	}
	return len(p), nil
}

func TestBackupToAFailingWriter(t *testing.T) {
	d := MustOpen(t)
	mustCommit(t, d, put("p", "s", "v", absent))
	if _, err := d.Backup(&failingWriter{after: 10_000}); kv.ErrorCode(err) != kv.Unavailable {
		t.Fatalf("Backup to a failing writer: %v, want Unavailable", err)
	}
	if got := all(t, d, "p"); len(got) != 1 {
		t.Fatalf("after a failed backup: %v", got)
	}
}

// A store that shrank compacts into a smaller file with the same items.
func TestCompact(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "mobius.db")
	keys := buildStore(t, src, 3000)
	d := mustOpenAt(t, src)
	for i := 0; i < len(keys); i += 100 {
		var ops []kv.Op
		for _, k := range keys[i : i+100] {
			if k.Sort != "V#0000000000" {
				ops = append(ops, kv.Delete(k, kv.IfExists()))
			}
		}
		mustCommit(t, d, ops...)
	}
	kept := map[string][]kv.Item{}
	for _, k := range keys {
		if _, ok := kept[k.Partition]; !ok {
			kept[k.Partition] = all(t, d, k.Partition)
		}
	}
	dst := filepath.Join(dir, "sub", "compact.db")
	if err := d.Compact(dst); err != nil {
		t.Fatal(err)
	}
	srcSize, dstSize := fileSize(t, src), fileSize(t, dst)
	if dstSize*4 > srcSize {
		t.Errorf("compacted %d bytes into %d: want a quarter or less", srcSize, dstSize)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the compacted file's mode: %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	c := mustOpenAt(t, dst)
	for p, want := range kept {
		if got := all(t, c, p); !reflect.DeepEqual(got, want) {
			t.Fatalf("partition %s compacted: %v, want %v", p, got, want)
		}
	}
	if err := c.Check(); err != nil {
		t.Fatalf("Check of the compacted copy: %v", err)
	}
	// An existing file is never replaced.
	before := fileSum(t, dst)
	if err := d.Compact(dst); err == nil {
		t.Fatal("Compact onto an existing file succeeded")
	}
	if fileSum(t, dst) != before {
		t.Fatal("Compact changed an existing file")
	}
	if names := dirNames(t, filepath.Dir(dst)); !reflect.DeepEqual(names, []string{"compact.db"}) {
		t.Errorf("Compact left %v", names)
	}
}

func fileSize(tb testing.TB, path string) int64 {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}

// A store emptied of every item (its tree collapsed back to one leaf)
// passes every check and reopens empty.
func TestEmptiedStoreReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mobius.db")
	keys := buildStore(t, path, 3000)
	d := mustOpenAt(t, path)
	for i := 0; i < len(keys); i += 100 {
		var ops []kv.Op
		for _, k := range keys[i : i+100] {
			ops = append(ops, kv.Erase(k, kv.IfExists()))
		}
		mustCommit(t, d, ops...)
	}
	if err := d.Check(); err != nil {
		t.Fatalf("Check of the emptied store: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = mustOpenAt(t, path)
	if empty, err := d.Empty(ctx); err != nil || !empty {
		t.Fatalf("Empty after reopening: %v, %v", empty, err)
	}
	if raw := readFile(t, path); bytes.Contains(raw, bytes.Repeat([]byte{'a'}, 200)) {
		t.Error("an erased value is still in the file")
	}
}
