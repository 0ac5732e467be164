// Package dynamo is the kv.Driver on one DynamoDB table: it persists the
// items the domain gives it and lets DynamoDB evaluate their conditions,
// with exactly the semantics of the reference driver (pkg/kv/memkv). It
// decides nothing: keys, values, revisions and expiry are the caller's.
//
// # Item form
//
// A kv.Item is one DynamoDB item:
//
//	PK          S  Key.Partition (the table's hash key)
//	SK          S  Key.Sort (the table's range key)
//	v           B  Value (an empty value is stored as an empty binary)
//	rev         N  Rev, always written
//	exp         N  Expires in Unix milliseconds, only if Expires is set;
//	               IfAbsent compares it
//	expires_at  N  Expires in Unix seconds rounded up, only if Expires is
//	               set: the table's time-to-live attribute (TTLAttribute),
//	               so DynamoDB deletes the item some time after it expires
//
// # Calls
//
//   - Get: one key is one strongly consistent GetItem; several are
//     strongly consistent BatchGetItem calls of up to 100 keys, whose
//     UnprocessedKeys are asked again with backoff, a bounded number of
//     times.
//   - Query: strongly consistent Query calls, one per 1 MB page, until
//     Limit items or the end of the range. Prefix and After become the
//     key condition (begins_with, BETWEEN, > or <); a range that can
//     hold nothing makes no call.
//   - Commit: one Put or Delete is one PutItem or DeleteItem with its
//     condition; anything else (several operations, or a Check) is one
//     TransactWriteItems, built afresh and retried a bounded number of
//     times when it collides with a concurrent transaction (then
//     Contention).
//   - Empty: one Scan of one item.
//
// The IAM actions these need on the table are dynamodb:GetItem,
// BatchGetItem, Query, PutItem, DeleteItem and ConditionCheckItem (a
// transaction is authorised item by item), and Scan for Empty.
//
// Transport failures, throttling and 5xx answers are retried by the AWS
// SDK's own retryer (the client's); the driver retries only what the SDK
// does not: unprocessed batch keys and transaction conflicts. A write
// whose condition fails after the SDK retried an attempt that got no
// whole answer (a broken connection, a 5xx, a reply cut off) is
// Unavailable, not a failed condition: the first attempt may have been
// applied, and the retry may have found that very write.
//
// Errors: an ended context, the network, 5xx and throttling are
// Unavailable; a missing table, denied access and refused credentials are
// Misconfigured; a request DynamoDB finds invalid is Invalid; an item not
// in the form above is Corrupt. Messages name the table and keys, never a
// value; the SDK's error, with DynamoDB's request ID, is the cause.
//
// A reader of the table's DynamoDB stream (the event publisher) turns a
// record's image back into the kv.Item with StreamImageItem, the same
// reading as Get's, so that the item form stays the driver's.
//
// Erase is a plain delete: DynamoDB keeps no free pages a value could
// linger in, but point-in-time recovery and on-demand backups, if the
// table has them, keep copies of deleted items for their retention
// window.
//
// It imports pkg/kv and the AWS SDK for Go v2, whose DynamoDB client it
// reaches only through the narrow API interface, and aws-lambda-go's
// events package for the stream's record form.
package dynamo

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/mobius-secrets/mobius/pkg/kv"
)

// API is the part of the DynamoDB client the driver calls.
type API interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Driver is a kv.Driver on one DynamoDB table. It is safe for concurrent
// use.
type Driver struct {
	api   API
	table string
	// attempts bounds the calls made for one transaction that keeps
	// colliding with concurrent ones, and the BatchGetItem calls in a row
	// that process none of their keys.
	attempts int
	// backoff is the longest wait before the retry after the given failed
	// attempt (0-based); the wait is drawn at random below it.
	backoff func(attempt int) time.Duration
}

var _ kv.Driver = (*Driver)(nil)

// Option tunes a Driver.
type Option func(*Driver)

// WithAttempts bounds how often the driver calls DynamoDB for one
// transaction that collides with concurrent ones, or for batch keys left
// unprocessed (8 by default; at least 1).
func WithAttempts(n int) Option { return func(d *Driver) { d.attempts = max(n, 1) } }

// WithBackoff sets the longest wait before the retry that follows failed
// attempt n (0-based); the wait is drawn uniformly below it. By default it
// doubles from 10 ms up to 500 ms.
func WithBackoff(f func(n int) time.Duration) Option { return func(d *Driver) { d.backoff = f } }

func defaultBackoff(n int) time.Duration {
	return min(10*time.Millisecond<<min(n, 10), 500*time.Millisecond)
}

// New returns a Driver on the table, which must exist with the schema of
// TableSchema (see CreateTable).
func New(api API, table string, opts ...Option) *Driver {
	d := &Driver{api: api, table: table, attempts: 8, backoff: defaultBackoff}
	for _, o := range opts {
		o(d)
	}
	return d
}

// wait sleeps before the retry that follows failed attempt n: a random
// part of d.backoff(n) (full jitter), or until ctx ends.
func (d *Driver) wait(ctx context.Context, op string, n int) error {
	limit := d.backoff(n)
	if limit <= 0 {
		return kv.ContextError(ctx, op)
	}
	t := time.NewTimer(rand.N(limit) + 1)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return kv.ContextError(ctx, op)
	case <-t.C:
		return nil
	}
}

// Empty reports whether the table holds no item at all: one Scan of at
// most one item, projecting only its partition key.
func (d *Driver) Empty(ctx context.Context) (bool, error) {
	if err := kv.ContextError(ctx, "Empty"); err != nil {
		return false, err
	}
	res, err := d.api.Scan(ctx, &dynamodb.ScanInput{
		TableName:                aws.String(d.table),
		Limit:                    aws.Int32(1),
		ProjectionExpression:     aws.String("#pk"),
		ExpressionAttributeNames: map[string]string{"#pk": PartitionKey},
		ConsistentRead:           aws.Bool(true),
	})
	if err != nil {
		return false, d.fail(ctx, "Empty", "Scan", err)
	}
	return len(res.Items) == 0, nil
}
