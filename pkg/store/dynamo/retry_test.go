package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// conflicter is an API whose first n writes collide with a concurrent
// transaction, as DynamoDB answers them: a cancelled transaction with a
// TransactionConflict reason, or TransactionConflictException for a
// single-item write. It counts the writes and records every transaction
// input it is given.
type conflicter struct {
	dynamo.API
	mu     sync.Mutex
	n      int
	calls  int
	inputs []*dynamodb.TransactWriteItemsInput
	tokens []bool // whether each input came with a request token
}

func (c *conflicter) collide() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.n > 0 {
		c.n--
		return true
	}
	return false
}

func (c *conflicter) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.mu.Lock()
	c.inputs = append(c.inputs, in)
	c.tokens = append(c.tokens, in.ClientRequestToken != nil)
	c.mu.Unlock()
	if c.collide() {
		rs := make([]types.CancellationReason, len(in.TransactItems))
		for i := range rs {
			rs[i].Code = aws.String("None")
		}
		rs[0].Code = aws.String("TransactionConflict")
		// Behind a conflict, a failed condition decides nothing.
		rs[len(rs)-1].Code = aws.String("ConditionalCheckFailed")
		return nil, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: rs}
	}
	return c.API.TransactWriteItems(ctx, in, opts...)
}

func (c *conflicter) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if c.collide() {
		return nil, &types.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")}
	}
	return c.API.PutItem(ctx, in, opts...)
}

// A commit that collides with concurrent transactions is retried, each
// time with a new transaction (a new request token), up to the bound, and
// then is Contention with nothing written.
func TestContention(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		for _, tc := range []struct {
			name       string
			collisions int
			ops        []kv.Op
			want       kv.Code
			calls      int
		}{
			{"TransactionWinsOnRetry", 3, []kv.Op{kv.Put(item("p", "a", "1"), kv.IfAbsent(t0)), kv.Put(item("p", "b", "2"), kv.IfAbsent(t0))}, "", 4},
			{"TransactionGivesUp", 100, []kv.Op{kv.Put(item("p", "a", "1"), kv.IfAbsent(t0)), kv.Put(item("p", "b", "2"), kv.IfAbsent(t0))}, kv.Contention, 5},
			{"PutWinsOnRetry", 2, []kv.Op{kv.Put(item("p", "a", "1"), kv.IfAbsent(t0))}, "", 3},
			{"PutGivesUp", 100, []kv.Op{kv.Put(item("p", "a", "1"), kv.IfAbsent(t0))}, kv.Contention, 5},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := &conflicter{n: tc.collisions}
				e := newEnv(t, b, envOpts{opts: []dynamo.Option{dynamo.WithAttempts(5)},
					wrap: func(api dynamo.API) dynamo.API { c.API = api; return c }})
				err := e.d.Commit(e.ctx, tc.ops...)
				if got := kv.ErrorCode(err); got != tc.want {
					t.Fatalf("Commit: %v, want code %q", err, tc.want)
				}
				var ce *kv.ConditionError
				if errors.As(err, &ce) {
					t.Fatalf("a collision was taken for a failed condition: %v", err)
				}
				if c.calls != tc.calls {
					t.Errorf("%d write calls, want %d", c.calls, tc.calls)
				}
				if n := len(e.scan()); (tc.want == "") != (n == len(tc.ops)) || (tc.want != "" && n != 0) {
					t.Errorf("%d items in the table after %v", n, err)
				}
				// Each attempt is a new input without a token, which the
				// SDK then fills with a new one.
				for i, in := range c.inputs {
					for _, prev := range c.inputs[:i] {
						if in == prev {
							t.Errorf("attempt %d reused an earlier input", i)
						}
					}
					if c.tokens[i] {
						t.Errorf("attempt %d came with a request token: a replayed one", i)
					}
				}
			})
		}
	})
}

// oneLostReply passes the first request for op on, then answers 500 in
// place of its reply, or with broken, the reply's status with a body
// that breaks off (a connection lost mid-reply); later requests pass
// untouched.
type oneLostReply struct {
	next   http.RoundTripper
	op     string
	broken bool
	mu     sync.Mutex
	done   bool
}

// brokenBody fails every read, as a connection closed mid-reply does.
type brokenBody struct{}

func (brokenBody) Read([]byte) (int, error) {
	return 0, errors.New("read tcp: use of closed network connection")
}
func (brokenBody) Close() error { return nil }

