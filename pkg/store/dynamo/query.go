package dynamo

import (
	"context"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/kv"
)

// Query implements kv.Driver: consistent Query calls, page after page
// (DynamoDB stops a page at 1 MB), until q.Limit items or the end of the
// range.
func (d *Driver) Query(ctx context.Context, q kv.Query) ([]kv.Item, error) {
	if err := kv.ContextError(ctx, "Query"); err != nil {
		return nil, err
	}
	if err := kv.CheckQuery(q); err != nil {
		return nil, err
	}
	cond, inclusive, empty := keyCondition(q)
	out := []kv.Item{}
	if empty {
		return out, nil
	}
	var start map[string]types.AttributeValue
	for {
		need := q.Limit - len(out)
		if inclusive {
			// One more, so that the item at After, which BETWEEN
			// includes, does not cost another call.
			need++
		}
		limit := int32(min(need, math.MaxInt32))
		res, err := d.api.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(d.table),
			KeyConditionExpression:    aws.String(cond.text),
			ExpressionAttributeNames:  cond.names,
			ExpressionAttributeValues: cond.values,
			ConsistentRead:            aws.Bool(true),
			ScanIndexForward:          aws.Bool(!q.Reverse),
			Limit:                     aws.Int32(limit),
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return nil, d.fail(ctx, "Query", "Query", err)
		}
		for _, m := range res.Items {
			it, err := decode("Query", m)
			if err != nil {
				return nil, err
			}
			// The key condition selects exactly the range but for an
			// inclusive bound; filtering by the reference rule keeps the
			// two in agreement whatever the service returns.
			if it.Partition != q.Partition || !q.InRange(it.Sort) {
				continue
			}
			out = append(out, it)
			if len(out) == q.Limit {
				return out, nil
			}
		}
		if len(res.LastEvaluatedKey) == 0 {
			return out, nil
		}
		start = res.LastEvaluatedKey
	}
}

// keyCondition returns the key condition that selects q's range, whether
// it also selects the item at q.After (inclusive), or empty if the range
// can hold no sort key (and no call is needed).
//
// DynamoDB takes one condition on the sort key, and refuses an
// ExclusiveStartKey outside the key condition, so Prefix and After are
// combined here: After below the prefix range leaves the prefix alone,
// After inside it narrows it with BETWEEN (inclusive: the item at After
// itself is dropped by the caller's filter), After beyond it leaves
// nothing.
func keyCondition(q kv.Query) (e expr, inclusive, empty bool) {
	e = expr{
		text:   "#pk = :pk",
		names:  map[string]string{"#pk": PartitionKey},
		values: map[string]types.AttributeValue{":pk": str(q.Partition)},
	}
	sortOn := func(text string, vals ...string) expr {
		e.text += " AND " + text
		e.names["#sk"] = SortKey
		for i, v := range vals {
			e.values[[]string{":a", ":b"}[i]] = str(v)
		}
		return e
	}
	p, a := q.Prefix, q.After
	switch {
	case p == "" && a == "":
		return e, false, false
	case p == "" && q.Reverse:
		return sortOn("#sk < :a", a), false, false
	case p == "":
		return sortOn("#sk > :a", a), false, false
	case a == "":
		return sortOn("begins_with(#sk, :a)", p), false, false
	}
	inside := strings.HasPrefix(a, p)
	if !q.Reverse {
		switch {
		case inside: // keys after a, up to the last with prefix p
			return sortOn("#sk BETWEEN :a AND :b", a, prefixEnd(p)), true, false
		case a < p: // every key with prefix p is after a
			return sortOn("begins_with(#sk, :a)", p), false, false
		default: // a is after every key with prefix p
			return expr{}, false, true
		}
	}
	switch {
	case inside && a == p: // p is the smallest key with prefix p
		return expr{}, false, true
	case inside: // keys from p to a; every key in [p, a) has prefix p
		return sortOn("#sk BETWEEN :a AND :b", p, a), true, false
	case a > p: // every key with prefix p is before a
		return sortOn("begins_with(#sk, :a)", p), false, false
	default: // a is before every key with prefix p
		return expr{}, false, true
	}
}

// prefixEnd returns the greatest valid sort key that starts with p: p
// filled up to MaxKeyBytes with the greatest UTF-8 sequences (U+10FFFF,
// then the greatest that fits). Every key with prefix p is at most it in
// byte order, which is DynamoDB's order of strings.
func prefixEnd(p string) string {
	var b strings.Builder
	b.WriteString(p)
	for b.Len()+utf8.UTFMax <= kv.MaxKeyBytes {
		b.WriteRune(utf8.MaxRune)
	}
	switch kv.MaxKeyBytes - b.Len() {
	case 3:
		b.WriteRune('\uFFFF')
	case 2:
		b.WriteRune('\u07FF')
	case 1:
		b.WriteRune('\u007F')
	}
	return b.String()
}
