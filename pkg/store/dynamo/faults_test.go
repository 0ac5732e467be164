package dynamo_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// call is one use of the driver that makes one kind of DynamoDB call.
type call struct {
	sdkOp string
	// write: the call may change the table.
	write bool
	run   func(ctx context.Context, d *dynamo.Driver) error
}

var faultCalls = []call{
	{"GetItem", false, func(ctx context.Context, d *dynamo.Driver) error {
		_, err := d.Get(ctx, key("p", "a"))
		return err
	}},
	{"BatchGetItem", false, func(ctx context.Context, d *dynamo.Driver) error {
		_, err := d.Get(ctx, key("p", "a"), key("p", "b"))
		return err
	}},
	{"Query", false, func(ctx context.Context, d *dynamo.Driver) error {
		_, err := d.Query(ctx, kv.Query{Partition: "p", Prefix: "a", Limit: 10})
		return err
	}},
	{"Scan", false, func(ctx context.Context, d *dynamo.Driver) error {
		_, err := d.Empty(ctx)
		return err
	}},
	{"PutItem", true, func(ctx context.Context, d *dynamo.Driver) error {
		return d.Commit(ctx, kv.Put(item("p", "new", "v"), kv.IfAbsent(t0)))
	}},
	{"DeleteItem", true, func(ctx context.Context, d *dynamo.Driver) error {
		return d.Commit(ctx, kv.Erase(key("p", "a"), kv.IfRev(1)))
	}},
	{"TransactWriteItems", true, func(ctx context.Context, d *dynamo.Driver) error {
		return d.Commit(ctx, kv.Put(item("p", "new", "v"), kv.IfAbsent(t0)), kv.Delete(key("p", "a"), kv.IfExists()),
			kv.Check(key("p", "b"), kv.IfRev(1)))
	}},
}

// seed puts the items every fault case starts from, and removes any other.
func (e *env) seed() map[string]string {
	e.t.Helper()
	for _, it := range e.scan() {
		if _, err := e.raw.DeleteItem(e.ctx, &dynamodb.DeleteItemInput{TableName: aws.String(e.table),
			Key: map[string]types.AttributeValue{dynamo.PartitionKey: it[dynamo.PartitionKey], dynamo.SortKey: it[dynamo.SortKey]}}); err != nil {
			e.t.Fatal(err)
		}
	}
	e.commit(kv.Put(item("p", "a", "1"), kv.Cond{}), kv.Put(item("p", "b", "2"), kv.Cond{}))
	return e.snapshot()
}

// snapshot is every item of the table, as comparable text.
func (e *env) snapshot() map[string]string {
	out := map[string]string{}
	for _, it := range e.scan() {
		out[it[dynamo.PartitionKey].(*types.AttributeValueMemberS).Value+"/"+it[dynamo.SortKey].(*types.AttributeValueMemberS).Value] = describe(it)
	}
	return out
}

