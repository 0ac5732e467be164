package capacity_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/internal/capacity"
	"github.com/mobius-secrets/mobius/pkg/kv"
)

// table is a small in-memory DynamoDB for the rules' tests: it stores and
// returns items and evaluates no condition.
type table struct {
	items map[kv.Key]map[string]types.AttributeValue
}

func newTable() *table { return &table{items: map[kv.Key]map[string]types.AttributeValue{}} }

func key(it map[string]types.AttributeValue) kv.Key {
	return kv.Key{Partition: it["PK"].(*types.AttributeValueMemberS).Value, Sort: it["SK"].(*types.AttributeValueMemberS).Value}
}

func (t *table) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return &dynamodb.GetItemOutput{Item: t.items[key(in.Key)]}, nil
}

func (t *table) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
	for name, ka := range in.RequestItems {
		for _, k := range ka.Keys {
			if it, ok := t.items[key(k)]; ok {
				out.Responses[name] = append(out.Responses[name], it)
			}
		}
	}
	return out, nil
}

func (t *table) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	pk := in.ExpressionAttributeValues[":pk"].(*types.AttributeValueMemberS).Value
	out := &dynamodb.QueryOutput{}
	for k, it := range t.items {
		if k.Partition == pk {
			out.Items = append(out.Items, it)
		}
	}
	return out, nil
}

func (t *table) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	t.items[key(in.Item)] = in.Item
	return &dynamodb.PutItemOutput{}, nil
}

func (t *table) DeleteItem(_ context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	delete(t.items, key(in.Key))
	return &dynamodb.DeleteItemOutput{}, nil
}

func (t *table) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	for _, ti := range in.TransactItems {
		switch {
		case ti.Put != nil:
			t.items[key(ti.Put.Item)] = ti.Put.Item
		case ti.Delete != nil:
			delete(t.items, key(ti.Delete.Key))
		}
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

func (t *table) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return &dynamodb.ScanOutput{}, nil
}

// sized is an item of exactly size bytes by DynamoDB's rules: PK and SK
// strings and a binary "v" that fills the rest.
func sized(pk, sk string, size int) map[string]types.AttributeValue {
	fixed := len("PK") + len(pk) + len("SK") + len(sk) + len("v")
	if size < fixed {
		panic("sized: too small")
	}
	return map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: pk},
		"SK": &types.AttributeValueMemberS{Value: sk},
		"v":  &types.AttributeValueMemberB{Value: make([]byte, size-fixed)},
	}
}

func keyAV(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: pk}, "SK": &types.AttributeValueMemberS{Value: sk}}
}

const kb = 1024

// The sizes and units of the examples that DynamoDB's documentation gives
// for each rule.
func TestRules(t *testing.T) {
	ctx := context.Background()
	tbl := newTable()
	rec := capacity.NewRecorder(tbl)
	put := func(pk, sk string, size int) {
		t.Helper()
		if _, err := rec.PutItem(ctx, &dynamodb.PutItemInput{Item: sized(pk, sk, size)}); err != nil {
			t.Fatal(err)
		}
	}
	put("P", "3500", 3500)
	put("P", "10k", 10*kb)
	put("P", "8k", 8*kb)
	put("P", "1.5k", 1536)
	put("P", "6.5k", 6656)
	for i := range 10 {
		put("Q", fmt.Sprintf("%02d", i), 4178) // 10 items, 41,780 bytes together: 40.8 KB
	}
	for i := range 1500 {
		put("R", fmt.Sprintf("%04d", i), 64)
	}
	put("T", "3k", 3*kb)

	cases := []struct {
		name     string
		call     func() error
		rcu, wcu float64
		bytes    []int // the sizes of the items the call touched, in order
	}{
		{"GetItem of a 3,500-byte item rounds up to 4 KB", func() error {
			_, err := rec.GetItem(ctx, &dynamodb.GetItemInput{Key: keyAV("P", "3500"), ConsistentRead: aws.Bool(true)})
			return err
		}, 1, 0, []int{3500}},
		{"GetItem of a 10 KB item rounds up to 12 KB", func() error {
			_, err := rec.GetItem(ctx, &dynamodb.GetItemInput{Key: keyAV("P", "10k"), ConsistentRead: aws.Bool(true)})
			return err
		}, 3, 0, []int{10 * kb}},
		{"an eventually consistent read of 8 KB is half of 2 RCU", func() error {
			_, err := rec.GetItem(ctx, &dynamodb.GetItemInput{Key: keyAV("P", "8k")})
			return err
		}, 1, 0, []int{8 * kb}},
		{"a read of no item still costs one unit", func() error {
			_, err := rec.GetItem(ctx, &dynamodb.GetItemInput{Key: keyAV("P", "none"), ConsistentRead: aws.Bool(true)})
			return err
		}, 1, 0, []int{0}},
		{"BatchGetItem of 1.5 KB and 6.5 KB counts 4 KB + 8 KB", func() error {
			_, err := rec.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
				"t": {Keys: []map[string]types.AttributeValue{keyAV("P", "1.5k"), keyAV("P", "6.5k")}, ConsistentRead: aws.Bool(true)},
			}})
			return err
		}, 3, 0, []int{1536, 6656}},
		{"Query of 10 items of 40.8 KB together rounds to 44 KB", func() error {
			_, err := rec.Query(ctx, &dynamodb.QueryInput{ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "Q"}}, ConsistentRead: aws.Bool(true)})
			return err
		}, 11, 0, nil},
		{"Query of 1,500 items of 64 bytes counts 96 KB", func() error {
			_, err := rec.Query(ctx, &dynamodb.QueryInput{ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "R"}}, ConsistentRead: aws.Bool(true)})
			return err
		}, 24, 0, nil},
		{"a Query that returns nothing costs the minimum", func() error {
			_, err := rec.Query(ctx, &dynamodb.QueryInput{ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "empty"}}, ConsistentRead: aws.Bool(true)})
			return err
		}, 1, 0, nil},
		{"PutItem of 500 bytes rounds up to 1 KB", func() error {
			_, err := rec.PutItem(ctx, &dynamodb.PutItemInput{Item: sized("W", "500", 500)})
			return err
		}, 0, 1, []int{500}},
		{"PutItem of 1.6 KB rounds up to 2 KB", func() error {
			_, err := rec.PutItem(ctx, &dynamodb.PutItemInput{Item: sized("W", "1.6k", 1639)})
			return err
		}, 0, 2, []int{1639}},
		{"PutItem that replaces a 3 KB item with 500 bytes counts the larger", func() error {
			_, err := rec.PutItem(ctx, &dynamodb.PutItemInput{Item: sized("T", "3k", 500)})
			return err
		}, 0, 3, []int{3 * kb}},
		{"DeleteItem counts the deleted item", func() error {
			_, err := rec.DeleteItem(ctx, &dynamodb.DeleteItemInput{Key: keyAV("W", "1.6k")})
			return err
		}, 0, 2, []int{1639}},
		{"a transaction of three 500-byte puts takes 6 WCU", func() error {
			_, err := rec.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{Put: &types.Put{Item: sized("X", "a", 500)}}, {Put: &types.Put{Item: sized("X", "b", 500)}}, {Put: &types.Put{Item: sized("X", "c", 500)}},
			}})
			return err
		}, 0, 6, []int{500, 500, 500}},
		{"a ConditionCheck is a transactional read of the item it checks", func() error {
			_, err := rec.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{ConditionCheck: &types.ConditionCheck{Key: keyAV("W", "500"), ConditionExpression: aws.String("attribute_exists(PK)")}},
				{Delete: &types.Delete{Key: keyAV("X", "a")}},
			}})
			return err
		}, 2, 2, []int{500, 500}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec.Reset()
			if err := c.call(); err != nil {
				t.Fatal(err)
			}
			calls := rec.Calls()
			if len(calls) != 1 {
				t.Fatalf("%d calls recorded, want 1", len(calls))
			}
			if rcu, wcu := capacity.Sum(calls); rcu != c.rcu || wcu != c.wcu {
				t.Errorf("%g RCU and %g WCU, want %g and %g", rcu, wcu, c.rcu, c.wcu)
			}
			if c.bytes != nil {
				var got []int
				for _, a := range calls[0].Items {
					got = append(got, a.Bytes)
				}
				if fmt.Sprint(got) != fmt.Sprint(c.bytes) {
					t.Errorf("item sizes %v, want %v", got, c.bytes)
				}
			}
		})
	}
}

