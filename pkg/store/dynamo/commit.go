package dynamo

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/kv"
)

// Commit implements kv.Driver: a lone Put or Delete is one PutItem or
// DeleteItem; anything else is one TransactWriteItems. Both are retried,
// up to d.attempts calls, while they collide with a concurrent
// transaction, and then fail with Contention.
func (d *Driver) Commit(ctx context.Context, ops ...kv.Op) error {
	if err := kv.ContextError(ctx, "Commit"); err != nil {
		return err
	}
	if err := kv.CheckCommit(ops); err != nil {
		return err
	}
	if len(ops) == 1 && ops[0].Kind != kv.OpCheck {
		return d.single(ctx, &ops[0])
	}
	return d.transact(ctx, ops)
}

// single writes one item with PutItem or DeleteItem.
func (d *Driver) single(ctx context.Context, op *kv.Op) error {
	c := condition(op.If)
	var tr attemptTrace
	call := "PutItem"
	do := func() error {
		_, err := d.api.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(d.table), Item: encode(&op.Item), ConditionExpression: c.textPtr(),
			ExpressionAttributeNames: c.names, ExpressionAttributeValues: c.values,
		}, tr.option)
		return err
	}
	if op.Kind == kv.OpDelete {
		call = "DeleteItem"
		do = func() error {
			_, err := d.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName: aws.String(d.table), Key: keyOf(op.Item.Key), ConditionExpression: c.textPtr(),
				ExpressionAttributeNames: c.names, ExpressionAttributeValues: c.values,
			}, tr.option)
			return err
		}
	}
	for n := 0; ; n++ {
		err := do()
		var ccf *types.ConditionalCheckFailedException
		var tce *types.TransactionConflictException
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ccf) && tr.maybeApplied:
			return d.maybeApplied(call, err)
		case errors.As(err, &ccf):
			return &kv.ConditionError{Index: 0, Key: op.Item.Key}
		case !errors.As(err, &tce):
			return d.fail(ctx, "Commit", call, err)
		case n+1 >= d.attempts:
			return d.contention(call, n+1, err)
		}
		// A transaction in flight holds the item; nothing was written.
		if err := d.wait(ctx, "Commit", n); err != nil {
			return err
		}
	}
}

// transact writes ops with one TransactWriteItems. Its input is built
// afresh for every call: the SDK gives each input a ClientRequestToken,
// and DynamoDB answers a repeated token with the first outcome, without
// evaluating the conditions again. The SDK's own retries of one call keep
// the token, so that DynamoDB answers a retry after a lost reply with the
// first attempt's success. A failed condition after such a retry is still
// reported as an unknown outcome, as for a single write: the token is
// only honoured for ten minutes, and not by every DynamoDB stand-in.
func (d *Driver) transact(ctx context.Context, ops []kv.Op) error {
	var tr attemptTrace
	for n := 0; ; n++ {
		_, err := d.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: d.transactItems(ops)}, tr.option)
		if err == nil {
			return nil
		}
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			return d.fail(ctx, "Commit", "TransactWriteItems", err)
		}
		i, reason := firstReason(tce.CancellationReasons)
		switch reason {
		case "TransactionConflict":
			// Another transaction held the item, whose condition was not
			// evaluated. Nothing was written.
			if n+1 >= d.attempts {
				return d.contention("TransactWriteItems", n+1, err)
			}
			if err := d.wait(ctx, "Commit", n); err != nil {
				return err
			}
			continue
		case "ConditionalCheckFailed":
			if tr.maybeApplied {
				return d.maybeApplied("TransactWriteItems", err)
			}
			if i < len(ops) {
				return &kv.ConditionError{Index: i, Key: ops[i].Item.Key}
			}
		case "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
			return kv.Errorf(kv.Unavailable, "Commit", err, "TransactWriteItems on table %q was throttled", d.table)
		case "ValidationError":
			return kv.Errorf(kv.Invalid, "Commit", err, "DynamoDB refused the transaction on table %q as invalid", d.table)
		}
		return kv.Errorf(kv.Unavailable, "Commit", err, "TransactWriteItems on table %q was cancelled", d.table)
	}
}

// maybeApplied is the error of a write whose condition failed after the
// SDK retried an attempt that got no answer (a 5xx or a broken
// connection): that attempt may have been applied, and the retry then
// found its own write. Reporting the failed condition would claim nothing
// was written.
func (d *Driver) maybeApplied(call string, err error) error {
	return kv.Errorf(kv.Unavailable, "Commit", err,
		"%s on table %q: an earlier attempt got no reply and may have been applied; the condition now fails", call, d.table)
}

func (d *Driver) contention(call string, calls int, err error) error {
	return kv.Errorf(kv.Contention, "Commit", err,
		"%s on table %q collided with concurrent transactions %d times", call, d.table, calls)
}

// firstReason returns the first reason of a cancelled transaction (one
// per item, in order) that is not "None", and its index. The items before
// it were evaluated and passed, so it decides: a failed condition there is
// the first failing operation; a conflict or throttling there means the
// rest cannot be told.
func firstReason(rs []types.CancellationReason) (int, string) {
	for i, r := range rs {
		if c := aws.ToString(r.Code); c != "" && c != "None" {
			return i, c
		}
	}
	return -1, ""
}

func (d *Driver) transactItems(ops []kv.Op) []types.TransactWriteItem {
	items := make([]types.TransactWriteItem, len(ops))
	table := aws.String(d.table)
	for i := range ops {
		op := &ops[i]
		c := condition(op.If)
		switch op.Kind {
		case kv.OpPut:
			items[i].Put = &types.Put{
				TableName: table, Item: encode(&op.Item), ConditionExpression: c.textPtr(),
				ExpressionAttributeNames: c.names, ExpressionAttributeValues: c.values,
			}
		case kv.OpDelete:
			items[i].Delete = &types.Delete{
				TableName: table, Key: keyOf(op.Item.Key), ConditionExpression: c.textPtr(),
				ExpressionAttributeNames: c.names, ExpressionAttributeValues: c.values,
			}
		case kv.OpCheck:
			if c.text == "" {
				// A ConditionCheck needs a condition; this one always
				// holds, and keeps the items aligned with ops.
				c = always
			}
			items[i].ConditionCheck = &types.ConditionCheck{
				TableName: table, Key: keyOf(op.Item.Key), ConditionExpression: aws.String(c.text),
				ExpressionAttributeNames: c.names, ExpressionAttributeValues: c.values,
			}
		}
	}
	return items
}
