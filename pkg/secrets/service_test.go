package secrets_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/mobius-secrets/mobius/internal/testenv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// Concurrent reveals through a data-key cache too small for them evict one
// another's keys all the time; every reveal still decrypts (an evicted key
// is zeroed, which must not reach a reveal still using it).
func TestConcurrentRevealsWithASmallKeyCache(t *testing.T) {
	svc, _ := boltService(t, secrets.Options{DataKeyCacheSize: 2})
	ctx := context.Background()
	const n = 8
	for i := range n {
		if _, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: fmt.Sprintf("s%d", i), Values: map[string]string{"k": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	const goroutines, each = 16, 1000
	errs := make(chan error, goroutines*each)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for j := range each {
				name := fmt.Sprintf("s%d", (g+j)%n)
				got, err := svc.Reveal(ctx, "acme", []string{name}, nil)
				if err == nil && got[name].Values["k"] != name[1:] {
					err = fmt.Errorf("%s revealed %q", name, got[name].Values["k"])
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if len(errs) > 0 {
		t.Fatalf("%d of %d reveals failed on untampered data; first: %v", len(errs), goroutines*each, <-errs)
	}
}

// boltService is a Service with opts on a new embedded store under the
// test's folder and a fresh local key, logging nowhere; the store is
// closed when the test ends.
func boltService(t *testing.T, opts secrets.Options) (*secrets.Service, *bolt.Driver) {
	t.Helper()
	st := testenv.Bolt(t)
	w := testenv.LocalKeys(t)
	opts.Logger = slog.New(slog.DiscardHandler)
	return secrets.NewService(st, w, opts), st
}
