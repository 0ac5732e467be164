// Package bolt is the embedded kv.Driver: one bbolt file on local disk, for
// `mobius serve` on one machine. It has exactly the semantics of the
// reference driver, pkg/kv/memkv, and enforces the port's limits with the
// port's own checks (kv.CheckKey, kv.CheckQuery, kv.CheckCommit,
// kv.Cond.Holds, kv.Query.InRange), so every driver agrees.
//
// # Layout
//
// The file holds two buckets:
//
//	meta   "format" → "2"
//	kv     partition 0x00 sort → header, value
//
// A key is the partition, a 0 byte and the sort key (the port forbids 0
// bytes in keys), so a partition's items are one run of keys in sort-key
// order. The header is the item's Rev as a zigzag varint, then its Expires
// as a uvarint, 0 for none, else 1 + the zigzag of its Unix milliseconds
// (so the epoch is not none): 2 bytes for a small Rev and no expiry, 7
// with an expiry of this century. Values are
// copied out of the memory map before a read returns. An item of a 100-byte
// value under the domain's keys takes about 250 bytes of file as written,
// 170 in a compacted copy (TestSizePerSecret).
//
// # Opening
//
// Open refuses, with one line naming the file, what is wrong and what to
// do, a data file that is empty, truncated, not a bbolt file, of another
// format, or damaged; it never panics, never replaces such a file with a
// new store, and leaves its bytes as they were. It checks the file's
// structure itself before bbolt maps it (meta pages, size, free list, every
// page the tree reaches, key order), because bbolt trusts the file and
// panics or faults on some damage, then runs bbolt's own check (tx.Check).
// The errors are *FileError, matched by ErrBadDataFile; another process
// holding the file is ErrInUse. Check runs the same checks, and decodes
// every item, on an open store. A read or commit that meets damage anyway
// (the file changed under the store) fails with Corrupt, never a panic.
//
// # Durability and group commit
//
// Every Commit is durable (fsynced) before it returns. One transaction is
// written at a time: a Commit that arrives while nothing is being written
// runs at once, in its caller's goroutine and a transaction of its own;
// commits that arrive while a transaction is being written and synced
// wait, and the next transaction takes all of them (up to
// Options.MaxBatch), in arrival order, written by the first of them. Within a
// shared transaction each commit checks its conditions against the items
// as the commits before it left them and is applied only if they all
// hold, so a commit that fails gets its own error and the others are
// unaffected. A transaction that fails as a whole fails every commit in
// it with Unavailable (Corrupt if the file turned out to be damaged).
//
// # Erase
//
// bbolt writes copy-on-write: pages that held a deleted value are freed
// and keep their bytes until reused. After a transaction that holds an
// Erase, and before those commits return, the free pages are overwritten
// with zeros (scrub.go); it first waits for the reads that began before
// it (a Backup among them), which may still use those pages, and the
// commits queued behind it wait too; reads that begin meanwhile do not. Plain deletes and overwrites
// do not scrub. What a crash left between an Erase's commit and its scrub
// is zeroed by Scrub (a server calls it once its start is checked) or by
// the first transaction after Open; Open itself writes nothing.
//
// It imports pkg/kv and go.etcd.io/bbolt (and the standard library).
package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Options tune Open. The zero value is usable.
type Options struct {
	// Timeout bounds the wait for the file lock when another process holds
	// the file; Open then fails with ErrInUse. 1s if zero.
	Timeout time.Duration
	// MaxBatch bounds how many waiting commits one transaction takes. 128
	// if zero.
	MaxBatch int
}

// maxBatchBytes bounds the values one transaction writes, besides
// MaxBatch: a transaction always takes at least one commit.
const maxBatchBytes = 16 << 20

// Driver is a kv.Driver in one bbolt file. It is safe for concurrent use
// by one process; the file's lock keeps other processes out.
type Driver struct {
	db   *bbolt.DB
	path string
	// readers counts the open read transactions, by generation, for scrub.
	readers readers
	// scrubPending is set when a scrub failed; the next transaction's
	// writer tries again.
	scrubPending atomic.Bool
	w            writer

	closeOnce sync.Once
	closeErr  error
}