func sameItems(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Each failure of DynamoDB, on each call, is the documented kv code, and
// a failed write leaves the table as it was (unless its reply alone was
// lost, and then it was applied exactly once).
func TestFaults(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		for _, f := range []struct {
			name   string
			fault  awstest.Fault
			refuse *refusal
			want   kv.Code
			// msg is a part of the message the error must have.
			msg string
			// retried: the SDK retries this failure itself.
			retried bool
		}{
			{name: "Down", fault: awstest.Down, want: kv.Unavailable, msg: "could not be reached"},
			{name: "500", fault: awstest.Error500, want: kv.Unavailable, retried: true},
			{name: "Throttle", fault: awstest.Throttle, want: kv.Unavailable, retried: true},
			{name: "LostReply", fault: awstest.LostReply, want: kv.Unavailable, retried: true},
			{name: "ProvisionedThroughput", refuse: &refusal{400, "ProvisionedThroughputExceededException", "throughput"}, want: kv.Unavailable, retried: true},
			{name: "RequestLimit", refuse: &refusal{400, "RequestLimitExceeded", "account limit"}, want: kv.Unavailable, retried: true},
			{name: "503", refuse: &refusal{503, "ServiceUnavailable", "unavailable"}, want: kv.Unavailable, retried: true},
			{name: "AccessDenied", refuse: &refusal{400, "AccessDeniedException", "User: arn:aws:sts::1:assumed-role/r is not authorized"}, want: kv.Misconfigured, msg: "not allowed"},
			{name: "UnrecognizedClient", refuse: &refusal{400, "UnrecognizedClientException", "The security token included in the request is invalid."}, want: kv.Misconfigured, msg: "credentials"},
			{name: "ExpiredToken", refuse: &refusal{400, "ExpiredTokenException", "The security token included in the request is expired"}, want: kv.Misconfigured, msg: "credentials"},
			{name: "Validation", refuse: &refusal{400, "ValidationException", "One or more parameter values were invalid"}, want: kv.Invalid, msg: "invalid"},
		} {
			t.Run(f.name, func(t *testing.T) {
				e := newEnv(t, b, envOpts{})
				for _, c := range faultCalls {
					before := e.seed()
					e.faults = resetHits(e)
					if f.refuse != nil {
						e.refuse.set(c.sdkOp, *f.refuse)
					} else {
						e.faults.Set(c.sdkOp, f.fault)
					}
					err := c.run(e.ctx, e.d)
					e.refuse.clear()
					e.faults.Clear()
					if kv.ErrorCode(err) != f.want || !strings.Contains(err.Error(), f.msg) {
						t.Errorf("%s: %v, want %s with %q", c.sdkOp, err, f.want, f.msg)
					}
					if f.refuse == nil && f.retried && e.faults.Hits(c.sdkOp) < 2 {
						t.Errorf("%s: %d attempts: the SDK did not retry", c.sdkOp, e.faults.Hits(c.sdkOp))
					}
					after := e.snapshot()
					if f.fault == awstest.LostReply && c.write {
						// The first attempt was applied, and the SDK's
						// retries found it so.
						if sameItems(before, after) {
							t.Errorf("%s: the write whose reply was lost was not applied", c.sdkOp)
						}
						continue
					}
					if !sameItems(before, after) {
						t.Errorf("%s: a failed call changed the table:\n%v\n%v", c.sdkOp, before, after)
					}
				}
			})
		}

		t.Run("MissingTable", func(t *testing.T) {
			e := newEnv(t, b, envOpts{})
			d := dynamo.New(e.client, "no-such-table")
			for _, c := range faultCalls {
				err := c.run(e.ctx, d)
				if kv.ErrorCode(err) != kv.Misconfigured || !strings.Contains(err.Error(), `"no-such-table" does not exist`) {
					t.Errorf("%s: %v, want Misconfigured naming the table", c.sdkOp, err)
				}
			}
		})

		t.Run("ContextEnded", func(t *testing.T) {
			e := newEnv(t, b, envOpts{})
			e.seed()
			ctx, cancel := context.WithCancel(e.ctx)
			cancel()
			for _, c := range faultCalls {
				e.calls.Reset()
				err := c.run(ctx, e.d)
				if kv.ErrorCode(err) != kv.Unavailable || !errors.Is(err, context.Canceled) {
					t.Errorf("%s with an ended context: %v, want Unavailable wrapping context.Canceled", c.sdkOp, err)
				}
				if n := len(e.calls.Counts()); n != 0 {
					t.Errorf("%s with an ended context called DynamoDB: %v", c.sdkOp, e.calls.Counts())
				}
			}
		})

		t.Run("DeadlineDuringCall", func(t *testing.T) {
			e := newEnv(t, b, envOpts{})
			before := e.seed()
			e.faults.Next = hang{}
			for _, c := range faultCalls {
				ctx, cancel := context.WithTimeout(e.ctx, 20*time.Millisecond)
				err := c.run(ctx, e.d)
				cancel()
				if kv.ErrorCode(err) != kv.Unavailable || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s past its deadline: %v, want Unavailable wrapping context.DeadlineExceeded", c.sdkOp, err)
				}
			}
			e.faults.Next = nil
			if !sameItems(before, e.snapshot()) {
				t.Error("calls that never reached DynamoDB changed the table")
			}
		})
	})
}

// resetHits returns a fresh FaultTransport in place of e's.
func resetHits(e *env) *awstest.FaultTransport {
	ft := &awstest.FaultTransport{}
	e.refuse.next = ft
	return ft
}

// hang is a transport that never answers: it waits for the request's
// context to end.
type hang struct{}

func (hang) RoundTrip(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
}
