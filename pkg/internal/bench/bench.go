// Package bench holds the benchmarks of Mobius Secrets (bench_test.go) and
// the fixtures they share with the load generator (cmd/mobius-load): a
// local server (the real handler over a Service on the embedded store with
// a local key wrapper) and a concurrent seeder.
//
// Run the benchmarks with `make bench`; see docs/PERFORMANCE.md.
package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/mobius-secrets/mobius/pkg/httpapi"
	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// Project is the project every fixture writes to.
const Project = "bench"

// Local is the local server's stack on one bolt file.
type Local struct {
	Store   *bolt.Store
	Service *secrets.Service
	Handler http.Handler
	// APIKey holds every scope of Project.
	APIKey string
}

// Quiet is a logger that drops everything, so that logging does not
// dominate what is measured.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 1}))

// OpenLocal opens (or creates) the bolt file at path and builds the
// service and the handler over it, with a fresh key-encryption key and a
// fresh API key.
func OpenLocal(ctx context.Context, path string, opts bolt.Options) (*Local, error) {
	st, err := bolt.Open(path, opts)
	if err != nil {
		return nil, err
	}
	kek := make([]byte, 32)
	rand.Read(kek)
	w, err := local.New(kek)
	if err != nil {
		st.Close()
		return nil, err
	}
	svc := secrets.NewService(st, w, secrets.Options{Logger: Quiet})
	_, key, err := svc.CreateAPIKey(ctx, Project, "bench", secrets.AllScopes)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Local{
		Store:   st,
		Service: svc,
		Handler: httpapi.NewHandler(svc, httpapi.Options{Logger: Quiet, PageTokenKey: []byte("bench page token key")}),
		APIKey:  key,
	}, nil
}

// Close closes the store.
func (l *Local) Close() error { return l.Store.Close() }

// Name is the name of the i-th seeded secret; names sort in seeding order.
func Name(prefix string, i int) string { return fmt.Sprintf("%s-%07d", prefix, i) }

// Values is a small values object, as a typical secret holds.
func Values(i int) map[string]string {
	return map[string]string{"user": "app", "password": fmt.Sprintf("pw-%d-0123456789abcdef", i)}
}

// Seed creates secrets Name(prefix, 0) … Name(prefix, n-1) in project
// through svc, from workers goroutines, so that the embedded store's group
// commit shares one fsync between concurrent writes.
func Seed(ctx context.Context, svc *secrets.Service, project, prefix string, n, workers int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if _, err := svc.CreateSecret(ctx, project, secrets.CreateSecretInput{Name: Name(prefix, i), Values: Values(i)}); err != nil {
					errs <- fmt.Errorf("seeding %s: %w", Name(prefix, i), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// Rotate adds n versions to the secret ref, one after the other.
func Rotate(ctx context.Context, svc *secrets.Service, project, ref string, n int) error {
	for i := range n {
		if _, err := svc.UpdateSecret(ctx, project, ref, secrets.UpdateSecretInput{Values: Values(i)}); err != nil {
			return fmt.Errorf("rotating %s: %w", ref, err)
		}
	}
	return nil
}
