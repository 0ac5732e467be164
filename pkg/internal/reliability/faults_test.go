package reliability

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/internal/faults"
	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// faultEnv is the real handler over a bolt store and a local key, both
// behind one fault injector, with secret "db" (two versions) and a spare
// API key.
type faultEnv struct {
	*env
	in     *faults.Injector
	keyID  string
	secret string
}

func newFaultEnv(t *testing.T) *faultEnv {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "mobius.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w, err := local.New(newKEK())
	if err != nil {
		t.Fatal(err)
	}
	in := &faults.Injector{}
	// No auth cache, so that every request authenticates against the store.
	e := newEnv(t, &faults.Driver{Inner: st, In: in}, &faults.Keys{Inner: w, In: in}, secrets.Options{AuthCacheTTL: -1})
	s := e.create("db", map[string]string{"password": "pw-1"})
	e.rotate("db", map[string]string{"password": "pw-2"})
	k, _, err := e.svc.CreateAPIKey(context.Background(), "acme", "spare", nil)
	if err != nil {
		t.Fatal(err)
	}
	return &faultEnv{env: e, in: in, keyID: k.ID, secret: s.ID}
}

type httpReq struct {
	method, path string
	body         any
}

func faultRequests(f *faultEnv) []httpReq {
	return []httpReq{
		{"POST", "/v1/projects/acme/secrets", map[string]any{"name": "new", "values": map[string]string{"k": "v"}}},
		{"GET", "/v1/projects/acme/secrets", nil},
		{"GET", "/v1/projects/acme/secrets/db", nil},
		{"GET", "/v1/projects/acme/secrets/" + f.secret, nil},
		{"PATCH", "/v1/projects/acme/secrets/db", map[string]any{"values": map[string]string{"password": "pw-3"}}},
		{"PATCH", "/v1/projects/acme/secrets/db", map[string]any{"name": "db2"}},
		{"DELETE", "/v1/projects/acme/secrets/db", nil},
		{"GET", "/v1/projects/acme/secrets/db/versions", nil},
		{"GET", "/v1/projects/acme/secrets/db/versions/current", nil},
		{"POST", "/v1/projects/acme/secrets/db/versions/1/enable", map[string]any{}},
		{"POST", "/v1/projects/acme/secrets/db/versions/2/disable", map[string]any{}},
		{"POST", "/v1/projects/acme/secrets/db/versions/1/destroy", map[string]any{}},
		{"GET", "/v1/projects/acme/secrets/db/resolutions", nil},
		{"POST", "/v1/projects/acme/api-keys", map[string]any{"name": "k2"}},
		{"GET", "/v1/projects/acme/api-keys", nil},
		{"DELETE", "/v1/projects/acme/api-keys/" + f.keyID, nil},
	}
}

