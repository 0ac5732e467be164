package dynamo_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/internal/standins"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

func TestMain(m *testing.M) { awstest.Main(m) }

var tables atomic.Int64

// newTable returns a fresh table name.
func newTable() string {
	return fmt.Sprintf("mobius-%d-%d", time.Now().UnixNano(), tables.Add(1))
}

// backend is one DynamoDB stand-in.
type backend struct {
	name string
	// endpoint starts (or reuses) the stand-in and returns its URL.
	endpoint func(t *testing.T) string
	// create makes the table.
	create func(t *testing.T, c *dynamodb.Client, table string)
	// shim, if set, stands between the driver and the stand-in's client
	// to make up for where the stand-in deviates from DynamoDB.
	shim func(dynamo.API) dynamo.API
}

var backends = []backend{
	{
		// moto_server, one per test binary, behind a proxy that passes it
		// one request at a time (moto does not isolate transactions).
		name:     "moto",
		endpoint: func(t *testing.T) string { return awstest.StartMoto(t) },
		create: func(t *testing.T, c *dynamodb.Client, table string) {
			t.Helper()
			if err := dynamo.CreateTable(context.Background(), c, table); err != nil {
				t.Fatalf("CreateTable on moto: %v", err)
			}
		},
	},
	{
		// minidyn in process, one per test. minidyn has no
		// UpdateTimeToLive (nor TableStatus), so the table is created from
		// TableSchema directly; the driver never relies on time to live.
		name:     "minidyn",
		endpoint: func(t *testing.T) string { return awstest.StartMinidyn(t) },
		create: func(t *testing.T, c *dynamodb.Client, table string) {
			t.Helper()
			if _, err := c.CreateTable(context.Background(), dynamo.TableSchema(table)); err != nil {
				t.Fatalf("CreateTable on minidyn: %v", err)
			}
		},
		shim: standins.MinidynShim,
	},
}

// forEach runs f as a subtest per backend.
func forEach(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// env is a Driver on a fresh table of one stand-in, with every SDK call
// counted and open to injected faults, and a separate raw client for
// looking at the table.
type env struct {
	t      *testing.T
	ctx    context.Context
	raw    *dynamodb.Client
	client *dynamodb.Client // the driver's
	table  string
	d      *dynamo.Driver
	calls  *awstest.Counter
	faults *awstest.FaultTransport
	refuse *refuser // in front of faults
}

type envOpts struct {
	noRetry bool // one attempt per SDK call
	opts    []dynamo.Option
	// wrap, if set, stands between the driver and its client.
	wrap func(dynamo.API) dynamo.API
}

func newEnv(t *testing.T, b backend, o envOpts) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), table: newTable(), calls: &awstest.Counter{}, faults: &awstest.FaultTransport{}}
	e.refuse = &refuser{next: e.faults}
	ep := b.endpoint(t)
	e.raw = awstest.NewDynamoClient(ep)
	b.create(t, e.raw, e.table)
	e.client = awstest.NewDynamoClient(ep, func(opt *dynamodb.Options) {
		opt.APIOptions = append(opt.APIOptions, e.calls.Middleware)
		opt.HTTPClient = e.refuse
		if o.noRetry {
			opt.RetryMaxAttempts = 1
		}
	})
	var api dynamo.API = e.client
	if b.shim != nil {
		api = b.shim(api)
	}
	if o.wrap != nil {
		api = o.wrap(api)
	}
	e.d = dynamo.New(api, e.table, append([]dynamo.Option{dynamo.WithBackoff(quick)}, o.opts...)...)
	return e
}

// quick keeps the driver's own retries short in tests.
func quick(int) time.Duration { return time.Millisecond }

// scan returns every item of the table (tests may scan).
func (e *env) scan() []map[string]types.AttributeValue {
	e.t.Helper()
	var out []map[string]types.AttributeValue
	var start map[string]types.AttributeValue
	for {
		res, err := e.raw.Scan(e.ctx, &dynamodb.ScanInput{TableName: aws.String(e.table), ExclusiveStartKey: start, ConsistentRead: aws.Bool(true)})
		if err != nil {
			e.t.Fatalf("Scan: %v", err)
		}
		out = append(out, res.Items...)
		if len(res.LastEvaluatedKey) == 0 {
			return out
		}
		start = res.LastEvaluatedKey
	}
}

func (e *env) commit(ops ...kv.Op) {
	e.t.Helper()
	if err := e.d.Commit(e.ctx, ops...); err != nil {
		e.t.Fatalf("Commit: %v", err)
	}
}

func key(p, s string) kv.Key { return kv.Key{Partition: p, Sort: s} }

func item(p, s, v string) kv.Item { return kv.Item{Key: key(p, s), Value: []byte(v), Rev: 1} }

// refuser answers requests for chosen operations with an AWS JSON error
// of its own, before they reach the stand-in; others go to next.
type refuser struct {
	next http.RoundTripper
	mu   sync.Mutex
	// rules maps an operation ("" for all) to the status and error code
	// to answer.
	rules map[string]refusal
}

type refusal struct {
	status int
	code   string
	msg    string
}

func (r *refuser) set(op string, f refusal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rules == nil {
		r.rules = map[string]refusal{}
	}
	r.rules[op] = f
}

func (r *refuser) clear() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rules = nil
}

func (r *refuser) Do(req *http.Request) (*http.Response, error) { return r.RoundTrip(req) }

func (r *refuser) RoundTrip(req *http.Request) (*http.Response, error) {
	req, err := standins.Buffered(req)
	if err != nil {
		return nil, err
	}
	target := req.Header.Get("X-Amz-Target")
	op := target[strings.LastIndex(target, ".")+1:]
	r.mu.Lock()
	f, ok := r.rules[op]
	if !ok {
		f, ok = r.rules[""]
	}
	r.mu.Unlock()
	if !ok {
		return r.next.RoundTrip(req)
	}
	body := fmt.Sprintf(`{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%q}`, f.code, f.msg)
	return &http.Response{
		StatusCode: f.status, Status: http.StatusText(f.status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: req,
	}, nil
}

// A fixed instant, with milliseconds, for conditions and expiries.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
