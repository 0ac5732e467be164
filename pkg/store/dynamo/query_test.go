package dynamo_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/kv/memkv"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// pager is an API whose Query pages hold at most max items, as DynamoDB's
// do when 1 MB of items is reached, so that a small table exercises the
// driver's paging.
type pager struct {
	dynamo.API
	max     int32
	queries atomic.Int64
	starts  atomic.Int64 // queries with an ExclusiveStartKey
}

func (p *pager) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	p.queries.Add(1)
	if in.ExclusiveStartKey != nil {
		p.starts.Add(1)
	}
	cp := *in
	cp.Limit = aws.Int32(min(aws.ToInt32(in.Limit), p.max))
	return p.API.Query(ctx, &cp, opts...)
}

// The sort keys of the range tests: around prefixes "a", "ab" and "é"
// (multibyte), with neighbours on both sides and keys that extend them.
var rangeKeys = []string{
	"0", "a", "a0", "aa", "ab", "ab0", "abc", "abd", "ab\u00ff", "ab\U0010FFFF", "ab\U0010FFFFz", "ac", "b",
	"z", "\u00e9", "\u00e9a", "\u00e9\U0010FFFF", "\u00ea", "\U0010FFFF",
}

// Every combination of Prefix, After, Reverse and Limit returns exactly
// what the reference driver returns, in pages of any size: After below,
// inside, at and above the prefix range, and not starting with the prefix.
func TestQueryRanges(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		p := &pager{max: 2}
		e := newEnv(t, b, envOpts{wrap: func(api dynamo.API) dynamo.API { p.API = api; return p }})
		ref := memkv.New()
		var ops []kv.Op
		for i, sk := range rangeKeys {
			ops = append(ops, kv.Put(kv.Item{Key: key("r", sk), Value: []byte(sk), Rev: int64(i)}, kv.Cond{}))
		}
		// Neighbouring partitions, which no query may reach.
		ops = append(ops, kv.Put(item("q", "a", "x"), kv.Cond{}), kv.Put(item("r0", "a", "x"), kv.Cond{}))
		e.commit(ops...)
		if err := ref.Commit(e.ctx, ops...); err != nil {
			t.Fatal(err)
		}
		prefixes := []string{"", "a", "ab", "\u00e9", "b", "abcd", "zz"}
		afters := []string{"", "0", "a", "a0", "aa", "ab", "abc", "ab\U0010FFFF", "ac", "b", "\u00e9", "\u00e9\U0010FFFF", "\U0010FFFF\U0010FFFF"}
		n := 0
		for _, prefix := range prefixes {
			for _, after := range afters {
				for _, rev := range []bool{false, true} {
					for _, limit := range []int{1, 3, 100} {
						q := kv.Query{Partition: "r", Prefix: prefix, After: after, Reverse: rev, Limit: limit}
						want, err := ref.Query(e.ctx, q)
						if err != nil {
							t.Fatal(err)
						}
						got, err := e.d.Query(e.ctx, q)
						if err != nil {
							t.Fatalf("Query %+v: %v", q, err)
						}
						if g, w := sorts(got), sorts(want); !slices.Equal(g, w) {
							t.Errorf("Query %+v:\n got %q\nwant %q", q, g, w)
						}
						for _, it := range got {
							if string(it.Value) != it.Sort || it.Rev != int64(slices.Index(rangeKeys, it.Sort)) {
								t.Errorf("Query %+v: item %q read back as %q rev %d", q, it.Sort, it.Value, it.Rev)
							}
						}
						n += len(want)
					}
				}
			}
		}
		if n < 500 || p.starts.Load() < 100 {
			t.Fatalf("%d items over %d queries, %d of them continued pages: too little to prove anything", n, p.queries.Load(), p.starts.Load())
		}
	})
}

func sorts(items []kv.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Sort
	}
	return out
}

// A query over items that fill several real pages follows
// LastEvaluatedKey to the end of the range and stops at Limit.
func TestQueryLargePages(t *testing.T) {
	forEach(t, func(t *testing.T, b backend) {
		e := newEnv(t, b, envOpts{})
		val := []byte(strings.Repeat("x", kv.MaxValueBytes))
		var want []string
		for i := range 8 {
			sk := fmt.Sprintf("k%d", i)
			want = append(want, sk)
			e.commit(kv.Put(kv.Item{Key: key("big", sk), Value: val}, kv.Cond{}))
		}
		for _, q := range []kv.Query{
			{Partition: "big", Limit: 100},
			{Partition: "big", Limit: 100, Reverse: true},
			{Partition: "big", Limit: 5, After: "k1"},
		} {
			e.calls.Reset()
			got, err := e.d.Query(e.ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			w := slices.Clone(want)
			if q.Reverse {
				slices.Reverse(w)
			}
			if q.After != "" {
				w = w[2:7]
			}
			if !slices.Equal(sorts(got), w) {
				t.Errorf("Query %+v: %q, want %q", q, sorts(got), w)
			}
			// 8 items of 350 KB fill several pages of 1 MB on DynamoDB and
			// moto; minidyn has no page size and answers in one page.
			n := e.calls.Counts()["DynamoDB.Query"]
			if b.name == "moto" && n < 3 {
				t.Errorf("Query %+v: %d Query calls, want a page per 1 MB", q, n)
			}
			t.Logf("Query %+v: %d Query calls", q, n)
		}
	})
}
