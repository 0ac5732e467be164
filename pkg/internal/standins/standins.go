// Package standins makes store drivers on the local stand-ins for the
// suites that every backend must pass: the embedded store in a temporary
// folder, and the DynamoDB driver on moto (behind its serialising proxy)
// and on minidyn (with a shim for where minidyn deviates from DynamoDB).
// It is for tests only.
package standins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// Backend makes fresh drivers of one kind.
type Backend struct {
	Name string
	New  func(t testing.TB) kv.Driver
}

// Backends are the embedded store, moto and minidyn. A package that uses
// them calls awstest.Main from its TestMain.
var Backends = []Backend{
	{"bolt", Bolt},
	{"moto", Moto},
	{"minidyn", Minidyn},
}

// Bolt opens a fresh embedded store in a temporary folder.
func Bolt(t testing.TB) kv.Driver {
	t.Helper()
	d, err := bolt.Open(filepath.Join(t.TempDir(), "mobius.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

var tables atomic.Int64

// NewTable returns a fresh table name.
func NewTable() string {
	return fmt.Sprintf("mobius-%d-%d", time.Now().UnixNano(), tables.Add(1))
}

// bufferedTransport sends every request body from memory (see Buffered).
type bufferedTransport struct{ next http.RoundTripper }

func (b bufferedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req, err := Buffered(req)
	if err != nil {
		return nil, err
	}
	return b.next.RoundTrip(req)
}

func client(endpoint string) *dynamodb.Client {
	return awstest.NewDynamoClient(endpoint, func(o *dynamodb.Options) {
		o.HTTPClient = &http.Client{Transport: bufferedTransport{http.DefaultTransport}}
	})
}

// Moto returns a DynamoDB driver on a fresh table of the test binary's
// moto.
func Moto(t testing.TB) kv.Driver {
	t.Helper()
	ep := awstest.StartMoto(t)
	table := NewTable()
	c := client(ep)
	if err := dynamo.CreateTable(context.Background(), c, table); err != nil {
		t.Fatalf("CreateTable on moto: %v", err)
	}
	return unhurried{dynamo.New(c, table)}
}

// unhurried hands a commit's cancellation on to the driver but not its
// deadline. The domain gives every commit that carries change events a
// deadline of secrets.EventSettle/2 (the feed's ordering rule): far above
// DynamoDB's commit latency, but not above moto's when one Python process,
// behind a proxy that serialises transactions, serves every test of a
// binary on a shared machine. A commit that outruns the deadline here
// measures the stand-in, not the product; the rule itself is tested with
// injected delays above the driver (storetest's EventCommitDeadline), which
// still see the deadline.
type unhurried struct{ kv.Driver }

func (u unhurried) Commit(ctx context.Context, ops ...kv.Op) error {
	if _, ok := ctx.Deadline(); !ok {
		return u.Driver.Commit(ctx, ops...)
	}
	c, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.Canceled) {
			cancel()
		}
	})
	defer stop()
	if errors.Is(ctx.Err(), context.Canceled) { // AfterFunc's call may come late
		cancel()
	}
	return u.Driver.Commit(c, ops...)
}

// Empty is the driver's own (secrets.Emptier).
func (u unhurried) Empty(ctx context.Context) (bool, error) {
	return u.Driver.(interface {
		Empty(context.Context) (bool, error)
	}).Empty(ctx)
}

// Minidyn returns a DynamoDB driver on a table of a fresh in-process
// minidyn. minidyn has no UpdateTimeToLive, so the table is made from
// TableSchema directly.
func Minidyn(t testing.TB) kv.Driver {
	t.Helper()
	ep := awstest.StartMinidyn(t)
	table := NewTable()
	c := client(ep)
	if _, err := c.CreateTable(context.Background(), dynamo.TableSchema(table)); err != nil {
		t.Fatalf("CreateTable on minidyn: %v", err)
	}
	return dynamo.New(MinidynShim(c), table)
}

// minidynShim makes up for where minidyn deviates from DynamoDB, between
// the driver and minidyn, so that the driver is tested as it would run on
// DynamoDB:
//
//   - Empty binaries: minidyn stores them but answers them as no value at
//     all (its wire type omits an empty B), which the SDK reads as a
//     number. DynamoDB stores and returns an empty B. The shim writes an
//     empty value attribute as the bytes of MinidynEmpty and reads those
//     back as empty.
//   - Numbers: minidyn compares them as float64, so revisions beyond 2^53
//     that differ compare equal. DynamoDB compares numbers exactly (38
//     digits). The shim stores such a revision, and the operand of a
//     revision condition, as a string (equality on strings is exact) and
//     reads it back as a number.
type minidynShim struct{ dynamo.API }

