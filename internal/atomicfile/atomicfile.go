// Package atomicfile writes files that are whole or absent: each is
// written under a temporary name beside its place, synced, then linked or
// renamed into place, and the folder synced. The data file, its backups
// and compacted copies, key copies and the CLI's configuration are all
// written this way.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// TempBeside makes a new, empty file (mode 0600) in path's folder, making
// the folder (0700) if it is missing, and returns its name. The caller
// removes it once it is published or abandoned.
func TempBeside(path string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// Publish gives the finished file tmp the name path and syncs the folder.
// With replace it takes the place of any file there; without, a file that
// is there already is kept and the error wraps fs.ErrExist.
func Publish(tmp, path string, replace bool) error {
	if replace {
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
		return SyncDir(filepath.Dir(path))
	}
	err := os.Link(tmp, path)
	if errors.Is(err, fs.ErrExist) {
		return err
	}
	if err != nil {
		// A file system without hard links: rename, which would replace a
		// file that appeared since, so look first.
		if _, serr := os.Lstat(path); serr == nil {
			return &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return SyncDir(filepath.Dir(path))
}

// Write writes b to path (mode 0600) through a synced temporary file; see
// Publish for replace.
func Write(path string, b []byte, replace bool) error {
	tmp, err := TempBeside(path)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return Publish(tmp, path, replace)
}

// SyncDir syncs the folder dir, so that names made or changed in it last.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