var _ kv.Driver = (*Driver)(nil)

// Path returns the data file's path.
func (d *Driver) Path() string { return d.path }

// Close waits for the commits already queued, then releases the file.
// Calls after Close fail with Unavailable.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() {
		d.w.stop()
		d.closeErr = d.db.Close()
	})
	return d.closeErr
}

// guard turns a panic or a memory fault of bbolt (reading a damaged page)
// into a Corrupt error in *err. Deferred by every call into bbolt.
func (d *Driver) guard(op string, err *error) {
	if r := recover(); r != nil {
		*err = d.corrupt(op, fmt.Sprint(r))
	}
}

// corrupt is the Corrupt error of op on a damaged file; it wraps a
// *FileError, so it also matches ErrBadDataFile.
func (d *Driver) corrupt(op, detail string) error {
	return kv.Errorf(kv.Corrupt, op, &FileError{Op: strings.ToLower(op), Path: d.path, Problem: FileDamaged, Detail: detail}, "reading the data file failed")
}

// view runs fn in a read transaction.
func (d *Driver) view(ctx context.Context, op string, fn func(tx *bbolt.Tx) error) (err error) {
	if err := kv.ContextError(ctx, op); err != nil {
		return err
	}
	defer d.readers.enter().Done()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer d.guard(op, &err)
	return d.classify(op, d.db.View(fn))
}

// classify turns an error of bbolt into a kv error; kv errors pass.
func (d *Driver) classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var ke *kv.Error
	var ce *kv.ConditionError
	switch {
	case errors.As(err, &ke), errors.As(err, &ce):
		return err
	case errors.Is(err, bolterrors.ErrDatabaseNotOpen), errors.Is(err, bolterrors.ErrTxClosed):
		return kv.Errorf(kv.Unavailable, op, err, "the store is closed")
	case errors.Is(err, errBadHeader), errors.Is(err, errNoBucket):
		return d.corrupt(op, err.Error())
	}
	return kv.Errorf(kv.Unavailable, op, err, "the data file %s failed", d.path)
}

var errNoBucket = errors.New("the kv bucket is missing")

func kvBucket(tx *bbolt.Tx) (*bbolt.Bucket, error) {
	b := tx.Bucket(bucketKV)
	if b == nil {
		return nil, errNoBucket
	}
	return b, nil
}

