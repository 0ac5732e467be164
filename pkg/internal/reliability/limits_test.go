package reliability

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/httpapi"
	"github.com/mobius-secrets/mobius/pkg/resolve"
)

// countingReader is an endless body of 'a's that counts what was read.
type countingReader struct {
	n, limit int64
	read     atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n >= c.limit {
		return 0, io.EOF
	}
	k := min(int64(len(p)), c.limit-c.n)
	for i := range k {
		p[i] = 'a'
	}
	c.n += k
	c.read.Add(k)
	return int(k), nil
}

// allocated returns the bytes allocated while fn ran.
func allocated(fn func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	fn()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

const mib = 1 << 20

// Oversized bodies are refused with 413 after reading at most the limit;
// absurd page sizes are 400.
func TestHTTPResourceLimits(t *testing.T) {
	e := newBoltEnv(t)
	e.create("db", map[string]string{"k": "v"})
	for _, declared := range []bool{false, true} {
		body := &countingReader{limit: 10 * mib}
		var status int
		var respBody string
		alloc := allocated(func() {
			r := httptest.NewRequest("POST", "/v1/projects/acme/secrets", body)
			r.Header.Set("Authorization", "Bearer "+e.key)
			r.Header.Set("Content-Type", "application/json")
			r.ContentLength = -1
			if declared {
				r.ContentLength = 10 * mib
			}
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			status, respBody = w.Code, w.Body.String()
		})
		read := body.read.Load()
		if status != 413 {
			t.Errorf("10 MiB body (length declared %v): %d %s, want 413", declared, status, respBody)
		}
		if read > httpapi.DefaultMaxBodyBytes+64<<10 {
			t.Errorf("10 MiB body (length declared %v): the server read %d bytes, more than the %d limit", declared, read, httpapi.DefaultMaxBodyBytes)
		}
		if alloc > 8*mib {
			t.Errorf("10 MiB body: %d bytes allocated", alloc)
		}
		t.Logf("10 MiB body, length declared %v: 413 after reading %d bytes, %d bytes allocated", declared, read, alloc)
	}
	cases := 0
	for _, path := range []string{"/v1/projects/acme/secrets", "/v1/projects/acme/secrets/db/versions", "/v1/projects/acme/secrets/db/resolutions", "/v1/projects/acme/api-keys"} {
		for _, limit := range []string{"1000000", "1001", "0", "-1", "abc", "1e3", "99999999999999999999999"} {
			r := e.do("GET", path+"?limit="+limit, nil)
			cases++
			if path == "/v1/projects/acme/api-keys" && r.Status == 200 {
				continue // the key list is not paged
			}
			if r.Status != 400 || !strings.Contains(string(r.Body), `"field":"limit"`) {
				t.Errorf("%s?limit=%s: %d %s, want 400 on field limit", path, limit, r.Status, r.Body)
			}
		}
		e.do("GET", path+"?limit=1000", nil).want(t, 200)
	}
	t.Logf("page size limits: %d bad limits refused", cases)
}

// Deep, huge or reference-heavy resolve inputs fail with BadRequest in
// bounded memory, never a crash.
func TestResolveResourceLimits(t *testing.T) {
	e := newBoltEnv(t)
	e.create("db", map[string]string{"k": "v"})
	grant := e.grant("", "db")
	rv := resolve.New(e.svc, e.logger)
	refs := func(n int) string {
		return `"` + strings.Repeat("${secret:db.k}", n) + `"`
	}
	cases := []struct {
		name, input string
		ok          bool
	}{
		{"depth 10,000 of arrays", strings.Repeat("[", 10000) + strings.Repeat("]", 10000), false},
		{"depth 10,000 of objects", strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000), false},
		{"depth 100,000 unbalanced", strings.Repeat("[", 100000), false},
		{"depth 64", strings.Repeat("[", 63) + `"${secret:db.k}"` + strings.Repeat("]", 63), true},
		{"2 MiB string", `"` + strings.Repeat("x", 2*mib) + `"`, false},
		{"1,000 references", refs(1000), true},
		{"1,001 references", refs(1001), false},
		{"70,000 references", refs(70000), false},
		{"1 MiB string, no references", `"` + strings.Repeat("x", mib-100) + `"`, true},
		{"1,001 references across strings", "[" + strings.TrimSuffix(strings.Repeat(refs(1)+",", 1001), ",") + "]", false},
	}
	for _, tc := range cases {
		var err error
		ev := resolve.Event{Grant: grant, Input: []byte(tc.input)}
		alloc := allocated(func() { _, err = rv.Resolve(context.Background(), ev) })
		var re *resolve.Error
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v, want success", tc.name, err)
		case !tc.ok && (!errors.As(err, &re) || re.Type != resolve.TypeBadRequest):
			t.Errorf("%s: %v, want a BadRequest", tc.name, err)
		}
		if limit := uint64(16*len(tc.input) + 16*mib); alloc > limit {
			t.Errorf("%s: %d bytes allocated for %d bytes of input", tc.name, alloc, len(tc.input))
		}
		t.Logf("resolve %s (%d bytes): %v, %d bytes allocated", tc.name, len(tc.input), err, alloc)
	}
}
