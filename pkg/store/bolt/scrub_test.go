package bolt_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// marker returns a value no other test writes, easy to find in the file.
func marker(tb testing.TB, name string) []byte {
	tb.Helper()
	b := make([]byte, 48)
	rand.Read(b)
	return append([]byte("marker-"+name+"-"), fmt.Appendf(nil, "%x", b)...)
}

// An erased value is gone from the data file, free pages included, when
// Commit returns; a plain delete leaves it in free space until the next
// Open scrubs.
func TestEraseLeavesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mobius.db")
	d := mustOpenAt(t, path)
	vals := map[string][]byte{}
	for _, name := range []string{"kept", "erased1", "erased2", "deleted"} {
		vals[name] = marker(t, name)
		// Each value beside others, so that the pages that held it are
		// rewritten, not only freed.
		mustCommit(t, d,
			kv.Put(kv.Item{Key: key("P#acme#S#"+name, "C#1"), Value: vals[name]}, kv.Cond{}),
			kv.Put(kv.Item{Key: key("P#acme#S#"+name, "V#1"), Value: []byte("meta")}, kv.Cond{}),
		)
	}
	for name, v := range vals {
		if !inFile(t, path, v) {
			t.Fatalf("%s's value is not in the file before the erase: the test cannot see it", name)
		}
	}
	mustCommit(t, d, kv.Erase(key("P#acme#S#erased1", "C#1"), kv.IfExists()))
	mustCommit(t, d,
		kv.Erase(key("P#acme#S#erased2", "C#1"), kv.IfExists()),
		kv.Put(kv.Item{Key: key("P#acme#S#erased2", "V#1"), Value: []byte("destroyed")}, kv.Cond{}),
	)
	mustCommit(t, d, kv.Delete(key("P#acme#S#deleted", "C#1"), kv.IfExists()))
	for _, name := range []string{"erased1", "erased2"} {
		if inFile(t, path, vals[name]) {
			t.Errorf("%s was erased, but its value is still in the data file", name)
		}
	}
	if !inFile(t, path, vals["kept"]) {
		t.Error("the kept value left the file")
	}
	if !inFile(t, path, vals["deleted"]) {
		t.Error("a plain delete scrubbed: only an Erase should")
	}
	if got := all(t, d, "P#acme#S#kept"); len(got) != 2 || !bytes.Equal(got[0].Value, vals["kept"]) {
		t.Fatalf("the kept item after scrubs: %v", got)
	}
	if err := d.Check(); err != nil {
		t.Fatalf("Check after scrubs: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path)

	// Open writes nothing; the Scrub a server runs once its start is
	// checked zeroes what a process left in free space (here the plain
	// delete; after a crash, an erase whose scrub did not run).
	d, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !inFile(t, path, vals["deleted"]) {
		t.Error("Open scrubbed the free pages: it must write nothing")
	}
	if err := d.Scrub(); err != nil {
		t.Fatal(err)
	}
	if inFile(t, path, vals["deleted"]) {
		t.Error("Scrub did not scrub the free pages")
	}
	if got := all(t, d, "P#acme#S#kept"); len(got) != 2 || !bytes.Equal(got[0].Value, vals["kept"]) {
		t.Fatalf("the kept item after reopening: %v", got)
	}
}

// Scrubs run while other goroutines read and write: nothing they read is
// damaged, every erased value is gone, and the file stays consistent.
func TestScrubUnderConcurrency(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mobius.db")
	d := mustOpenAt(t, path)
	const n = 16
	gone := make([][]byte, n)
	kept := make([][]byte, n)
	for i := range n {
		gone[i], kept[i] = marker(t, fmt.Sprint("gone", i)), marker(t, fmt.Sprint("kept", i))
		mustCommit(t, d,
			kv.Put(kv.Item{Key: key(fmt.Sprint("s", i), "C#1"), Value: gone[i]}, kv.Cond{}),
			kv.Put(kv.Item{Key: key(fmt.Sprint("s", i), "C#2"), Value: kept[i]}, kv.Cond{}),
		)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i := range n {
		part := fmt.Sprint("s", i)
		wg.Go(func() { // erase version 1
			if err := d.Commit(ctx, kv.Erase(key(part, "C#1"), kv.IfExists())); err != nil {
				errs <- fmt.Errorf("erase %s: %w", part, err)
			}
		})
		wg.Go(func() { // read version 2, many times
			for range 20 {
				items, err := d.Get(ctx, key(part, "C#2"))
				if err != nil || len(items) != 1 || !bytes.Equal(items[0].Value, kept[i]) {
					errs <- fmt.Errorf("read %s during scrubs: %v, %v", part, items, err)
					return
				}
			}
		})
		wg.Go(func() { // write elsewhere
			if err := d.Commit(ctx, kv.Put(kv.Item{Key: key(part+"-new", "C#1"), Value: []byte("x")}, kv.IfAbsent(time.Time{}))); err != nil {
				errs <- fmt.Errorf("write during scrubs: %w", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range n {
		if inFile(t, path, gone[i]) {
			t.Errorf("s%d C#1 erased, but its value is in the file", i)
		}
		if !inFile(t, path, kept[i]) {
			t.Errorf("s%d C#2 kept, but its value is not in the file", i)
		}
	}
	if err := d.Check(); err != nil {
		t.Fatalf("Check after concurrent scrubs: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path)
	d = mustOpenAt(t, path)
	for i := range n {
		if got := all(t, d, fmt.Sprint("s", i)); len(got) != 1 || !bytes.Equal(got[0].Value, kept[i]) {
			t.Errorf("s%d after reopening: %v", i, got)
		}
		if got := all(t, d, fmt.Sprint("s", i, "-new")); len(got) != 1 {
			t.Errorf("s%d-new after reopening: %v", i, got)
		}
	}
}

// An Erase waits for the reads that began before it (here a Backup held
// up by its reader), since they may still use the freed pages; reads that
// begin meanwhile are served. The backup is the store as it was.
func TestEraseWaitsForOlderReadsOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mobius.db")
	d := mustOpenAt(t, path)
	secret := marker(t, "erased")
	mustCommit(t, d, kv.Put(kv.Item{Key: key("p", "erased"), Value: secret}, kv.Cond{}), put("p", "kept", "v", kv.Cond{}))

	pr, pw := io.Pipe()
	backedUp := make(chan error, 1)
	go func() {
		_, err := d.Backup(pw)
		pw.CloseWithError(err)
		backedUp <- err
	}()
	first := make([]byte, 1)
	if _, err := io.ReadFull(pr, first); err != nil { // the backup's read has begun
		t.Fatal(err)
	}
	erased := start(d, ctx, kv.Erase(key("p", "erased"), kv.IfExists()))
	// Reads that begin now are served, and see the erase committed.
	for {
		items, err := d.Get(ctx, key("p", "erased"), key("p", "kept"))
		if err != nil {
			t.Fatal(err)
		}
		if len(items) == 1 && items[0].Sort == "kept" {
			break
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-erased:
		t.Fatalf("the Erase returned (%v) while a read older than it was open", err)
	default:
	}
	rest, err := io.ReadAll(pr)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-backedUp; err != nil {
		t.Fatal(err)
	}
	if err := <-erased; err != nil {
		t.Fatal(err)
	}
	if inFile(t, path, secret) {
		t.Error("the erased value is in the data file after the Erase returned")
	}
	backup := filepath.Join(dir, "backup.db")
	if err := os.WriteFile(backup, append(first, rest...), 0o600); err != nil {
		t.Fatal(err)
	}
	b := mustOpenAt(t, backup)
	if items, err := b.Get(ctx, key("p", "erased")); err != nil || len(items) != 1 || !bytes.Equal(items[0].Value, secret) {
		t.Fatalf("the backup, begun before the Erase: %v, %v; want the value", items, err)
	}
}
