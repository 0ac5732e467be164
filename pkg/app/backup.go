package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

// Backup, restore, check and compact of the embedded store.
//
// A backup is two files kept apart: the data copy (ciphertext only) and
// the key file that opens it. Each is written under a temporary name
// beside its destination, synced and then linked into place, so a
// destination is whole or absent. Every copy is verified before it is
// published (bolt.Open's checks, bolt.Driver.Check, and the key check
// against the key), and a restore verifies the backup in the data folder,
// under a temporary name, before it replaces anything.

// BackupOptions says what Backup copies where.
type BackupOptions struct {
	DataDir string // the data folder of the store
	To      string // the data copy
	WithKey string // if set, where to write a copy of the key file
	Force   bool   // replace To and WithKey if they exist
}

// BackupResult describes a backup that was written.
type BackupResult struct {
	To      string
	Bytes   int64
	Items   int64
	Online  bool   // copied from a running server through its socket
	KeyFile string // the data folder's key file
	KeyID   string // its fingerprint; "" if it is missing
	// KeyChecked: the copy was verified against the key (false if the key
	// file is missing, or the copy holds nothing).
	KeyChecked bool
	WithKey    string // where the key was copied, if asked
}

// Backup writes a consistent copy of the embedded store under
// opts.DataDir to opts.To: through the operator socket of the server that
// runs on it, or, with no server, from the data file itself. It never
// stops a server, and refuses with one line (having written nothing): an
// existing To or WithKey without Force, a data folder with no store, a
// copy that does not check, or a key file that does not open it.
func Backup(ctx context.Context, opts BackupOptions) (BackupResult, error) {
	dataPath, keyPath := filepath.Join(opts.DataDir, dataFileName), filepath.Join(opts.DataDir, keyFileName)
	res := BackupResult{To: opts.To, KeyFile: keyPath, WithKey: opts.WithKey}
	if opts.To == "" {
		return res, errors.New("backup: no destination file")
	}
	for _, dst := range []string{opts.To, opts.WithKey} {
		if dst == "" {
			continue
		}
		if same(dst, dataPath) || same(dst, keyPath) {
			return res, fmt.Errorf("backup: %s is a file of the store itself; write the backup elsewhere", dst)
		}
		if err := refuseExisting(dst, opts.Force); err != nil {
			return res, err
		}
	}
	if opts.WithKey != "" && same(opts.WithKey, opts.To) {
		return res, errors.New("backup: the key must go to another file than the data copy")
	}
	kek, keyErr := readKey(keyPath)
	if keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist) {
		return res, keyErr
	}
	if kek != nil {
		defer clear(kek)
		w, _ := local.New(kek)
		res.KeyID = w.KeyID()
	} else if opts.WithKey != "" {
		return res, fmt.Errorf("backup: %s is missing, so there is no key to write to %s", keyPath, opts.WithKey)
	}

	tmp, err := atomicfile.TempBeside(opts.To)
	if err != nil {
		return res, fmt.Errorf("backup to %s: %w", opts.To, err)
	}
	defer os.Remove(tmp)
	res.Bytes, res.Online, err = copyStore(ctx, opts.DataDir, tmp)
	if err != nil {
		return res, err
	}
	v, err := verifyCopy(ctx, tmp, kek)
	if err != nil {
		return res, fmt.Errorf("backup: the copy does not check, so it was not kept: %w", err)
	}
	res.Items, res.KeyChecked = v.items, v.keyChecked
	if err := publish(tmp, opts.To, opts.Force); err != nil {
		return res, fmt.Errorf("backup to %s: %w", opts.To, err)
	}
	if opts.WithKey != "" {
		if err := writeNew(opts.WithKey, kek, opts.Force); err != nil {
			return res, fmt.Errorf("backup: the data copy %s is written, but the key copy is not: %w", opts.To, err)
		}
	}
	return res, nil
}

// copyStore writes a consistent copy of the store of dataDir into the
// existing file tmp, and says whether it came from a running server.
func copyStore(ctx context.Context, dataDir, tmp string) (n int64, online bool, err error) {
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	n, err = fetchBackup(ctx, dataDir, f)
	online = err == nil
	if errors.Is(err, errNoServer) {
		n, err = copyStopped(dataDir, f)
	}
	if err != nil {
		return n, online, err
	}
	if err := f.Sync(); err != nil {
		return n, online, err
	}
	return n, online, f.Close()
}

