package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/httpapi"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/internal/bench"
	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/resolve"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

var largeDir string // the temporary folder of the large store, if seeded

func TestMain(m *testing.M) {
	code := m.Run()
	if largeDir != "" {
		os.RemoveAll(largeDir)
	}
	os.Exit(code)
}

// fixture is one stack under benchmark: a handler over a service.
type fixture struct {
	h      http.Handler
	svc    *secrets.Service
	apiKey string
}

func boltFixture(tb testing.TB) *fixture {
	tb.Helper()
	l, err := bench.OpenLocal(context.Background(), filepath.Join(tb.TempDir(), "mobius.db"), bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return &fixture{h: l.Handler, svc: l.Service, apiKey: l.APIKey}
}

// dynamoFixture is the DynamoDB store on an in-process minidyn, with the
// local key wrapper so that only the store's cost differs from bolt's.
func dynamoFixture(tb testing.TB) *fixture {
	tb.Helper()
	ctx := context.Background()
	client := awstest.NewDynamoClient(awstest.StartMinidyn(tb))
	// minidyn supports no TTL settings: create the table from the schema alone.
	if _, err := client.CreateTable(ctx, dynamo.TableSchema("bench")); err != nil {
		tb.Fatal(err)
	}
	w, err := local.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	svc := secrets.NewService(dynamo.New(client, "bench"), w, secrets.Options{Logger: bench.Quiet})
	_, key, err := svc.CreateAPIKey(ctx, bench.Project, "bench", secrets.AllScopes)
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{h: httpapi.NewHandler(svc, httpapi.Options{Logger: bench.Quiet}), svc: svc, apiKey: key}
}

// sink is a ResponseWriter that keeps the status and drops the body, so
// that the benchmarks measure the handler and not a recorder.
type sink struct {
	header http.Header
	status int
	n      int
}

func (s *sink) Header() http.Header { return s.header }
func (s *sink) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}
func (s *sink) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	s.n += len(p)
	return len(p), nil
}

