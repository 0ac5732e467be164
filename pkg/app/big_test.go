//go:build bigstore

package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// TestBigStoreAdmin measures the operator's commands on an embedded store
// of 100,000 secrets made through the service (one version of ~100-byte
// values each, plus the API key and service records): a server's start
// (New: Open's checks, bbolt's tx.Check, the key check), bolt.Open alone,
// Check (what `mobius admin check` runs), a backup of the running server
// through its socket and of the stopped store, a restore, and a compact.
// It takes minutes, so it is built only with the tag bigstore:
//
//	go test -tags bigstore -run TestBigStoreAdmin -v -timeout 30m ./pkg/app
func TestBigStoreAdmin(t *testing.T) {
	const n = 100_000
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	a := openApp(t, dir)
	began := time.Now()
	var wg sync.WaitGroup
	var failed sync.Once
	work := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				in := secrets.CreateSecretInput{Name: fmt.Sprintf("s%06d", i), Values: map[string]string{"password": strings.Repeat("p", 80), "user": fmt.Sprintf("user-%06d", i)}}
				if _, err := a.Service.CreateSecret(ctx, fmt.Sprintf("p%02d", i%20), in); err != nil {
					failed.Do(func() { t.Error(err) })
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("fill: %d secrets in %s", n, time.Since(began).Round(time.Millisecond))
	serveAdmin(t, a)

	timed := func(what string, f func() error) {
		t.Helper()
		began := time.Now()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%-48s %s", what+":", time.Since(began).Round(time.Millisecond))
	}
	out := t.TempDir()
	var res BackupResult
	timed("backup of the running server (copy + verify)", func() error {
		var err error
		res, err = Backup(ctx, BackupOptions{DataDir: dir, To: filepath.Join(out, "online.db"), WithKey: filepath.Join(out, "b.key")})
		return err
	})
	t.Logf("backup: %d bytes, %d items", res.Bytes, res.Items)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	dataPath := filepath.Join(dir, dataFileName)
	fi, _ := os.Stat(dataPath)
	t.Logf("data file: %d bytes (%.0f a secret)", fi.Size(), float64(fi.Size())/n)

	timed("bolt.Open (its checks, tx.Check among them)", func() error {
		d, err := bolt.Open(dataPath, bolt.Options{})
		if err != nil {
			return err
		}
		return d.Close()
	})
	timed("a server's start (app.New)", func() error {
		b, err := New(ctx, Config{Store: StoreBolt, DataDir: dir}, quietLogger())
		if err != nil {
			return err
		}
		return b.Close()
	})
	var d *bolt.Driver
	timed("bolt.Open again", func() error {
		var err error
		d, err = bolt.Open(dataPath, bolt.Options{})
		return err
	})
	timed("Driver.Check (tx.Check and every item)", d.Check)
	d.Close()
	var rep CheckReport
	timed("mobius admin check (app.Check)", func() error {
		var err error
		rep, err = Check(ctx, dir)
		if err == nil && len(rep.Problems) > 0 {
			err = fmt.Errorf("problems: %q", rep.Problems)
		}
		return err
	})
	timed("backup of the stopped store (copy + verify)", func() error {
		_, err := Backup(ctx, BackupOptions{DataDir: dir, To: filepath.Join(out, "offline.db")})
		return err
	})
	timed("restore (copy + verify + rename)", func() error {
		_, err := Restore(ctx, RestoreOptions{DataDir: filepath.Join(t.TempDir(), "restored"), From: filepath.Join(out, "online.db"), KeyFile: filepath.Join(out, "b.key")})
		return err
	})
	var cr CompactResult
	timed("compact (check + copy + check + rename)", func() error {
		var err error
		cr, err = Compact(ctx, dir)
		return err
	})
	t.Logf("compact: %d → %d bytes (%.0f → %.0f a secret), %d items", cr.Before, cr.After, float64(cr.Before)/n, float64(cr.After)/n, cr.Items)
}