// checkUnavailable fails unless r is 503 with Retry-After and a clean error
// envelope, or a success (the failed call was one the operation tolerates).
func checkUnavailable(t *testing.T, what string, r *response) bool {
	t.Helper()
	if r.Status < 300 {
		return false
	}
	if r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Errorf("%s: %d (Retry-After %q), want 503 with Retry-After: %s", what, r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	b := string(r.Body)
	if !strings.Contains(b, `"error"`) || strings.Contains(b, "goroutine") || strings.Contains(b, ".go:") || strings.Contains(b, "internal-detail-xyz") {
		t.Errorf("%s: the body shows internals: %s", what, b)
	}
	return true
}

// A dependency that is unavailable at any call of any request gives 503
// with Retry-After, never a 500 and never internals in the body.
func TestHTTPFaultsAtEveryCall(t *testing.T) {
	injected := kv.Errorf(kv.Unavailable, "Commit", errors.New("dial tcp 10.9.8.7:443: internal-detail-xyz"), "the store did not answer")
	base := newFaultEnv(t)
	cases, unavailable, tolerated := 0, 0, 0
	for i, rq := range faultRequests(base) {
		// Learn the calls the request makes when nothing fails.
		probe := newFaultEnv(t)
		probe.in.Set()
		r := probe.serve(rq.method, strings.ReplaceAll(strings.ReplaceAll(rq.path, base.secret, probe.secret), base.keyID, probe.keyID), probe.key, rq.body)
		if r.Status >= 300 {
			t.Fatalf("%s %s without faults: %d %s", rq.method, rq.path, r.Status, r.Body)
		}
		calls := probe.in.Calls()
		seen := map[string]int{}
		for _, op := range calls {
			seen[op]++
			for _, when := range []faults.When{faults.Before, faults.After} {
				f := newFaultEnv(t)
				path := strings.ReplaceAll(strings.ReplaceAll(rq.path, base.secret, f.secret), base.keyID, f.keyID)
				f.in.Set(faults.Rule{Op: op, Nth: seen[op], When: when, Err: injected})
				r := f.serve(rq.method, path, f.key, rq.body)
				cases++
				what := fmt.Sprintf("request %d %s %s, %s #%d %v", i, rq.method, rq.path, op, seen[op], when)
				if checkUnavailable(t, what, r) {
					unavailable++
				} else {
					tolerated++
				}
				if strings.Contains(f.logs.String(), "pw-") {
					t.Errorf("%s: a value reached the log", what)
				}
			}
		}
	}
	t.Logf("HTTP faults: %d injection cases over %d requests: %d answered 503 with Retry-After, %d tolerated (best-effort calls), 0 answered 500", cases, len(faultRequests(base)), unavailable, tolerated)
}

// Latency at every call slows requests down and changes nothing else.
func TestHTTPLatencyChangesNothing(t *testing.T) {
	f := newFaultEnv(t)
	f.in.Set(faults.Rule{Delay: 2 * time.Millisecond})
	for _, rq := range faultRequests(f) {
		if r := f.serve(rq.method, rq.path, f.key, rq.body); r.Status >= 300 && r.Status != 404 {
			t.Errorf("%s %s with latency: %d %s", rq.method, rq.path, r.Status, r.Body)
		}
	}
	t.Logf("latency: %d requests, %d dependency calls each delayed", len(faultRequests(f)), len(f.in.Calls()))
}

// DynamoDB failing below the SDK (network down, 500, throttling) gives 503
// through the handler.
func TestDynamoFaultsGive503(t *testing.T) {
	ft := &awstest.FaultTransport{}
	c := awstest.NewDynamoClient(awstest.StartMinidyn(t), func(o *dynamodb.Options) {
		o.HTTPClient = ft
		o.RetryMaxAttempts = 2
	})
	table := fmt.Sprintf("reliability-%d", time.Now().UnixNano())
	if _, err := c.CreateTable(context.Background(), dynamo.TableSchema(table)); err != nil {
		t.Fatal(err)
	}
	w, err := local.New(newKEK())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, dynamo.New(c, table), w)
	e.create("db", map[string]string{"password": "pw-1"})
	reqs := []httpReq{
		{"GET", "/v1/projects/acme/secrets/db", nil},
		{"GET", "/v1/projects/acme/secrets", nil},
		{"PATCH", "/v1/projects/acme/secrets/db", map[string]any{"values": map[string]string{"password": "pw-2"}}},
		{"POST", "/v1/projects/acme/secrets", map[string]any{"name": "x", "values": map[string]string{"k": "v"}}},
		{"GET", "/v1/projects/acme/secrets/db/versions", nil},
	}
	cases := 0
	for _, op := range []string{"GetItem", "Query", "TransactWriteItems", "PutItem"} {
		for _, fault := range []awstest.Fault{awstest.Down, awstest.Error500, awstest.Throttle} {
			ft.Clear()
			ft.Set(op, fault)
			for _, rq := range reqs {
				r := e.do(rq.method, rq.path, rq.body)
				if r.Status == 500 || r.Status >= 500 && r.Status != 503 {
					t.Errorf("%s %s with %s %v: %d %s", rq.method, rq.path, op, fault, r.Status, r.Body)
				}
				if r.Status == 503 {
					checkUnavailable(t, rq.method+" "+rq.path, r)
					cases++
				}
			}
		}
	}
	ft.Clear()
	e.do("GET", "/v1/projects/acme/secrets/db", nil).want(t, 200)
	if cases == 0 {
		t.Fatal("no DynamoDB fault reached a request")
	}
	t.Logf("DynamoDB faults: %d requests answered 503 with Retry-After, none 500", cases)
}
