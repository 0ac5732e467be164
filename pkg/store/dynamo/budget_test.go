package dynamo_test

import (
	"fmt"
	"maps"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

type calls map[string]int

// want runs f and checks that it made exactly the SDK operations want
// (operations, not retry attempts, counted by an SDK middleware).
func (e *env) want(what string, want calls, f func() error) {
	e.t.Helper()
	e.calls.Reset()
	if err := f(); err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
	if got := e.calls.Counts(); !maps.Equal(got, want) {
		e.t.Errorf("%s made %v, want exactly %v", what, got, want)
	}
}

// Every method makes exactly the DynamoDB calls it is designed to make.
func TestCallBudget(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, envOpts{})
		ctx := e.ctx
		keys := make([]kv.Key, 250)
		for i := range keys {
			keys[i] = key("big", fmt.Sprintf("k%03d", i))
		}
		for i := 0; i < len(keys); i += kv.MaxOps {
			ops := []kv.Op{}
			for _, k := range keys[i:min(i+kv.MaxOps, len(keys))] {
				ops = append(ops, kv.Put(kv.Item{Key: k, Value: []byte("v")}, kv.IfAbsent(t0)))
			}
			e.want("Commit of 100 puts", calls{"DynamoDB.TransactWriteItems": 1}, func() error { return e.d.Commit(ctx, ops...) })
		}
		e.want("Commit of one Put", calls{"DynamoDB.PutItem": 1}, func() error {
			return e.d.Commit(ctx, kv.Put(item("p", "a", "1"), kv.IfAbsent(t0)))
		})
		e.want("Commit of one Delete", calls{"DynamoDB.DeleteItem": 1}, func() error {
			return e.d.Commit(ctx, kv.Delete(key("p", "a"), kv.IfExists()))
		})
		e.want("Commit of one Erase", calls{"DynamoDB.DeleteItem": 1}, func() error {
			return e.d.Commit(ctx, kv.Erase(key("p", "nothing"), kv.Cond{}))
		})
		e.want("Commit of 3 ops", calls{"DynamoDB.TransactWriteItems": 1}, func() error {
			return e.d.Commit(ctx, kv.Put(item("p", "a", "1"), kv.IfAbsent(t0)), kv.Put(item("p", "b", "2"), kv.Cond{}),
				kv.Check(key("big", "k000"), kv.IfExists()))
		})
		e.want("Commit of a lone Check", calls{"DynamoDB.TransactWriteItems": 1}, func() error {
			return e.d.Commit(ctx, kv.Check(key("p", "a"), kv.IfRev(1)))
		})
		e.want("Get of 1 key", calls{"DynamoDB.GetItem": 1}, func() error {
			_, err := e.d.Get(ctx, key("p", "a"))
			return err
		})
		e.want("Get of 1 key twice", calls{"DynamoDB.GetItem": 1}, func() error {
			_, err := e.d.Get(ctx, key("p", "a"), key("p", "a"))
			return err
		})
		e.want("Get of 2 keys", calls{"DynamoDB.BatchGetItem": 1}, func() error {
			_, err := e.d.Get(ctx, key("p", "a"), key("p", "b"))
			return err
		})
		e.want("Get of no key", calls{}, func() error {
			_, err := e.d.Get(ctx)
			return err
		})
		e.want("Get of 250 keys", calls{"DynamoDB.BatchGetItem": 3}, func() error {
			got, err := e.d.Get(ctx, keys...)
			if err == nil && len(got) != len(keys) {
				err = fmt.Errorf("%d items, want %d", len(got), len(keys))
			}
			return err
		})
		for _, q := range []kv.Query{
			{Partition: "p", Limit: 10},
			{Partition: "p", Limit: 1, After: "a"},
			{Partition: "big", Prefix: "k1", After: "k150", Limit: 10},
			{Partition: "big", Prefix: "k1", After: "k150", Limit: 10, Reverse: true},
		} {
			e.want(fmt.Sprintf("Query %+v", q), calls{"DynamoDB.Query": 1}, func() error {
				_, err := e.d.Query(ctx, q)
				return err
			})
		}
		e.want("Query of a range that holds nothing", calls{}, func() error {
			_, err := e.d.Query(ctx, kv.Query{Partition: "big", Prefix: "k1", After: "k2", Limit: 10})
			return err
		})
		e.want("Empty", calls{"DynamoDB.Scan": 1}, func() error {
			_, err := e.d.Empty(ctx)
			return err
		})
	})
}
