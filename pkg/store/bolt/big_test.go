//go:build bigstore

package bolt_test

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/store/bolt"
	bbolt "go.etcd.io/bbolt"
)

// TestBigStore measures a store of 100,000 secrets (about 450,000 items of
// 100-300 bytes): Open's checks, Check (bbolt's tx.Check among them),
// Backup, Compact and bytes per item. It takes minutes, so it
// is built only with the tag bigstore:
//
//	go test -tags bigstore -run TestBigStore -v ./pkg/store/bolt
func TestBigStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mobius.db")
	d := mustOpenAt(t, path)
	const secrets = 100_000
	began := time.Now()
	fill(t, d, secrets, 32, 20, func(r *rand.Rand) int { return 100 + r.IntN(201) })
	t.Logf("fill: %s", time.Since(began))
	st := d.Stats()
	used := (st.Pages - int64(st.FreePages)) * int64(st.PageSize)
	t.Logf("%d items, %d value bytes (%.0f a value): %.0f B an item, %.0f B a secret in use; file %d B",
		st.Items, st.ValueBytes, float64(st.ValueBytes)/float64(st.Items), float64(used)/float64(st.Items), float64(used)/secrets, st.FileBytes)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	timed := func(what string, f func() error) {
		t.Helper()
		began := time.Now()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %s", what, time.Since(began))
	}
	timed("the structural walk alone (inspect)", func() error { return bolt.Inspect(path) })
	timed("bbolt tx.Check alone", func() error {
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
		if err != nil {
			return err
		}
		defer db.Close()
		return db.View(func(tx *bbolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		})
	})
	timed("Open", func() error {
		var err error
		d, err = bolt.Open(path, bolt.Options{})
		return err
	})
	defer d.Close()
	timed("Check", d.Check)
	var n int64
	timed("Backup to io.Discard", func() error { var err error; n, err = d.Backup(io.Discard); return err })
	t.Logf("backup: %d B", n)
	timed("Compact", func() error { return d.Compact(filepath.Join(dir, "compact.db")) })
	if fi, err := os.Stat(filepath.Join(dir, "compact.db")); err == nil {
		t.Logf("compacted: %d B, %.0f B an item", fi.Size(), float64(fi.Size())/float64(st.Items))
	}
}