// Get implements kv.Driver.
func (d *Driver) Get(ctx context.Context, keys ...kv.Key) ([]kv.Item, error) {
	for _, k := range keys {
		if err := kv.CheckKey(k); err != nil {
			return nil, err
		}
	}
	out := make([]kv.Item, 0, len(keys))
	err := d.view(ctx, "Get", func(tx *bbolt.Tx) error {
		b, err := kvBucket(tx)
		if err != nil {
			return err
		}
		seen := make(map[kv.Key]bool, len(keys))
		for _, k := range keys {
			if seen[k] {
				continue
			}
			seen[k] = true
			v := b.Get(itemKey(k))
			if v == nil {
				continue
			}
			it, err := decodeItem(k, v)
			if err != nil {
				return err
			}
			out = append(out, it)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Query implements kv.Driver.
func (d *Driver) Query(ctx context.Context, q kv.Query) ([]kv.Item, error) {
	if err := kv.CheckQuery(q); err != nil {
		return nil, err
	}
	part := append([]byte(q.Partition), 0)
	prefix := append(bytes.Clone(part), q.Prefix...)
	var out []kv.Item
	err := d.view(ctx, "Query", func(tx *bbolt.Tx) error {
		b, err := kvBucket(tx)
		if err != nil {
			return err
		}
		out = make([]kv.Item, 0, min(q.Limit, 64))
		c := b.Cursor()
		var k, v []byte
		if !q.Reverse {
			start := prefix
			if after := append(bytes.Clone(part), q.After...); q.After != "" && bytes.Compare(after, start) > 0 {
				start = after
			}
			k, v = c.Seek(start)
		} else {
			// Position on the last key before bound.
			bound := upperBound(prefix)
			if after := append(bytes.Clone(part), q.After...); q.After != "" && (bound == nil || bytes.Compare(after, bound) < 0) {
				bound = after
			}
			if bound == nil {
				k, v = c.Last()
			} else if k, _ = c.Seek(bound); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < q.Limit; k, v = step(c, q.Reverse) {
			sk := string(k[len(part):])
			if !q.InRange(sk) {
				continue
			}
			it, err := decodeItem(kv.Key{Partition: q.Partition, Sort: sk}, v)
			if err != nil {
				return err
			}
			out = append(out, it)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func step(c *bbolt.Cursor, reverse bool) ([]byte, []byte) {
	if reverse {
		return c.Prev()
	}
	return c.Next()
}

// Partitions returns up to limit names of partitions that hold items and
// start with prefix, in byte order, after the name after: what the
// domain's Sweep needs of a store that keeps expired items
// (secrets.PartitionLister). Keys sort by partition first (a partition
// name holds no zero byte), so it seeks once per partition and never reads
// a partition's items.
func (d *Driver) Partitions(ctx context.Context, prefix, after string, limit int) ([]string, error) {
	if limit < 1 {
		return nil, kv.Errorf(kv.Invalid, "Partitions", nil, "limit must be at least 1, not %d", limit)
	}
	var out []string
	err := d.view(ctx, "Partitions", func(tx *bbolt.Tx) error {
		b, err := kvBucket(tx)
		if err != nil {
			return err
		}
		c := b.Cursor()
		start := []byte(prefix)
		if after != "" && after >= prefix {
			start = append([]byte(after), 1) // past every key of partition after
		}
		for k, _ := c.Seek(start); k != nil && len(out) < limit; k, _ = c.Seek(start) {
			i := bytes.IndexByte(k, 0)
			if i < 0 {
				return d.corrupt("Partitions", "a key without a partition separator")
			}
			part := string(k[:i])
			if !strings.HasPrefix(part, prefix) {
				break
			}
			out = append(out, part)
			start = append([]byte(part), 1)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Empty reports whether the store holds no item.
func (d *Driver) Empty(ctx context.Context) (bool, error) {
	var empty bool
	err := d.view(ctx, "Empty", func(tx *bbolt.Tx) error {
		b, err := kvBucket(tx)
		if err != nil {
			return err
		}
		k, _ := b.Cursor().First()
		empty = k == nil
		return nil
	})
	return empty, err
}

// Stats describes the data file.
type Stats struct {
	// FileBytes is the file's size, including space bbolt allocated
	// ahead and free pages.
	FileBytes int64
	// PageSize is bbolt's page size; Pages is how many pages are in use
	// or free (the high-water mark), FreePages how many of them are free.
	PageSize  int
	Pages     int64
	FreePages int
	// Items is how many items the store holds and ValueBytes the sum of
	// their values' lengths; both are -1 if the file could not be read.
	Items      int64
	ValueBytes int64
}

// Stats reads the store's figures. It walks every item.
func (d *Driver) Stats() Stats {
	st := Stats{FreePages: d.db.Stats().FreePageN, Items: -1, ValueBytes: -1}
	if fi, err := os.Stat(d.path); err == nil {
		st.FileBytes = fi.Size()
	}
	var items, vbytes int64
	err := d.view(context.Background(), "Stats", func(tx *bbolt.Tx) error {
		st.PageSize = tx.DB().Info().PageSize
		st.Pages = tx.Size() / int64(st.PageSize)
		b, err := kvBucket(tx)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			_, _, n, err := decodeHeader(v)
			if err != nil {
				return err
			}
			items++
			vbytes += int64(len(v) - n)
		}
		return nil
	})
	if err == nil {
		st.Items, st.ValueBytes = items, vbytes
	}
	return st
}
