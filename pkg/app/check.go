package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mobius-secrets/mobius/internal/atomicfile"
	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// ErrStoreInUse is in the chain of Check's and Compact's error when a
// server runs on the data folder.
var ErrStoreInUse = errors.New("in use by a running mobius server")

// CheckReport is what Check found.
type CheckReport struct {
	DataFile  string
	FileBytes int64
	Items     int64 // -1 if the data file does not open
	KeyFile   string
	KeyID     string // the key file's fingerprint, if it reads
	// Problems holds one line per problem found: each names the file,
	// what is wrong and what to do. Empty if the store is whole.
	Problems []string
}

// Check checks the embedded store of dataDir without changing it: the data
// file as Open checks it, the whole bbolt consistency check and every
// item's header (bolt.Driver.Check), the key file (present, 32 bytes, mode
// 0600) and the key check (the key file is the key the data is sealed
// under). It needs the store to itself: a running server is an error
// wrapping ErrStoreInUse, as is no data file at all.
func Check(ctx context.Context, dataDir string) (CheckReport, error) {
	dataPath, keyPath := filepath.Join(dataDir, dataFileName), filepath.Join(dataDir, keyFileName)
	rep := CheckReport{DataFile: dataPath, KeyFile: keyPath, Items: -1}
	d, err := openStopped(ctx, dataDir, "check")
	if errors.Is(err, bolt.ErrBadDataFile) {
		rep.Problems = append(rep.Problems, oneLine(err.Error()))
	} else if err != nil {
		return rep, err
	}
	if fi, err := os.Stat(dataPath); err == nil {
		rep.FileBytes = fi.Size()
	}
	if d != nil {
		defer d.Close()
		if err := d.Check(); err != nil {
			rep.Problems = append(rep.Problems, oneLine(err.Error()))
		} else {
			rep.Items = d.Stats().Items
		}
	}

	// The key file.
	fi, err := os.Stat(keyPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if rep.Items != 0 {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s is missing, and %s holds data sealed under it: restore the key file kept with this data file", keyPath, dataPath))
		}
		return rep, nil
	case err != nil:
		rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %v", keyPath, err))
		return rep, nil
	case fi.Mode().Perm()&0o077 != 0:
		rep.Problems = append(rep.Problems, fmt.Sprintf("%s: mode %v lets others read it; chmod 600 it", keyPath, fi.Mode().Perm()))
	}
	kek, err := readKey(keyPath)
	if err != nil {
		rep.Problems = append(rep.Problems, oneLine(err.Error())+": restore the key file kept with this data file")
		return rep, nil
	}
	defer clear(kek)
	w, _ := local.New(kek)
	rep.KeyID = w.KeyID()
	if d == nil || rep.Items <= 0 {
		return rep, nil // nothing readable is sealed under it
	}
	svc := secrets.NewService(d, w, secrets.Options{Logger: slog.New(slog.DiscardHandler)})
	// The store holds data: KeyCheckInit only verifies, it writes nothing.
	if err := svc.CheckKey(ctx, secrets.KeyCheckInit); err != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%s does not open %s: %s", keyPath, dataPath, oneLine(secrets.ErrorMessage(err))))
	}
	return rep, nil
}

// CompactResult is what Compact did.
type CompactResult struct {
	DataFile      string
	Before, After int64 // the data file's size
	Items         int64
}

// Compact rewrites the embedded store of dataDir into a fresh data file
// holding only what the store holds now (bbolt never gives back the pages
// it frees), and swaps it in atomically: the data file is the old one or
// the new one, whole. It needs a stopped store (ErrStoreInUse) and a whole
// one: a data file that does not check is refused, unchanged. The new
// file is checked, and must hold the same items and value bytes, before
// it replaces the old one.
func Compact(ctx context.Context, dataDir string) (CompactResult, error) {
	dataPath := filepath.Join(dataDir, dataFileName)
	res := CompactResult{DataFile: dataPath}
	d, err := openStopped(ctx, dataDir, "compact")
	if err != nil {
		return res, err
	}
	defer d.Close()
	if err := d.Check(); err != nil {
		return res, fmt.Errorf("compact: the store must be whole to be compacted, and it is not; nothing was changed: %w", err)
	}
	before := d.Stats()
	res.Before, res.Items = before.FileBytes, before.Items
	tmp := filepath.Join(dataDir, "."+dataFileName+".compact-"+randomSuffix())
	defer os.Remove(tmp)
	if err := d.Compact(tmp); err != nil {
		return res, fmt.Errorf("compact: nothing was changed: %w", err)
	}
	if err := checkCompacted(tmp, before); err != nil {
		return res, fmt.Errorf("compact: the compacted copy does not match the store, so it was not used: %w", err)
	}
	// The old file stays open, and locked, until the new one has its name.
	if err := os.Rename(tmp, dataPath); err != nil {
		return res, fmt.Errorf("compact: %w", err)
	}
	if err := atomicfile.SyncDir(dataDir); err != nil {
		return res, fmt.Errorf("compact: %w", err)
	}
	if fi, err := os.Stat(dataPath); err == nil {
		res.After = fi.Size()
	}
	return res, nil
}

// checkCompacted checks the compacted file at path and that it holds what
// the store held.
func checkCompacted(path string, want bolt.Stats) error {
	n, err := bolt.Open(path, bolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	defer n.Close()
	if err := n.Check(); err != nil {
		return err
	}
	if got := n.Stats(); got.Items != want.Items || got.ValueBytes != want.ValueBytes {
		return fmt.Errorf("%d items of %d value bytes, the store %d of %d", got.Items, got.ValueBytes, want.Items, want.ValueBytes)
	}
	return nil
}

// openStopped opens the data file of dataDir for an operator's command
// that needs it to itself. No data file, or a server running on it, is an
// error that says so (the latter wraps ErrStoreInUse).
func openStopped(ctx context.Context, dataDir, op string) (*bolt.Driver, error) {
	dataPath := filepath.Join(dataDir, dataFileName)
	inUse := func() error {
		return fmt.Errorf("%s: the store in %s is %w, and %s works on a stopped store: stop the server first (mobius admin backup --to FILE checks a consistent copy while it runs)", op, dataDir, ErrStoreInUse, op)
	}
	if serverRunning(ctx, dataDir) {
		return nil, inUse()
	}
	if err := mustExist(dataPath); err != nil {
		return nil, fmt.Errorf("%s: no store in %s: %w", op, dataDir, err)
	}
	d, err := bolt.Open(dataPath, bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrInUse) {
		return nil, inUse()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return d, nil
}
