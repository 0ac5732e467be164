// Package bench holds the benchmarks of Mobius Secrets (bench_test.go) and
// the fixtures they share with the load generator (mobius-load): a local
// server (the real handler over a Service on the embedded store with a
// local key wrapper, and the resolve function's Lambda Invoke API beside
// it, as `mobius serve` has them) and a concurrent seeder.
//
// Run the benchmarks with `make bench`; see docs/PERFORMANCE.md.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mobius-secrets/mobius/pkg/httpapi"
	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/lambdainvoke"
	"github.com/mobius-secrets/mobius/pkg/resolve"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// Project is the project every fixture writes to.
const Project = "bench"

// Local is the local server's stack on one bolt file.
type Local struct {
	Store   *bolt.Driver
	Service *secrets.Service
	// Handler serves the HTTP API and, under lambdainvoke.PathPrefix, the
	// resolve function's Invoke API (function name ResolveFunction).
	Handler http.Handler
	// APIKey holds every scope of Project.
	APIKey string
}

// ResolveFunction is the function name the Local server's Invoke API
// answers to, as `mobius serve` does.
const ResolveFunction = "mobius-resolve"

// Quiet is a logger that drops everything, so that logging does not
// dominate what is measured.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 1}))

// LocalOptions tune OpenLocalWith.
type LocalOptions struct {
	Bolt bolt.Options
	// Logger receives the access log and the service's log; Quiet if nil.
	Logger *slog.Logger
}

// OpenLocal opens (or creates) the bolt file at path and builds the
// service and the handler over it, with a fresh key-encryption key and a
// fresh API key, logging nothing.
func OpenLocal(ctx context.Context, path string, opts bolt.Options) (*Local, error) {
	return OpenLocalWith(ctx, path, LocalOptions{Bolt: opts})
}

// OpenLocalWith is OpenLocal with a logger of its own.
func OpenLocalWith(ctx context.Context, path string, opts LocalOptions) (*Local, error) {
	logger := opts.Logger
	if logger == nil {
		logger = Quiet
	}
	st, err := bolt.Open(path, opts.Bolt)
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
	svc := secrets.NewService(st, w, secrets.Options{Logger: logger})
	_, key, err := svc.CreateAPIKey(ctx, Project, "bench", secrets.AllScopes)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Local{
		Store:   st,
		Service: svc,
		Handler: withInvoke(httpapi.NewHandler(svc, httpapi.Options{Logger: logger, PageTokenKey: []byte("bench page token key")}), svc, logger),
		APIKey:  key,
	}, nil
}

// withInvoke serves the resolve function's Invoke API beside api, wired as
// the local server wires it.
func withInvoke(api http.Handler, svc *secrets.Service, logger *slog.Logger) http.Handler {
	r := resolve.New(svc, slog.New(lambdainvoke.TeeHandler(logger.Handler())))
	inv := lambdainvoke.NewHandler(func(ctx context.Context, payload []byte) ([]byte, error) {
		res, err := r.Invoke(ctx, payload)
		if err != nil {
			return nil, err
		}
		return json.Marshal(res)
	}, func(err error) (string, string) {
		if e, ok := err.(*resolve.Error); ok {
			return e.Type, e.Message
		}
		return resolve.TypeInternal, "internal error"
	}, lambdainvoke.Options{Names: []string{ResolveFunction}, Timeout: 15 * time.Second, Logger: logger})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, lambdainvoke.PathPrefix) {
			inv.ServeHTTP(w, req)
			return
		}
		api.ServeHTTP(w, req)
	})
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

// recorder is a kv.Driver that keeps the operations of every commit.
type recorder struct {
	kv.Driver
	mu      sync.Mutex
	commits [][]kv.Op
}

func (r *recorder) Commit(ctx context.Context, ops ...kv.Op) error {
	err := r.Driver.Commit(ctx, ops...)
	if err == nil {
		r.mu.Lock()
		r.commits = append(r.commits, slices.Clone(ops))
		r.mu.Unlock()
	}
	return err
}

// RotationOps returns what the service commits for one rotation of a
// secret (an update with new values, through UpdateSecret): the operations
// of each commit, on a store of its own in dir. A baseline that writes the
// same keys and values in one transaction writes the same bytes as a
// rotation.
func RotationOps(ctx context.Context, dir string, values map[string]string) ([][]kv.Op, error) {
	st, err := bolt.Open(filepath.Join(dir, "rotation.db"), bolt.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	kek := make([]byte, 32)
	rand.Read(kek)
	w, err := local.New(kek)
	if err != nil {
		return nil, err
	}
	rec := &recorder{Driver: st}
	svc := secrets.NewService(rec, w, secrets.Options{Logger: Quiet})
	if _, err := svc.CreateSecret(ctx, Project, secrets.CreateSecretInput{Name: "rotated", Values: values}); err != nil {
		return nil, err
	}
	// The first rotation also writes what a first update does once
	// (service keys, caches); the second is the steady state.
	for range 2 {
		rec.mu.Lock()
		rec.commits = nil
		rec.mu.Unlock()
		if _, err := svc.UpdateSecret(ctx, Project, "rotated", secrets.UpdateSecretInput{Values: values}); err != nil {
			return nil, err
		}
	}
	return rec.commits, nil
}
