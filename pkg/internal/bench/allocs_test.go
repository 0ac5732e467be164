package bench_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/internal/bench"
)

// getSecretAllocs bounds the allocations of one warm GET of a secret
// through the handler on the embedded store: 36 when it was set (58
// before), 46 once a secret carried labels, dates, aliases and its
// rotation fields (each decoded and rendered), plus some slack. Allocation counts are deterministic, so a
// change that makes this test fail added allocations to the hottest path:
// remove them, or raise the budget in the same commit and say why.
const getSecretAllocs = 50

// The warm get-secret path (API key cached, handler, service, bolt read,
// JSON answer) stays within its allocation budget. The request is built
// once, so that only the handler's allocations count.
func TestGetSecretAllocs(t *testing.T) {
	f := boltFixture(t)
	if err := bench.Seed(context.Background(), f.svc, bench.Project, "s", 1, 1); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", base+"/"+bench.Name("s", 0), nil)
	r.Header.Set("Authorization", "Bearer "+f.apiKey)
	w := newSink()
	get := func() {
		clear(w.header)
		w.status, w.n = 0, 0
		f.h.ServeHTTP(w, r)
		if w.status != http.StatusOK || w.n == 0 {
			t.Fatalf("GET: status %d, %d bytes", w.status, w.n)
		}
	}
	get() // warm the API key cache
	if n := testing.AllocsPerRun(100, get); n > getSecretAllocs {
		t.Errorf("a warm GET of a secret allocates %.0f times, over the budget of %d", n, getSecretAllocs)
	} else {
		t.Logf("a warm GET of a secret allocates %.0f times (budget %d)", n, getSecretAllocs)
	}
}