// copyStopped copies the data file of a store no server runs on.
func copyStopped(dataDir string, w io.Writer) (int64, error) {
	dataPath := filepath.Join(dataDir, dataFileName)
	if err := mustExist(dataPath); err != nil {
		return 0, err
	}
	d, err := bolt.Open(dataPath, bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrInUse) {
		return 0, fmt.Errorf("%s is held by a process that answers no operator socket at %s (a server whose data folder path is too long for a socket, or another program): stop it, then back up again", dataPath, filepath.Join(dataDir, adminSocketName))
	}
	if err != nil {
		return 0, err
	}
	defer d.Close()
	return d.Backup(w)
}

// RestoreOptions says what Restore installs where.
type RestoreOptions struct {
	DataDir string // the data folder to restore into
	From    string // a data copy written by Backup
	// KeyFile is the key that opens From; if empty, the data folder's own
	// key file, which must then exist unless From holds nothing.
	KeyFile string
	// Force replaces a store that holds data (or is damaged) and a key
	// file other than KeyFile.
	Force bool
}

// RestoreResult describes a restore that was done.
type RestoreResult struct {
	DataFile     string
	Items        int64
	KeyID        string
	KeyInstalled bool // KeyFile was copied into the data folder
	Replaced     bool // a store that held data was replaced
}

// Restore installs the backup opts.From (and the key opts.KeyFile) as the
// store of opts.DataDir. It refuses, with one line and nothing changed: a
// data folder a server runs on (even with Force); a folder whose store
// holds data, or whose key file is another key, without Force; and a
// backup that does not check or that the key does not open. The backup is
// copied into the data folder under a temporary name and verified there,
// exactly the bytes that are then renamed into place; the data file is
// replaced first, then the key file.
func Restore(ctx context.Context, opts RestoreOptions) (RestoreResult, error) {
	dataPath, keyPath := filepath.Join(opts.DataDir, dataFileName), filepath.Join(opts.DataDir, keyFileName)
	res := RestoreResult{DataFile: dataPath}
	if opts.From == "" {
		return res, errors.New("restore: no backup file")
	}
	if same(opts.From, dataPath) {
		return res, fmt.Errorf("restore: %s is the data file itself", opts.From)
	}
	if err := mustExist(opts.From); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	if serverRunning(ctx, opts.DataDir) {
		return res, fmt.Errorf("restore: the store in %s is %w: stop it first", opts.DataDir, ErrStoreInUse)
	}
	// The key to verify with, and whether it replaces the folder's.
	own, ownErr := readKey(keyPath)
	_, statErr := os.Lstat(keyPath)
	ownExists := statErr == nil
	if ownErr != nil && ownExists && opts.KeyFile == "" {
		return res, fmt.Errorf("restore: %w; give --key", ownErr)
	}
	defer clear(own)
	kek := own
	if opts.KeyFile != "" {
		k, err := readKey(opts.KeyFile)
		if err != nil {
			return res, fmt.Errorf("restore: --key: %w", err)
		}
		defer clear(k)
		kek = k
		res.KeyInstalled = !bytes.Equal(k, own)
	}

	// What the folder holds now. The old store stays open, holding its
	// lock, until it is replaced: no server starts on it meanwhile.
	var holds []string
	if _, err := os.Lstat(dataPath); err == nil {
		old, err := bolt.Open(dataPath, bolt.Options{Timeout: time.Second})
		switch {
		case errors.Is(err, bolt.ErrInUse):
			return res, fmt.Errorf("restore: %s is in use by another process: stop it first", dataPath)
		case errors.Is(err, bolt.ErrBadDataFile):
			holds = append(holds, fmt.Sprintf("a data file that does not open (%v)", err))
		case err != nil:
			return res, fmt.Errorf("restore: %w", err)
		default:
			defer old.Close()
			if st := old.Stats(); st.Items != 0 {
				holds = append(holds, fmt.Sprintf("a store of %d items", st.Items))
			}
		}
	}
	if ownExists && res.KeyInstalled {
		holds = append(holds, "a key file that is not the --key given")
	}
	if len(holds) > 0 && !opts.Force {
		return res, fmt.Errorf("restore: %s holds %s; nothing was changed; restore --force replaces what is there", opts.DataDir, joinAnd(holds))
	}
	res.Replaced = len(holds) > 0

	createdDir := false
	if _, err := os.Stat(opts.DataDir); errors.Is(err, fs.ErrNotExist) {
		createdDir = true
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	ok := false
	if createdDir {
		defer func() {
			if !ok {
				os.Remove(opts.DataDir)
			}
		}()
	}
	tmp, err := atomicfile.TempBeside(dataPath)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	defer os.Remove(tmp)
	if err := copyFile(opts.From, tmp); err != nil {
		return res, fmt.Errorf("restore: copying %s: %w", opts.From, err)
	}
	v, err := verifyCopy(ctx, tmp, kek)
	if err != nil {
		return res, fmt.Errorf("restore: %s is not a usable backup, so nothing was changed: %w", opts.From, err)
	}
	if v.items > 0 && kek == nil {
		return res, fmt.Errorf("restore: %s holds data, and there is no key to open it: give --key, the key file kept with this backup (mobius admin backup --with-key)", opts.From)
	}
	res.Items, res.KeyID = v.items, v.keyID
	if err := os.Rename(tmp, dataPath); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	if res.KeyInstalled {
		if err := writeNew(keyPath, kek, true); err != nil {
			return res, fmt.Errorf("restore: the data file is restored, but the key file is not (run the restore again): %w", err)
		}
	}
	if err := atomicfile.SyncDir(opts.DataDir); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	ok = true
	return res, nil
}

// verified is what verifyCopy found.
type verified struct {
	items      int64
	keyChecked bool
	keyID      string
}

// verifyCopy checks the data file at path as a server's start would, and
// more: bolt.Open's checks, the whole Check (bbolt's consistency check
// and every item's header), and, when kek is set and the store holds
// anything, that kek is the key the store is sealed under. It writes
// nothing to the file.
func verifyCopy(ctx context.Context, path string, kek []byte) (verified, error) {
	var v verified
	d, err := bolt.Open(path, bolt.Options{Timeout: time.Second})
	if err != nil {
		return v, err
	}
	defer d.Close()
	if err := d.Check(); err != nil {
		return v, err
	}
	st := d.Stats()
	if st.Items < 0 {
		return v, fmt.Errorf("%s: its items could not be read", path)
	}
	v.items = st.Items
	if kek == nil || v.items == 0 {
		return v, nil
	}
	w, err := local.New(kek)
	if err != nil {
		return v, err
	}
	v.keyID = w.KeyID()
	svc := secrets.NewService(d, w, secrets.Options{Logger: slog.New(slog.DiscardHandler)})
	// On a store that holds data, KeyCheckInit only verifies: it writes a
	// key check into an empty store only, and this one is not.
	if err := svc.CheckKey(ctx, secrets.KeyCheckInit); err != nil {
		return v, fmt.Errorf("the key (%s) does not open it: %s", w.KeyID(), secrets.ErrorMessage(err))
	}
	v.keyChecked = true
	return v, nil
}

// readKey reads a 32-byte key file: fs.ErrNotExist in the chain if there
// is none.
func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if _, err := local.New(b); err != nil {
		clear(b)
		return nil, fmt.Errorf("key file %s: want 32 bytes, have %d", path, len(b))
	}
	return b, nil
}

