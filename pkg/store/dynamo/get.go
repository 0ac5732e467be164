package dynamo

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/kv"
)

// batchGetMax is the most keys one BatchGetItem takes.
const batchGetMax = 100

// Get implements kv.Driver: one consistent GetItem for one key, consistent
// BatchGetItem calls of up to 100 keys for more.
func (d *Driver) Get(ctx context.Context, keys ...kv.Key) ([]kv.Item, error) {
	if err := kv.ContextError(ctx, "Get"); err != nil {
		return nil, err
	}
	uniq := make([]kv.Key, 0, len(keys))
	seen := make(map[kv.Key]bool, len(keys))
	for _, k := range keys {
		if err := kv.CheckKey(k); err != nil {
			return nil, err
		}
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
		}
	}
	switch len(uniq) {
	case 0:
		return []kv.Item{}, nil
	case 1:
		return d.getOne(ctx, uniq[0])
	}
	found := make(map[kv.Key]kv.Item, len(uniq))
	for start := 0; start < len(uniq); start += batchGetMax {
		if err := d.batchGet(ctx, uniq[start:min(start+batchGetMax, len(uniq))], found); err != nil {
			return nil, err
		}
	}
	out := make([]kv.Item, 0, len(found))
	for _, k := range uniq {
		if it, ok := found[k]; ok {
			out = append(out, it)
		}
	}
	return out, nil
}

func (d *Driver) getOne(ctx context.Context, k kv.Key) ([]kv.Item, error) {
	res, err := d.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(d.table), Key: keyOf(k), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, d.fail(ctx, "Get", "GetItem", err)
	}
	if len(res.Item) == 0 {
		return []kv.Item{}, nil
	}
	it, err := decode("Get", res.Item)
	if err != nil {
		return nil, err
	}
	if it.Key != k {
		return nil, kv.Errorf(kv.Corrupt, "Get", nil, "GetItem of %q answered another key", k.String())
	}
	return []kv.Item{it}, nil
}

// batchGet reads keys (at most batchGetMax) into found, asking again for
// the keys DynamoDB leaves unprocessed (over its 16 MB answer, or
// throttled) after a backoff that grows while answers process none, and
// giving up after d.attempts such answers in a row.
func (d *Driver) batchGet(ctx context.Context, keys []kv.Key, found map[kv.Key]kv.Item) error {
	asked := make(map[kv.Key]bool, len(keys))
	pending := make([]map[string]types.AttributeValue, len(keys))
	for i, k := range keys {
		asked[k] = true
		pending[i] = keyOf(k)
	}
	for idle := 0; ; {
		res, err := d.api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{
				d.table: {Keys: pending, ConsistentRead: aws.Bool(true)},
			},
		})
		if err != nil {
			return d.fail(ctx, "Get", "BatchGetItem", err)
		}
		for _, m := range res.Responses[d.table] {
			it, err := decode("Get", m)
			if err != nil {
				return err
			}
			if asked[it.Key] {
				found[it.Key] = it
			}
		}
		left := res.UnprocessedKeys[d.table].Keys
		if len(left) == 0 {
			return nil
		}
		if len(left) < len(pending) {
			idle = 0
		} else if idle++; idle >= d.attempts {
			return kv.Errorf(kv.Unavailable, "Get", nil,
				"DynamoDB left %d keys of table %q unprocessed %d times in a row (throttled)", len(left), d.table, idle)
		}
		if err := d.wait(ctx, "Get", max(idle-1, 0)); err != nil {
			return err
		}
		pending = left
	}
}
