package bolt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/mobius-secrets/mobius/internal/atomicfile"
)

// ErrInUse is returned by Open when another process holds the data file.
var ErrInUse = errors.New("the data file is in use by another process")

// ErrBadDataFile matches (errors.Is) every *FileError: a data file that
// is there but cannot be used as it is.
var ErrBadDataFile = errors.New("the data file cannot be used")

// Problem is what makes a data file unusable.
type Problem int

const (
	FileEmpty       Problem = iota + 1 // 0 bytes
	FileTruncated                      // shorter than its own pages say
	FileForeign                        // not a bbolt file, or not one of Mobius
	FileOtherFormat                    // a Mobius data file of another format
	FileDamaged                        // a bbolt file whose structure is broken
)

func (p Problem) String() string {
	switch p {
	case FileEmpty:
		return "empty"
	case FileTruncated:
		return "truncated"
	case FileForeign:
		return "foreign"
	case FileOtherFormat:
		return "other format"
	case FileDamaged:
		return "damaged"
	}
	return fmt.Sprintf("Problem(%d)", int(p))
}

// FileError reports a data file Open (or Check) refuses: it says, on one
// line, which file, what is wrong and what to do. Open leaves such a file
// as it found it.
type FileError struct {
	Op      string // "open" or "check"
	Path    string
	Problem Problem
	Detail  string // what was found; never a stored value
}

func (e *FileError) Error() string {
	p := e.Op + " " + e.Path + ": "
	switch e.Problem {
	case FileEmpty:
		return p + "the data file is empty (0 bytes), not a Mobius store: restore it from a backup, or remove it to start a new, empty store"
	case FileTruncated:
		return p + "the data file is truncated (" + e.Detail + "): restore it from a backup"
	case FileForeign:
		return p + "this is not a Mobius data file (" + e.Detail + "): check that it is the data folder you meant, or move the file away"
	case FileOtherFormat:
		return p + "the data file is in " + e.Detail + "; this program reads format " + formatVersion + ": run the Mobius release that wrote it, or restore a backup in format " + formatVersion
	}
	return p + "the data file is damaged (" + e.Detail + "): restore it from a backup; `mobius admin check` tells whether a copy is whole"
}

// Is makes errors.Is(err, ErrBadDataFile) true.
func (e *FileError) Is(target error) bool { return target == ErrBadDataFile }

func inUse(path string, timeout time.Duration) error {
	return fmt.Errorf("open %s: %w (waited %s for its lock; is another mobius server running on it?)", path, ErrInUse, timeout)
}

// Open opens the data file at path, creating it (mode 0600, its folder
// 0700) if there is none. A file that is there but unusable is refused
// with a *FileError (errors.Is ErrBadDataFile) and left unchanged; a file
// another process holds for longer than opts.Timeout is refused with an
// error wrapping ErrInUse.
//
// Before anything writes, Open checks the file under a shared lock: its
// meta pages, its size against its page count, its free list and every
// page its tree reaches (read without the memory map, so that damage
// cannot fault), then bbolt's own consistency check (tx.Check), then the
// format marker. On a store of 100,000 secrets (450,000 items, 180 MB)
// the checks take 0.25 to 0.5 s with the file in the page cache. It then
// wipes the free pages an interrupted scrub left.
func Open(path string, opts Options) (d *Driver, err error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 128
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if d != nil {
				d.db.Close()
			}
			d, err = nil, &FileError{Op: "open", Path: path, Problem: FileDamaged, Detail: fmt.Sprintf("reading it failed: %v", r)}
		}
	}()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := create(path); err != nil {
			return nil, fmt.Errorf("open %s: creating the data file: %w", path, err)
		}
		fi, err = os.Stat(path)
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("open %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("open %s: not a regular file", path)
	case fi.Size() == 0:
		return nil, &FileError{Op: "open", Path: path, Problem: FileEmpty, Detail: "0 bytes"}
	}
	if err := verify(path, opts.Timeout); err != nil {
		return nil, err
	}

	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.Timeout, InitialMmapSize: initialMmapSize})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, inUse(path, opts.Timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.AllocSize = allocSize
	d = &Driver{db: db, path: path}
	// What an earlier process freed but could not scrub (it stopped
	// between an Erase's commit and its scrub) is zeroed by Scrub, which a
	// server calls once it has checked everything else, or else by the
	// first transaction: opening a store writes nothing, so a start that is
	// refused later (a wrong key) leaves the file as it was.
	d.scrubPending.Store(true)
	d.initWriter(opts.MaxBatch)
	return d, nil
}

