package bolt

import (
	"fmt"
	"os"

	bbolt "go.etcd.io/bbolt"
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
// descriptor and are synced before the transaction ends.
func (s *Store) scrub() (pages int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.db.Path(), os.O_WRONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("scrub: %w", err)
	}
	defer f.Close()
	pageSize := s.db.Info().PageSize
	zeros := make([]byte, 64*pageSize)
	err = s.db.Update(func(tx *bbolt.Tx) error {
		// Consecutive free pages are written as one run.
		runStart, runLen := 0, 0
		flush := func() error {
			for runLen > 0 {
				n := min(runLen, len(zeros)/pageSize)
				if _, err := f.WriteAt(zeros[:n*pageSize], int64(runStart)*int64(pageSize)); err != nil {
					return err
				}
				runStart, runLen = runStart+n, runLen-n
			}
			return nil
		}
		// Pages 0 and 1 are the meta pages, never free.
		for id := 2; ; {
			info, err := tx.Page(id)
			if err != nil {
				return err
			}
			if info == nil { // past the end of the data
				break
			}
			if info.Type == "free" {
				if runLen == 0 {
					runStart = id
				}
				runLen++
				pages++
				id++
				continue
			}
			if err := flush(); err != nil {
				return err
			}
			id += 1 + info.OverflowCount
		}
		if err := flush(); err != nil {
			return err
		}
		return f.Sync()
	})
	if err != nil {
		return 0, fmt.Errorf("scrub: %w", err)
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