// do serves one request and fails unless it answers want.
func (f *fixture) do(tb testing.TB, w *sink, method, path string, body []byte, want int) {
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(method, path, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	r.Header.Set("Authorization", "Bearer "+f.apiKey)
	clear(w.header)
	w.status, w.n = 0, 0
	f.h.ServeHTTP(w, r)
	if w.status != want {
		tb.Fatalf("%s %s: status %d, want %d", method, path, w.status, want)
	}
}

func newSink() *sink { return &sink{header: http.Header{}} }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

const base = "/v1/projects/" + bench.Project + "/secrets"

// createSeq numbers the secrets the create benchmark makes.
var createSeq atomic.Int64

// benchAPI runs every operation of the API against f, one request per
// iteration, with 100 secrets in the store.
func benchAPI(b *testing.B, f *fixture) {
	ctx := context.Background()
	if err := bench.Seed(ctx, f.svc, bench.Project, "s", 100, 16); err != nil {
		b.Fatal(err)
	}
	target := bench.Name("s", 42)
	b.Run("op=create", func(b *testing.B) {
		w := newSink()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			// Names unique across -count runs on the same store.
			f.do(b, w, "POST", base, mustJSON(api.CreateSecretRequest{Name: fmt.Sprintf("c-%d", createSeq.Add(1)), Values: bench.Values(i)}), http.StatusCreated)
		}
	})
	b.Run("op=rotate", func(b *testing.B) {
		w := newSink()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			f.do(b, w, "PATCH", base+"/"+target, mustJSON(api.UpdateSecretRequest{Values: bench.Values(i)}), http.StatusOK)
		}
	})
	for _, c := range []struct{ name, path string }{
		{"get", base + "/" + target},
		{"get-version", base + "/" + target + "/versions/current"},
		{"list", base + "?limit=50"},
	} {
		b.Run("op="+c.name, func(b *testing.B) {
			w := newSink()
			b.ReportAllocs()
			for b.Loop() {
				f.do(b, w, "GET", c.path, nil, http.StatusOK)
			}
		})
	}
	b.Run("op=resolve", func(b *testing.B) {
		// Three references to two secrets.
		r := resolve.New(f.svc, bench.Quiet)
		by, err := f.svc.Authenticate(ctx, f.apiKey)
		if err != nil {
			b.Fatal(err)
		}
		_, grant, err := f.svc.MintGrant(ctx, bench.Project, by, secrets.MintGrantInput{Secrets: []string{target, bench.Name("s", 7)}})
		if err != nil {
			b.Fatal(err)
		}
		ev := resolve.Event{Grant: grant, Input: json.RawMessage(fmt.Sprintf(
			`{"a":"${secret:%[1]s.user}","b":"${secret:%[1]s.password}","c":"${secret:%[2]s.password}"}`, target, bench.Name("s", 7)))}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Resolve(ctx, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAPI measures each operation through the real handler (and the
// resolver) on each store.
func BenchmarkAPI(b *testing.B) {
	b.Run("store=bolt", func(b *testing.B) { benchAPI(b, boltFixture(b)) })
	b.Run("store=dynamo", func(b *testing.B) { benchAPI(b, dynamoFixture(b)) })
}

// BenchmarkRotateParallel rotates distinct secrets from c goroutines at
// once: every write is fsynced, and the embedded store's group commit
// lets concurrent writes share one. ns/op is wall time per rotation, so
// the throughput ratio is ns/op(c=1) / ns/op(c=32).
func BenchmarkRotateParallel(b *testing.B) {
	for _, c := range []int{1, 32} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			f := boltFixture(b)
			if err := bench.Seed(context.Background(), f.svc, bench.Project, "p", c, c); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			body := mustJSON(api.UpdateSecretRequest{Values: bench.Values(1)})
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := (b.N + c - 1) / c
			for range c {
				wg.Add(1)
				go func() {
					defer wg.Done()
					w := newSink()
					path := base + "/" + bench.Name("p", int(next.Add(1)-1))
					for range per {
						f.do(b, w, "PATCH", path, body, http.StatusOK)
					}
				}()
			}
			wg.Wait()
		})
	}
}

// The large store: largeSecrets secrets, and one of them with
// largeVersions versions, seeded once per process.
const (
	largeSecrets  = 100_000
	largeVersions = 10_000
)

var (
	largeOnce sync.Once
	large     *bench.Local
	largeErr  error
)

func largeStore(b *testing.B) *bench.Local {
	largeOnce.Do(func() {
		start := time.Now()
		ctx := context.Background()
		largeDir, largeErr = os.MkdirTemp("", "mobius-bench-")
		if largeErr != nil {
			return
		}
		large, largeErr = bench.OpenLocal(ctx, filepath.Join(largeDir, "mobius.db"), bolt.Options{})
		if largeErr != nil {
			return
		}
		// The versions of the deep secret are a chain of conditional
		// writes; they run alongside the bulk creates and share commits.
		if largeErr = bench.Seed(ctx, large.Service, bench.Project, "deep", 1, 1); largeErr != nil {
			return
		}
		done := make(chan error, 1)
		go func() {
			done <- bench.Rotate(ctx, large.Service, bench.Project, bench.Name("deep", 0), largeVersions-1)
		}()
		if largeErr = bench.Seed(ctx, large.Service, bench.Project, "s", largeSecrets-1, 64); largeErr != nil {
			return
		}
		largeErr = <-done
		fmt.Fprintf(os.Stderr, "seeded %d secrets and %d versions in %v\n", largeSecrets, largeVersions, time.Since(start).Round(time.Millisecond))
	})
	if largeErr != nil {
		b.Fatal(largeErr)
	}
	return large
}

func smallStore(b *testing.B) *bench.Local {
	l, err := bench.OpenLocal(context.Background(), filepath.Join(b.TempDir(), "mobius.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	if err := bench.Seed(context.Background(), l.Service, bench.Project, "deep", 1, 1); err != nil {
		b.Fatal(err)
	}
	if err := bench.Seed(context.Background(), l.Service, bench.Project, "s", 9, 9); err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkSize runs the same operations on a store of 10 secrets and on
// one of 100,000 secrets where the secret read and rotated has 10,000
// versions: compare with `benchstat -col /size`.
func BenchmarkSize(b *testing.B) {
	stores := []struct {
		name string
		open func(*testing.B) *bench.Local
	}{{"size=10", smallStore}, {"size=100000", largeStore}}
	deep := bench.Name("deep", 0)
	ops := []struct {
		name string
		run  func(b *testing.B, l *bench.Local, f *fixture, w *sink, i int)
	}{
		{"list", func(b *testing.B, l *bench.Local, f *fixture, w *sink, i int) {
			// A first page of 10 on both sizes: the same work, so any
			// difference is the store's size.
			f.do(b, w, "GET", base+"?limit=10", nil, http.StatusOK)
		}},
		{"get", func(b *testing.B, l *bench.Local, f *fixture, w *sink, i int) {
			f.do(b, w, "GET", base+"/"+deep, nil, http.StatusOK)
		}},
		{"get-version", func(b *testing.B, l *bench.Local, f *fixture, w *sink, i int) {
			f.do(b, w, "GET", base+"/"+deep+"/versions/current", nil, http.StatusOK)
		}},
		{"rotate", func(b *testing.B, l *bench.Local, f *fixture, w *sink, i int) {
			f.do(b, w, "PATCH", base+"/"+deep, mustJSON(api.UpdateSecretRequest{Values: bench.Values(i)}), http.StatusOK)
		}},
		{"reveal", func(b *testing.B, l *bench.Local, f *fixture, w *sink, i int) {
			got, err := l.Service.Reveal(context.Background(), bench.Project, []string{deep, bench.Name("s", 5)}, nil)
			if err != nil || len(got) != 2 {
				b.Fatalf("reveal: %d, %v", len(got), err)
			}
		}},
	}
	for _, op := range ops {
		b.Run("op="+op.name, func(b *testing.B) {
			for _, s := range stores {
				b.Run(s.name, func(b *testing.B) {
					l := s.open(b)
					f := &fixture{h: l.Handler, svc: l.Service, apiKey: l.APIKey}
					w := newSink()
					b.ReportAllocs()
					for i := 0; b.Loop(); i++ {
						op.run(b, l, f, w, i)
					}
				})
			}
		})
	}
}

// Every request the benchmarks send answers as they expect, on both
// stores, so that a broken benchmark shows up in `go test`.
func TestBenchmarkRequests(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *fixture{"bolt": boltFixture, "dynamo": dynamoFixture} {
		t.Run(name, func(t *testing.T) {
			f := open(t)
			if err := bench.Seed(context.Background(), f.svc, bench.Project, "s", 3, 1); err != nil {
				t.Fatal(err)
			}
			w, target := newSink(), bench.Name("s", 1)
			f.do(t, w, "POST", base, mustJSON(api.CreateSecretRequest{Name: "c", Values: bench.Values(1)}), http.StatusCreated)
			f.do(t, w, "PATCH", base+"/"+target, mustJSON(api.UpdateSecretRequest{Values: bench.Values(2)}), http.StatusOK)
			f.do(t, w, "GET", base+"/"+target, nil, http.StatusOK)
			f.do(t, w, "GET", base+"/"+target+"/versions/current", nil, http.StatusOK)
			f.do(t, w, "GET", base+"?limit=50", nil, http.StatusOK)
			if w.n == 0 {
				t.Error("the list answered an empty body")
			}
		})
	}
}