func (o *oneLostReply) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := o.next.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.Header.Get("X-Amz-Target"), "."+o.op) {
		return resp, err
	}
	o.mu.Lock()
	first := !o.done
	o.done = true
	o.mu.Unlock()
	if !first {
		return resp, nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if o.broken {
		resp.Body = brokenBody{}
		resp.ContentLength = -1
		return resp, nil
	}
	body := `{"__type":"InternalServerError","message":"injected fault"}`
	return &http.Response{StatusCode: 500, Status: "500", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}}, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: r}, nil
}

// A conditional write whose first attempt lands but whose reply is lost is
// retried by the SDK, and the retry fails its condition against the
// write itself: the driver reports Unavailable (unknown outcome), never a
// failed condition, which would claim nothing was written.
func TestLostReplyThenCondition(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		for _, tc := range []struct {
			name   string
			op     string
			broken bool
			ops    []kv.Op
		}{
			{"PutItem", "PutItem", false, []kv.Op{kv.Put(item("p", "new", "v"), kv.IfAbsent(t0))}},
			{"DeleteItem", "DeleteItem", false, []kv.Op{kv.Delete(key("p", "a"), kv.IfExists())}},
			{"PutItemBrokenReply", "PutItem", true, []kv.Op{kv.Put(item("p", "new", "v"), kv.IfAbsent(t0))}},
			{"DeleteItemBrokenReply", "DeleteItem", true, []kv.Op{kv.Delete(key("p", "a"), kv.IfRev(1))}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t, b, envOpts{})
				e.seed()
				e.refuse.next = &oneLostReply{next: e.faults, op: tc.op, broken: tc.broken}
				err := e.d.Commit(e.ctx, tc.ops...)
				if kv.ErrorCode(err) != kv.Unavailable || !strings.Contains(err.Error(), "may have been applied") {
					t.Fatalf("Commit: %v, want Unavailable: the outcome is unknown", err)
				}
				var ce *kv.ConditionError
				if errors.As(err, &ce) {
					t.Fatal("a ConditionError for a write that was applied")
				}
				if n := e.calls.Counts()["DynamoDB."+tc.op]; n != 1 {
					t.Errorf("%d %s operations, want 1 (the SDK retried within it)", n, tc.op)
				}
			})
		}
		// The same for a transaction. DynamoDB answers the SDK's retry,
		// which keeps the request token, with the first attempt's success;
		// moto and minidyn ignore the token and evaluate the retry afresh,
		// so there the condition fails and the driver must not say so.
		t.Run("TransactWriteItems", func(t *testing.T) {
			e := newEnv(t, b, envOpts{})
			e.seed()
			e.refuse.next = &oneLostReply{next: e.faults, op: "TransactWriteItems"}
			err := e.d.Commit(e.ctx, kv.Put(item("p", "new", "v"), kv.IfAbsent(t0)), kv.Delete(key("p", "a"), kv.IfExists()))
			if kv.ErrorCode(err) != kv.Unavailable || !strings.Contains(err.Error(), "may have been applied") {
				t.Fatalf("Commit: %v, want Unavailable on a stand-in without idempotent tokens (DynamoDB: success)", err)
			}
			got, gerr := e.d.Get(e.ctx, key("p", "new"), key("p", "a"))
			if gerr != nil || len(got) != 1 || got[0].Sort != "new" {
				t.Fatalf("the transaction was not applied exactly once: %v %v", sorts(got), gerr)
			}
		})
	})
}

// unprocessor is an API whose BatchGetItem processes at most max keys of
// each call and leaves the others in UnprocessedKeys, as DynamoDB does
// over its 16 MB answer or when throttled (max 0: none).
type unprocessor struct {
	dynamo.API
	max   int
	calls int
}

func (u *unprocessor) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	u.calls++
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}, UnprocessedKeys: map[string]types.KeysAndAttributes{}}
	for table, ka := range in.RequestItems {
		n := min(u.max, len(ka.Keys))
		if n > 0 {
			part := ka
			part.Keys = ka.Keys[:n]
			res, err := u.API.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: part}}, opts...)
			if err != nil {
				return nil, err
			}
			out.Responses[table] = res.Responses[table]
		}
		if n < len(ka.Keys) {
			rest := ka
			rest.Keys = ka.Keys[n:]
			out.UnprocessedKeys[table] = rest
		}
	}
	return out, nil
}