// refuseExisting refuses an existing dst unless force (and then only a
// regular file).
func refuseExisting(dst string, force bool) error {
	fi, err := os.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s exists and is not a regular file", dst)
	}
	if !force {
		return fmt.Errorf("%s exists; nothing was written; --force replaces it", dst)
	}
	return nil
}

func mustExist(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s does not exist", path)
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return nil
}

// publish gives the finished file tmp the name dst: replacing a file
// there only if force, else failing on one that appeared meanwhile.
func publish(tmp, dst string, force bool) error {
	return appeared(dst, atomicfile.Publish(tmp, dst, force))
}

// writeNew writes b to dst (mode 0600) through a synced temporary file,
// replacing a file there only if force.
func writeNew(dst string, b []byte, force bool) error {
	return appeared(dst, atomicfile.Write(dst, b, force))
}

// appeared says what it means when dst was there already.
func appeared(dst string, err error) error {
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s appeared meanwhile; nothing was written; --force replaces it", dst)
	}
	return err
}

// copyFile copies src into the existing file dst and syncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// same reports whether a and b name the same file (or the same path, for
// files that do not exist).
func same(a, b string) bool {
	fa, erra := os.Stat(a)
	fb, errb := os.Stat(b)
	if erra == nil && errb == nil {
		return os.SameFile(fa, fb)
	}
	aa, _ := filepath.Abs(a)
	ab, _ := filepath.Abs(b)
	return aa == ab
}

func joinAnd(parts []string) string {
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	s := parts[0]
	for _, p := range parts[1 : len(parts)-1] {
		s += ", " + p
	}
	return s + " and " + parts[len(parts)-1]
}
