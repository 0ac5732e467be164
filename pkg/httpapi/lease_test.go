package httpapi

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/internal/testenv"
	"github.com/mobius-secrets/mobius/internal/testsupport"
	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// A claim its request never settled (the process died with the request in
// flight) holds its key for the lease only: a retry meanwhile is 409 with
// Retry-After giving the seconds left, and the same retry after the lease
// runs once.
func TestIdempotencyLeaseAfterACrash(t *testing.T) {
	st := testenv.Bolt(t)
	w := testenv.LocalKeys(t)
	clk := testsupport.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	logger := newJSONLogger(io.Discard)
	svc := secrets.NewService(st, w, secrets.Options{Logger: logger, Now: clk.Now})
	const lease = 10 * time.Second
	h := NewHandler(svc, Options{Logger: logger, PageTokenKey: []byte("k"), Now: clk.Now, IdempotencyLease: lease})
	ts := &testServer{t: t, h: h, api: h, svc: svc, store: st}
	ts.key = ts.newKey("acme", secrets.AllScopes...)
	ts.createSecret("db", map[string]string{"k": "v1"})

	const path = "/v1/projects/acme/secrets/db"
	body := `{"values":{"k":"v2"}}`
	// What a request that died after claiming its key leaves behind.
	if _, _, err := h.(*server).begin(context.Background(), "acme", "rotate-1", requestHash("PATCH", path, []byte(body))); err != nil {
		t.Fatal(err)
	}
	retry := func() *response {
		return ts.serve(req{method: "PATCH", path: path, key: ts.key, body: body, header: map[string]string{"Idempotency-Key": "rotate-1"}})
	}
	for _, c := range []struct {
		name  string
		after time.Duration // since the claim
		want  string        // Retry-After
	}{
		{"at once", 0, "10"},
		{"part of the lease later", 6500 * time.Millisecond, "4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk.Set(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(c.after))
			r := retry()
			wantError(t, r, 409, "Idempotency-Key")
			if got := r.Header.Get("Retry-After"); got != c.want {
				t.Fatalf("Retry-After %q, want %q", got, c.want)
			}
		})
	}
	clk.Advance(lease)
	first := retry().want(t, 200)
	if first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("the retry after the lease was a replay of a write that never happened")
	}
	again := retry().want(t, 200)
	if again.Header.Get("Idempotent-Replayed") != "true" || string(again.Body) != string(first.Body) {
		t.Fatalf("the next retry: %v %s", again.Header, again.Body)
	}
	var vl api.VersionList
	ts.do("GET", path+"/versions", nil).want(t, 200).decode(t, &vl)
	if len(vl.Versions) != 2 {
		t.Fatalf("%d versions, want 2: the rotation ran %d times", len(vl.Versions), len(vl.Versions)-1)
	}
}
