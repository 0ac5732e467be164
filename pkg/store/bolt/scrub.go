package bolt

import (
	"bytes"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
)

// bbolt writes copy-on-write: a transaction that deletes a value writes the
// pages that held it anew, without it, and frees the old ones, which keep
// their bytes until bbolt happens to reuse them. So an erased value (a
// destroyed version's ciphertext, and the data key wrapped with it) would
// stay in the file for an unbounded time. scrub overwrites every free page
// with zeros, in place, so that what an Erase removes is gone from the
// data file when its Commit returns.
//
// bbolt reports as free both the pages on its free list and the pending
// ones, freed by a transaction that an open reader may still need. So
// scrub first waits for every read transaction that began before it
// (readers.drain); reads that begin meanwhile see the tree of the last
// commit, which references no page freed so far. scrub runs in the leading
// commit's goroutine right after its transaction (or in Open, before any commit),
// and holds bbolt's writer lock while it works, so no commit frees a page
// such a newer reader uses before scrub is done. Pages bbolt writes later
// are written whole (unused bytes zeroed), so free pages are the only
// place stale bytes live. The zeros go through a second file descriptor
// and are synced before scrub returns. It returns how many pages it wiped.
func (d *Driver) scrub() (pages int, err error) {
	d.readers.drain()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer d.guard("scrub", &err)
	f, err := os.OpenFile(d.path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("scrub: %w", err)
	}
	defer f.Close()
	// The transaction only holds bbolt's writer lock and its view of the
	// free list; it changes nothing, so it is rolled back, not committed.
	tx, err := d.db.Begin(true)
	if err != nil {
		return 0, fmt.Errorf("scrub: %w", err)
	}
	defer tx.Rollback()
	pageSize := d.db.Info().PageSize
	const chunk = 64 // pages read at once
	buf := make([]byte, chunk*pageSize)
	zeros := make([]byte, pageSize)
	// wipe zeroes the free pages [start, start+n) that are not zero
	// already: most free pages were wiped by an earlier scrub, and reading
	// them from the page cache costs less than writing and syncing them.
	wipe := func(start, n int) error {
		for n > 0 {
			m := min(n, chunk)
			b := buf[:m*pageSize]
			if _, err := f.ReadAt(b, int64(start)*int64(pageSize)); err != nil {
				return err
			}
			for i := range m {
				if bytes.Equal(b[i*pageSize:(i+1)*pageSize], zeros) {
					continue
				}
				if _, err := f.WriteAt(zeros, int64(start+i)*int64(pageSize)); err != nil {
					return err
				}
				pages++
			}
			start, n = start+m, n-m
		}
		return nil
	}
	// Pages 0 and 1 are the meta pages, never free.
	runStart, runLen := 0, 0
	for id := 2; ; {
		info, err := tx.Page(id)
		if err != nil {
			return 0, fmt.Errorf("scrub: %w", err)
		}
		if info == nil { // past the end of the data
			break
		}
		if info.Type == "free" {
			if runLen == 0 {
				runStart = id
			}
			runLen++
			id++
			continue
		}
		if err := wipe(runStart, runLen); err != nil {
			return 0, fmt.Errorf("scrub: %w", err)
		}
		runLen = 0
		id += 1 + info.OverflowCount
	}
	if err := wipe(runStart, runLen); err != nil {
		return 0, fmt.Errorf("scrub: %w", err)
	}
	if pages > 0 {
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("scrub: %w", err)
		}
	}
	return pages, nil
}

// scrubAfterErase wipes the pages a committed Erase freed. The commit
// itself is durable, so a failure here does not fail it: the scrub is
// retried after the next transaction and on every Open.
func (d *Driver) scrubAfterErase() {
	if _, err := d.scrub(); err != nil {
		d.scrubPending.Store(true)
	}
}

// readers counts open read transactions by generation: drain starts a new
// generation and waits for the readers of the old ones, while new readers
// proceed.
type readers struct {
	mu  sync.Mutex
	cur *sync.WaitGroup
}

// enter registers a read about to begin; call Done on the result when it
// has ended.
func (r *readers) enter() *sync.WaitGroup {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil {
		r.cur = new(sync.WaitGroup)
	}
	r.cur.Add(1)
	return r.cur
}

// drain waits for every read that entered before it.
func (r *readers) drain() {
	r.mu.Lock()
	old := r.cur
	r.cur = new(sync.WaitGroup)
	r.mu.Unlock()
	if old != nil {
		old.Wait()
	}
}

// Scrub overwrites every free page with zeros now (see Erase in the
// package doc): what an interrupted scrub left is gone when it returns.
func (d *Driver) Scrub() error {
	if _, err := d.scrub(); err != nil {
		return err
	}
	d.scrubPending.Store(false)
	return nil
}