// initialMmapSize is how much address space bbolt maps at first. bbolt
// remaps when the file outgrows its map, and a remap waits for every open
// read transaction, while new reads queue behind it: a long Backup would
// hold every commit and read up. Mapping 1 GiB at once (address space
// only: the file does not grow, and bbolt reads no page past its end)
// makes remaps rare. On Windows mapping grows the file, so there it is
// left to bbolt, and on 32-bit systems the address space is too scarce.
var initialMmapSize = func() int {
	if runtime.GOOS == "windows" || strconv.IntSize < 64 {
		return 0
	}
	return 1 << 30
}()

// allocSize is how much bbolt grows the file by, beyond what it needs,
// once its map is larger than that (always, with initialMmapSize): each
// growth costs a sync, and what is grown is space the file holds unused.
const allocSize = 1 << 20

// verify checks the data file under bbolt's shared lock, read-only, so
// that a refused file is never written to.
func verify(path string, timeout time.Duration) error {
	ro, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return inUse(path, timeout)
	}
	if err != nil {
		// bbolt refused it; say why. No process can be writing a file
		// bbolt does not open, so reading it without the lock is safe.
		if ferr := inspect(path, "open"); ferr != nil {
			return ferr
		}
		return &FileError{Op: "open", Path: path, Problem: FileDamaged, Detail: err.Error()}
	}
	defer ro.Close()
	if err := inspect(path, "open"); err != nil {
		return err
	}
	return ro.View(func(tx *bbolt.Tx) error {
		if err := boltCheck(tx, path, "open"); err != nil {
			return err
		}
		return checkFormat(tx, path, "open")
	})
}

// checkFormat checks the format marker and the buckets.
func checkFormat(tx *bbolt.Tx, path, op string) error {
	bad := func(p Problem, format string, args ...any) error {
		return &FileError{Op: op, Path: path, Problem: p, Detail: fmt.Sprintf(format, args...)}
	}
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return bad(FileForeign, "a bbolt database without Mobius's meta bucket")
	}
	v := meta.Get(keyFormat)
	switch {
	case v == nil && meta.Get(keyOldSchema) != nil:
		return bad(FileOtherFormat, "format %q, written by an earlier Mobius release", clip(meta.Get(keyOldSchema)))
	case v == nil:
		return bad(FileForeign, "a bbolt database whose meta bucket names no format")
	case string(v) != formatVersion:
		return bad(FileOtherFormat, "format %q", clip(v))
	case tx.Bucket(bucketKV) == nil:
		return bad(FileDamaged, "its kv bucket is missing")
	}
	return nil
}

func clip(b []byte) string { return string(b[:min(len(b), 32)]) }

// create makes a new, empty data file at path. It writes it under another
// name and links it into place, so that a file at path is always whole:
// a 0-byte or half-made data file is damage, never a store being created.
// If another process created path meanwhile, that file is kept.
func create(path string) error {
	tmp, err := atomicfile.TempBeside(path)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	db, err := bbolt.Open(tmp, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(keyFormat, []byte(formatVersion)); err != nil {
			return err
		}
		_, err = tx.CreateBucket(bucketKV)
		return err
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := atomicfile.Publish(tmp, path, false); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}