func TestItemSize(t *testing.T) {
	cases := []struct {
		name string
		item map[string]types.AttributeValue
		want int
	}{
		{"a string is its name and its UTF-8 bytes", map[string]types.AttributeValue{"name": &types.AttributeValueMemberS{Value: "héllo"}}, 4 + 6},
		{"a binary is its name and its raw bytes, not base64", map[string]types.AttributeValue{"v": &types.AttributeValueMemberB{Value: make([]byte, 300)}}, 1 + 300},
		{"a number is a byte per two significant digits and one", map[string]types.AttributeValue{"rev": &types.AttributeValueMemberN{Value: "12345"}}, 3 + 3 + 1},
		{"trailing and leading zeros are trimmed", map[string]types.AttributeValue{"n": &types.AttributeValueMemberN{Value: "00120000"}}, 1 + 1 + 1},
		{"a boolean is one byte", map[string]types.AttributeValue{"ok": &types.AttributeValueMemberBOOL{Value: true}}, 2 + 1},
		{"a map has 3 bytes of overhead", map[string]types.AttributeValue{"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"a": &types.AttributeValueMemberS{Value: "xy"}}}}, 1 + 3 + 1 + 2},
		{"an empty list is its name and 3 bytes", map[string]types.AttributeValue{"list": &types.AttributeValueMemberL{}}, 4 + 3},
		{"attributes add up", map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "P#acme"}, "SK": &types.AttributeValueMemberS{Value: "S#x"}}, 2 + 6 + 2 + 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := capacity.ItemSize(c.item); got != c.want {
				t.Errorf("ItemSize = %d, want %d", got, c.want)
			}
		})
	}
}

func TestSustained(t *testing.T) {
	cases := []struct {
		name string
		load map[string]capacity.Charge
		rate float64
		by   string
	}{
		{"one read of a small item", map[string]capacity.Charge{"P#acme": {RCU: 1}}, 3000, "P#acme (reads)"},
		{"a write limits before the reads", map[string]capacity.Charge{"P#acme": {RCU: 1}, "A#x": {WCU: 1}}, 1000, "A#x (writes)"},
		{"a 64 KiB read", map[string]capacity.Charge{"P#acme#S#x": {RCU: 17}}, 3000.0 / 17, "P#acme#S#x (reads)"},
		{"reads and writes of one partition are limited apart", map[string]capacity.Charge{"P": {RCU: 2, WCU: 0.5}}, 1500, "P (reads)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rate, by := capacity.Sustained(c.load)
			if rate != c.rate || !strings.HasPrefix(by, c.by) {
				t.Errorf("Sustained = %g (%s), want %g (%s)", rate, by, c.rate, c.by)
			}
		})
	}
}