// MinidynShim wraps a DynamoDB client of minidyn (see minidynShim).
func MinidynShim(api dynamo.API) dynamo.API { return minidynShim{api} }

// MinidynEmpty stands for an empty value in a minidyn table.
const MinidynEmpty = "\x00minidyn: an empty binary\x00"

// exactFloat bounds the integers a float64 holds exactly.
const exactFloat = 1 << 53

func bigNumber(av types.AttributeValue) (string, bool) {
	n, ok := av.(*types.AttributeValueMemberN)
	if !ok {
		return "", false
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	return n.Value, err == nil && (i > exactFloat || i < -exactFloat)
}

func shimIn(it map[string]types.AttributeValue) map[string]types.AttributeValue {
	it = maps.Clone(it)
	if b, ok := it["v"].(*types.AttributeValueMemberB); ok && len(b.Value) == 0 {
		it["v"] = &types.AttributeValueMemberB{Value: []byte(MinidynEmpty)}
	}
	if n, ok := bigNumber(it["rev"]); ok {
		it["rev"] = &types.AttributeValueMemberS{Value: n}
	}
	return it
}

func shimValues(vals map[string]types.AttributeValue) map[string]types.AttributeValue {
	if n, ok := bigNumber(vals[":rev"]); ok {
		vals = maps.Clone(vals)
		vals[":rev"] = &types.AttributeValueMemberS{Value: n}
	}
	return vals
}

func shimOut(it map[string]types.AttributeValue) {
	if b, ok := it["v"].(*types.AttributeValueMemberB); ok && string(b.Value) == MinidynEmpty {
		it["v"] = &types.AttributeValueMemberB{Value: []byte{}}
	}
	if s, ok := it["rev"].(*types.AttributeValueMemberS); ok {
		it["rev"] = &types.AttributeValueMemberN{Value: s.Value}
	}
}

func (s minidynShim) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	cp := *in
	cp.ExpressionAttributeValues = shimValues(in.ExpressionAttributeValues)
	return s.API.DeleteItem(ctx, &cp, opts...)
}

func (s minidynShim) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	cp := *in
	cp.Item = shimIn(in.Item)
	cp.ExpressionAttributeValues = shimValues(in.ExpressionAttributeValues)
	return s.API.PutItem(ctx, &cp, opts...)
}

func (s minidynShim) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	cp := *in
	cp.TransactItems = slices.Clone(in.TransactItems)
	for i, ti := range cp.TransactItems {
		switch {
		case ti.Put != nil:
			p := *ti.Put
			p.Item = shimIn(p.Item)
			p.ExpressionAttributeValues = shimValues(p.ExpressionAttributeValues)
			cp.TransactItems[i].Put = &p
		case ti.Delete != nil:
			d := *ti.Delete
			d.ExpressionAttributeValues = shimValues(d.ExpressionAttributeValues)
			cp.TransactItems[i].Delete = &d
		case ti.ConditionCheck != nil:
			c := *ti.ConditionCheck
			c.ExpressionAttributeValues = shimValues(c.ExpressionAttributeValues)
			cp.TransactItems[i].ConditionCheck = &c
		}
	}
	return s.API.TransactWriteItems(ctx, &cp, opts...)
}

func (s minidynShim) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	out, err := s.API.GetItem(ctx, in, opts...)
	if err == nil {
		shimOut(out.Item)
	}
	return out, err
}

func (s minidynShim) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	out, err := s.API.BatchGetItem(ctx, in, opts...)
	if err == nil {
		for _, items := range out.Responses {
			for _, it := range items {
				shimOut(it)
			}
		}
	}
	return out, err
}

func (s minidynShim) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := s.API.Query(ctx, in, opts...)
	if err == nil {
		for _, it := range out.Items {
			shimOut(it)
		}
	}
	return out, err
}

// Buffered returns req with its body read into memory. The SDK hands
// net/http a request body that it closes once the response has arrived;
// now and then net/http was still finishing the body (after the stand-in
// had read it all and answered), took the closed body for a failed write,
// and closed the connection under a reply still being read. With
// minidyn, which answers a PutItem with the whole item (DynamoDB answers
// {}), that reply is large enough for the race to show: the write had
// been applied, the SDK retried it, the retry failed its condition, and
// the driver rightly answered Unavailable. A body in memory that nothing
// closes keeps the tests deterministic.
func Buffered(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return req, nil
}