// Keys left unprocessed are asked again until all are read; a table that
// processes none, call after call, is Unavailable after the bound.
func TestUnprocessedKeys(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		u := &unprocessor{max: 7}
		e := newEnv(t, b, envOpts{opts: []dynamo.Option{dynamo.WithAttempts(3)},
			wrap: func(api dynamo.API) dynamo.API { u.API = api; return u }})
		var ops []kv.Op
		var keys []kv.Key
		for i := range 40 {
			k := key("u", fmt.Sprintf("k%02d", 39-i))
			keys = append(keys, k)
			if i%4 != 0 {
				ops = append(ops, kv.Put(kv.Item{Key: k, Value: []byte(k.Sort)}, kv.Cond{}))
			}
		}
		e.commit(ops...)
		got, err := e.d.Get(e.ctx, keys...)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for i, k := range keys {
			if i%4 != 0 {
				want = append(want, k.Sort)
			}
		}
		if g := sorts(got); strings.Join(g, ",") != strings.Join(want, ",") {
			t.Errorf("Get: %q, want %q (in the order asked)", g, want)
		}
		if n := u.calls; n != 6 {
			t.Errorf("%d BatchGetItem calls, want 6 (40 keys, 7 at a time)", n)
		}

		u.max, u.calls = 0, 0
		_, err = e.d.Get(e.ctx, keys...)
		if kv.ErrorCode(err) != kv.Unavailable || !strings.Contains(err.Error(), "unprocessed") {
			t.Errorf("Get from a table that processes nothing: %v, want Unavailable", err)
		}
		if n := u.calls; n != 3 {
			t.Errorf("%d BatchGetItem calls, want 3 (the bound)", n)
		}
	})
}

// Empty tells an empty table from one with an item.
func TestEmpty(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, envOpts{})
		if empty, err := e.d.Empty(e.ctx); err != nil || !empty {
			t.Fatalf("a new table: Empty = %v, %v", empty, err)
		}
		e.commit(kv.Put(item("p", "a", "1"), kv.Cond{}))
		if empty, err := e.d.Empty(e.ctx); err != nil || empty {
			t.Fatalf("a table with an item: Empty = %v, %v", empty, err)
		}
		e.commit(kv.Delete(key("p", "a"), kv.Cond{}))
		if empty, err := e.d.Empty(e.ctx); err != nil || !empty {
			t.Fatalf("a table emptied: Empty = %v, %v", empty, err)
		}
	})
}

// canned is an API whose TransactWriteItems is always cancelled with the
// given reasons.
type canned struct {
	dynamo.API
	reasons []string
	calls   int
}

func (c *canned) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.calls++
	rs := make([]types.CancellationReason, len(c.reasons))
	for i, r := range c.reasons {
		rs[i].Code = aws.String(r)
	}
	return nil, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: rs}
}

// The first reason of a cancelled transaction that is not None decides
// what the commit failed of.
func TestCancellationReasons(t *testing.T) {
	ops := []kv.Op{kv.Put(item("p", "a", "1"), kv.IfAbsent(t0)), kv.Delete(key("p", "b"), kv.IfRev(3)), kv.Check(key("p", "c"), kv.IfExists())}
	for _, tc := range []struct {
		name    string
		reasons []string
		code    kv.Code
		index   int // of the ConditionError, if code is ""
		calls   int
	}{
		{"FirstFailedCondition", []string{"None", "ConditionalCheckFailed", "ConditionalCheckFailed"}, "", 1, 1},
		{"ConditionBeforeConflict", []string{"ConditionalCheckFailed", "TransactionConflict", "None"}, "", 0, 1},
		{"ConflictBeforeCondition", []string{"None", "TransactionConflict", "ConditionalCheckFailed"}, kv.Contention, 0, 4},
		{"Throttled", []string{"None", "ThrottlingError", "None"}, kv.Unavailable, 0, 1},
		{"ThroughputExceeded", []string{"ProvisionedThroughputExceeded", "None", "ConditionalCheckFailed"}, kv.Unavailable, 0, 1},
		{"Validation", []string{"None", "None", "ValidationError"}, kv.Invalid, 0, 1},
		{"NoReason", nil, kv.Unavailable, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &canned{reasons: tc.reasons}
			d := dynamo.New(api, "t", dynamo.WithAttempts(4), dynamo.WithBackoff(quick))
			err := d.Commit(context.Background(), ops...)
			var ce *kv.ConditionError
			switch {
			case tc.code == "" && (!errors.As(err, &ce) || ce.Index != tc.index || ce.Key != ops[tc.index].Item.Key):
				t.Errorf("Commit: %v, want the condition of operation %d", err, tc.index)
			case tc.code != "" && kv.ErrorCode(err) != tc.code:
				t.Errorf("Commit: %v, want %s", err, tc.code)
			}
			if api.calls != tc.calls {
				t.Errorf("%d calls, want %d", api.calls, tc.calls)
			}
		})
	}
}
