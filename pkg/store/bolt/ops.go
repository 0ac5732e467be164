package bolt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/mobius-secrets/mobius/internal/atomicfile"
	"github.com/mobius-secrets/mobius/pkg/kv"
	bbolt "go.etcd.io/bbolt"
)

// Check verifies the whole data file: the structure Open checks, bbolt's
// own consistency check (tx.Check: every page reachable once or free, key
// order across pages), the format marker, and every item's key and
// header. It returns nil, a *FileError (errors.Is ErrBadDataFile)
// describing the first damage found, or an Unavailable *kv.Error.
// Commits wait while it runs (about half a second on a store of 100,000
// secrets); reads do not.
func (d *Driver) Check() (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &FileError{Op: "check", Path: d.path, Problem: FileDamaged, Detail: fmt.Sprintf("reading it failed: %v", r)}
		}
	}()
	// A write transaction holds bbolt's writer lock: no commit or scrub
	// changes the file while it is read. It writes nothing.
	tx, err := d.db.Begin(true)
	if err != nil {
		return d.classify("Check", err)
	}
	defer tx.Rollback()
	if err := inspect(d.path, "check"); err != nil {
		return err
	}
	if err := boltCheck(tx, d.path, "check"); err != nil {
		return err
	}
	if err := checkFormat(tx, d.path, "check"); err != nil {
		return err
	}
	c := tx.Bucket(bucketKV).Cursor()
	i := 0
	for k, v := c.First(); k != nil; k, v = c.Next() {
		key, ok := splitKey(k)
		if !ok || v == nil || kv.CheckKey(key) != nil {
			return &FileError{Op: "check", Path: d.path, Problem: FileDamaged, Detail: fmt.Sprintf("item %d has a key the store never writes", i)}
		}
		if _, _, _, err := decodeHeader(v); err != nil {
			return &FileError{Op: "check", Path: d.path, Problem: FileDamaged, Detail: fmt.Sprintf("item %d (%s) has a header that does not decode", i, key)}
		}
		i++
	}
	return nil
}

// boltCheck runs bbolt's consistency check, which reads the file through
// its memory map: only on a file inspect passed.
func boltCheck(tx *bbolt.Tx, path, op string) error {
	var first error
	n := 0
	for err := range tx.Check() {
		if first == nil {
			first = err
		}
		n++
	}
	if first == nil {
		return nil
	}
	detail := "bbolt's check: " + first.Error()
	if n > 1 {
		detail += fmt.Sprintf(", and %d more problems", n-1)
	}
	return &FileError{Op: op, Path: path, Problem: FileDamaged, Detail: detail}
}

// Backup writes a consistent copy of the data file to w while the store
// serves, and returns how many bytes it wrote. The copy is a data file
// Open accepts. An Erase committed while it runs waits for it to end
// before it returns (the scrub must not wipe pages the copy still reads),
// and so do the commits queued behind that Erase; reads do not wait.
func (d *Driver) Backup(w io.Writer) (int64, error) {
	var n int64
	err := d.view(context.Background(), "Backup", func(tx *bbolt.Tx) error {
		var err error
		if n, err = tx.WriteTo(w); err != nil {
			return kv.Errorf(kv.Unavailable, "Backup", err, "writing the copy failed after %d bytes", n)
		}
		return nil
	})
	return n, err
}

// Compact writes a compacted copy of the store to a new data file at dst
// (which must not exist), for a store that shrank: bbolt never gives
// back the pages it frees. The copy is checked like Open checks a file,
// written under another name and linked into place, so dst is whole or
// absent.
func (d *Driver) Compact(dst string) (err error) {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("compact to %s: the file exists; name a new one", dst)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("compact to %s: %w", dst, err)
	}
	tmp, err := atomicfile.TempBeside(dst)
	if err != nil {
		return fmt.Errorf("compact to %s: %w", dst, err)
	}
	defer os.Remove(tmp)
	out, err := bbolt.Open(tmp, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("compact to %s: %w", dst, err)
	}
	err = d.compactInto(out)
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("compact to %s: %w", dst, cerr)
	}
	if err != nil {
		return err
	}
	if err := inspect(tmp, "compact"); err != nil {
		return fmt.Errorf("compact to %s: the copy does not check: %w", dst, err)
	}
	if err := atomicfile.Publish(tmp, dst, false); err != nil {
		return fmt.Errorf("compact to %s: %w", dst, err)
	}
	return nil
}

func (d *Driver) compactInto(out *bbolt.DB) (err error) {
	defer d.readers.enter().Done()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer d.guard("Compact", &err)
	if err := bbolt.Compact(out, d.db, 64<<20); err != nil {
		var ke *kv.Error
		if errors.As(err, &ke) {
			return err
		}
		return d.classify("Compact", err)
	}
	return nil
}
