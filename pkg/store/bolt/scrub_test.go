package bolt_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
	bbolt "go.etcd.io/bbolt"
)

// ciphertexts returns the sealed envelope of every version of secret ref
// that still has one, by version number.
func ciphertexts(t *testing.T, s *bolt.Store, svc *secrets.Service, ref string) map[int][]byte {
	t.Helper()
	ctx := context.Background()
	sec, err := svc.GetSecret(ctx, "acme", ref)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]byte{}
	for n := 1; n <= sec.LatestVersion; n++ {
		v, err := s.GetVersion(ctx, "acme", sec.ID, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Ciphertext) > 0 {
			out[n] = bytes.Clone(v.Ciphertext)
		}
	}
	return out
}

func inFile(t *testing.T, path string, b []byte) bool {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(raw, b)
}

// checkFile runs bbolt's own consistency check on the closed data file.
func checkFile(t *testing.T, path string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("bbolt check: %v", err)
	}
}

// Destroying a version or deleting a secret removes its ciphertext (and the
// data key wrapped in it) from the data file itself, free pages included,
// by the time the call returns.
func TestRemovedCiphertextLeavesTheFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mobius.db")
	s := mustOpenAt(t, path)
	svc := newService(t, s)
	create := func(name string) {
		if _, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: name, Values: map[string]string{"k": name + "-1"}}); err != nil {
			t.Fatal(err)
		}
		for i := 2; i <= 3; i++ {
			if _, err := svc.UpdateSecret(ctx, "acme", name, secrets.UpdateSecretInput{Values: map[string]string{"k": fmt.Sprint(name, "-", i)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	create("kept")
	create("destroyed-in")
	create("deleted")
	kept := ciphertexts(t, s, svc, "kept")
	destroyedIn := ciphertexts(t, s, svc, "destroyed-in")
	deleted := ciphertexts(t, s, svc, "deleted")
	if len(kept) != 3 || len(destroyedIn) != 3 || len(deleted) != 3 {
		t.Fatalf("ciphertexts: %d, %d, %d versions; want 3 each", len(kept), len(destroyedIn), len(deleted))
	}
	for n, ct := range destroyedIn {
		if !inFile(t, path, ct) {
			t.Fatalf("version %d's ciphertext is not in the file before destroy: the test cannot see it", n)
		}
	}

	for _, n := range []string{"1", "2"} {
		if _, _, err := svc.ChangeVersionState(ctx, "acme", "destroyed-in", n, secrets.ActionDestroy, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []int{1, 2} {
		if inFile(t, path, destroyedIn[n]) {
			t.Errorf("version %d was destroyed, but its ciphertext is still in the data file", n)
		}
	}
	if !inFile(t, path, destroyedIn[3]) {
		t.Error("version 3 was not destroyed, but its ciphertext left the file")
	}
	if err := svc.DeleteSecret(ctx, "acme", "deleted", nil); err != nil {
		t.Fatal(err)
	}
	for n, ct := range deleted {
		if inFile(t, path, ct) {
			t.Errorf("secret deleted, but version %d's ciphertext is still in the data file", n)
		}
	}
	// What stays is intact and still decrypts.
	for n, ct := range kept {
		if !inFile(t, path, ct) {
			t.Errorf("kept version %d's ciphertext is not in the file", n)
		}
	}
	rev, err := svc.Reveal(ctx, "acme", []string{"kept", "destroyed-in"})
	if err != nil || rev["kept"].Values["k"] != "kept-3" || rev["destroyed-in"].Values["k"] != "destroyed-in-3" {
		t.Fatalf("Reveal after the scrub: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path)
}

// Scrubs run while other goroutines read and write: nothing they read is
// damaged, every destroyed ciphertext is gone, and the file stays
// consistent.
func TestScrubUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mobius.db")
	s := mustOpenAt(t, path)
	svc := newService(t, s)
	const n = 16
	for i := range n {
		name := fmt.Sprint("s", i)
		if _, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: name, Values: map[string]string{"k": "v1"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.UpdateSecret(ctx, "acme", name, secrets.UpdateSecretInput{Values: map[string]string{"k": "v2"}}); err != nil {
			t.Fatal(err)
		}
	}
	var gone [][]byte
	for i := range n {
		gone = append(gone, ciphertexts(t, s, svc, fmt.Sprint("s", i))[1])
	}

	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i := range n {
		name := fmt.Sprint("s", i)
		wg.Add(3)
		go func() { // destroy version 1
			defer wg.Done()
			if _, _, err := svc.ChangeVersionState(ctx, "acme", name, "1", secrets.ActionDestroy, nil); err != nil {
				errs <- fmt.Errorf("destroy %s: %w", name, err)
			}
		}()
		go func() { // read the current version, many times
			defer wg.Done()
			for range 20 {
				rev, err := svc.Reveal(ctx, "acme", []string{name})
				if err != nil || rev[name].Values["k"] != "v2" {
					errs <- fmt.Errorf("reveal %s during scrubs: %v", name, err)
					return
				}
			}
		}()
		go func() { // write elsewhere
			defer wg.Done()
			if _, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: name + "-new", Values: map[string]string{"k": "x"}}); err != nil {
				errs <- fmt.Errorf("create during scrubs: %w", err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, ct := range gone {
		if inFile(t, path, ct) {
			t.Errorf("s%d version 1 destroyed, but its ciphertext is in the file", i)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path)
	// It reopens with every secret in place.
	list, err := mustOpenAt(t, path).ListSecrets(ctx, "acme", secrets.ListQuery{Limit: 4 * n})
	if err != nil || len(list) != 2*n {
		t.Fatalf("after reopening: %d secrets, %v; want %d", len(list), err, 2*n)
	}
}
