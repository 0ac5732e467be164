package bolt

import (
	"bytes"
	"fmt"
	"os"
)

// bbolt writes copy-on-write: a transaction that deletes a value writes the
// pages that held it anew, without it, and frees the old ones, which keep
// their bytes until bbolt happens to reuse them. So a destroyed version's
// ciphertext (and the data key wrapped with it) would stay in the file for
// an unbounded time. scrub overwrites every free page with zeros, in place,
// so that what destroy and delete remove is gone from the data file when
// they return.
//
// It runs inside a write transaction while s.mu is held exclusively: no
// read transaction is open, so bbolt has released every pending page to
// the free list when the transaction begins, and no page it reports free
// is still reachable from a reader or from the current tree. Pages bbolt
// writes later are written whole (unused bytes zeroed), so free pages are
// the only place stale bytes live. The zeros go through a second file
// descriptor and are synced before the transaction ends. It returns how
// many pages it wiped.
func (s *Store) scrub() (pages int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.db.Path(), os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("scrub: %w", err)
	}
	defer f.Close()
	// The transaction only holds bbolt's writer lock and its view of the
	// free list; it changes nothing, so it is rolled back, not committed.
	tx, err := s.db.Begin(true)
	if err != nil {
		return 0, fmt.Errorf("scrub: %w", err)
	}
	defer tx.Rollback()
	pageSize := s.db.Info().PageSize
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

// scrubAfterRemoval wipes the pages a committed destroy or delete freed.
// The removal itself has committed, so a failure here does not fail it: the
// scrub is retried after the next write and on every Open.
func (s *Store) scrubAfterRemoval() {
	if _, err := s.scrub(); err != nil {
		s.scrubPending.Store(true)
	}
}
