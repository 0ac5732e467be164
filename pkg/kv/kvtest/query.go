package kvtest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

var queryCases = []testCase{
	// DynamoDB orders sort keys by their UTF-8 bytes: not by UTF-16 (Java, JavaScript), a collation, case or number.
	{"ByteOrder", testQueryOrder},
	// begins_with on the sort key: a prefix that is a whole sort key, a prefix nothing has, no prefix.
	{"Prefix", testQueryPrefix},
	// A key condition takes one range test: Prefix and After together need a filter, which DynamoDB applies after Limit.
	{"After", testQueryAfter},
	// DynamoDB's Limit ends a page with LastEvaluatedKey even when nothing follows.
	{"Limit", testQueryLimit},
	// bbolt keys that join partition and sort key, or scan a partition by prefix, mix "P#a" with "P#ab".
	{"PartitionsIsolated", testQueryPartitions},
	// DynamoDB's time to live deletes within days: reads return expired items until then, always.
	{"ExpiredIncluded", testQueryExpired},
	// DynamoDB's Query returns at most 1 MB a call and says where to go on (LastEvaluatedKey).
	{"OverOneMegabyte", testQueryLarge},
}

func testQueryOrder(t *testing.T, d kv.Driver) {
	// In byte order. ～ (U+FF5E) is before 𝄞 (U+1D11E) in UTF-8 and after it in UTF-16.
	ordered := []string{
		"#", "-", "/", "0", "10", "9", "A", "B", "Z", "_", "a", "a#b", "a-", "a0", "aA", "a_", "aa", "ab",
		"z", "~", "\x7f", "é", "€", "～", "𝄞",
	}
	for i := 1; i < len(ordered); i++ {
		if ordered[i-1] >= ordered[i] {
			t.Fatalf("the suite's own list is not in byte order at %q, %q", ordered[i-1], ordered[i])
		}
	}
	// Stored in an order that is neither.
	var items []kv.Item
	for i := range ordered {
		sk := ordered[(i*7)%len(ordered)]
		items = append(items, item("order", sk, "v"+sk))
	}
	store(t, d, items...)
	wantSorts(t, "ascending", query(t, d, kv.Query{Partition: "order", Limit: 100}), ordered...)
	rev := slices.Clone(ordered)
	slices.Reverse(rev)
	wantSorts(t, "descending", query(t, d, kv.Query{Partition: "order", Reverse: true, Limit: 100}), rev...)
	wantSorts(t, "prefix a", query(t, d, kv.Query{Partition: "order", Prefix: "a", Limit: 100}),
		"a", "a#b", "a-", "a0", "aA", "a_", "aa", "ab")
	wantSorts(t, "descending, after é, limit 3", query(t, d, kv.Query{Partition: "order", After: "é", Reverse: true, Limit: 3}),
		"\x7f", "~", "z")
}

// abc stores a1..a3, b, b1, b2, b10, b3, c1, c2 in partition "abc".
func abc(t *testing.T, d kv.Driver) {
	t.Helper()
	var items []kv.Item
	for _, sk := range []string{"c2", "a1", "b10", "b", "a3", "b2", "c1", "b3", "a2", "b1"} {
		items = append(items, item("abc", sk, "v"+sk))
	}
	store(t, d, items...)
}

func testQueryPrefix(t *testing.T, d kv.Driver) {
	abc(t, d)
	for _, c := range []struct {
		name string
		q    kv.Query
		want []string
	}{
		{"prefix b", kv.Query{Prefix: "b"}, []string{"b", "b1", "b10", "b2", "b3"}},
		{"prefix b, descending", kv.Query{Prefix: "b", Reverse: true}, []string{"b3", "b2", "b10", "b1", "b"}},
		{"prefix b1", kv.Query{Prefix: "b1"}, []string{"b1", "b10"}},
		{"prefix b10, a whole key", kv.Query{Prefix: "b10"}, []string{"b10"}},
		{"prefix bz, nothing", kv.Query{Prefix: "bz"}, nil},
		{"prefix 0, before everything", kv.Query{Prefix: "0"}, nil},
		{"prefix d, after everything", kv.Query{Prefix: "d"}, nil},
		{"no prefix", kv.Query{}, []string{"a1", "a2", "a3", "b", "b1", "b10", "b2", "b3", "c1", "c2"}},
		{"no prefix, descending", kv.Query{Reverse: true}, []string{"c2", "c1", "b3", "b2", "b10", "b1", "b", "a3", "a2", "a1"}},
	} {
		c.q.Partition, c.q.Limit = "abc", 100
		wantSorts(t, c.name, query(t, d, c.q), c.want...)
	}
}

func testQueryAfter(t *testing.T, d kv.Driver) {
	abc(t, d)
	b := []string{"b", "b1", "b10", "b2", "b3"}
	for _, c := range []struct {
		name  string
		q     kv.Query
		want  []string
		limit int
	}{
		{"no bound", kv.Query{Prefix: "b"}, b, 0},
		{"after a, below the prefix", kv.Query{Prefix: "b", After: "a"}, b, 0},
		{"after a2, below the prefix, between items", kv.Query{Prefix: "b", After: "a2"}, b, 0},
		{"after b, equal to the prefix and to an item", kv.Query{Prefix: "b", After: "b"}, b[1:], 0},
		{"after b1, an item", kv.Query{Prefix: "b", After: "b1"}, b[2:], 0},
		{"after b15, inside the range", kv.Query{Prefix: "b", After: "b15"}, b[3:], 0},
		{"after b3, the last item", kv.Query{Prefix: "b", After: "b3"}, nil, 0},
		{"after c, above the prefix", kv.Query{Prefix: "b", After: "c"}, nil, 0},
		{"after b0, not an item, prefix b1", kv.Query{Prefix: "b1", After: "b0"}, []string{"b1", "b10"}, 0},

		{"descending, after c, above the prefix", kv.Query{Prefix: "b", After: "c", Reverse: true}, []string{"b3", "b2", "b10", "b1", "b"}, 0},
		{"descending, after zz, far above", kv.Query{Prefix: "b", After: "zz", Reverse: true}, []string{"b3", "b2", "b10", "b1", "b"}, 0},
		{"descending, after b3, an item", kv.Query{Prefix: "b", After: "b3", Reverse: true}, []string{"b2", "b10", "b1", "b"}, 0},
		{"descending, after b15, inside the range", kv.Query{Prefix: "b", After: "b15", Reverse: true}, []string{"b10", "b1", "b"}, 0},
		{"descending, after b1", kv.Query{Prefix: "b", After: "b1", Reverse: true}, []string{"b"}, 0},
		{"descending, after b, equal to the prefix", kv.Query{Prefix: "b", After: "b", Reverse: true}, nil, 0},
		{"descending, after a, below the prefix", kv.Query{Prefix: "b", After: "a", Reverse: true}, nil, 0},

		{"no prefix, after a3", kv.Query{After: "a3"}, []string{"b", "b1", "b10", "b2", "b3", "c1", "c2"}, 0},
		{"no prefix, descending, after b", kv.Query{After: "b", Reverse: true}, []string{"a3", "a2", "a1"}, 0},

		// With a Limit smaller than the items between After and the prefix range.
		{"after a, below the prefix, limit 2", kv.Query{Prefix: "b", After: "a"}, []string{"b", "b1"}, 2},
		{"after 0, below everything, prefix c, limit 1", kv.Query{Prefix: "c", After: "0"}, []string{"c1"}, 1},
		{"descending, after zz, above the prefix, limit 2", kv.Query{Prefix: "b", After: "zz", Reverse: true}, []string{"b3", "b2"}, 2},
		{"descending, after zz, prefix a, limit 1", kv.Query{Prefix: "a", After: "zz", Reverse: true}, []string{"a3"}, 1},
		{"after b1, limit 2", kv.Query{Prefix: "b", After: "b1"}, []string{"b10", "b2"}, 2},
		{"descending, after b3, limit 2", kv.Query{Prefix: "b", After: "b3", Reverse: true}, []string{"b2", "b10"}, 2},
	} {
		c.q.Partition, c.q.Limit = "abc", 100
		if c.limit > 0 {
			c.q.Limit = c.limit
		}
		wantSorts(t, c.name, query(t, d, c.q), c.want...)
	}
}

func testQueryLimit(t *testing.T, d kv.Driver) {
	var items []kv.Item
	for i := range 5 {
		items = append(items, item("limit", fmt.Sprintf("k%d", i), "v"))
	}
	store(t, d, items...)
	all := []string{"k0", "k1", "k2", "k3", "k4"}
	for _, c := range []struct {
		limit   int
		reverse bool
		want    []string
	}{
		{1, false, all[:1]},
		{4, false, all[:4]},
		{5, false, all},
		{6, false, all},
		{1000, false, all},
		{1, true, []string{"k4"}},
		{5, true, []string{"k4", "k3", "k2", "k1", "k0"}},
		{6, true, []string{"k4", "k3", "k2", "k1", "k0"}},
	} {
		q := kv.Query{Partition: "limit", Limit: c.limit, Reverse: c.reverse}
		wantSorts(t, fmt.Sprintf("limit %d, reverse %t", c.limit, c.reverse), query(t, d, q), c.want...)
	}
}

func testQueryPartitions(t *testing.T, d kv.Driver) {
	// Each pair joins to "P#ab1" without a separator, or with "/" or "#".
	items := []kv.Item{
		item("P#a", "b1", "P#a b1"),
		item("P#ab", "1", "P#ab 1"),
		item("P#", "ab1", "P# ab1"),
		item("P", "#ab1", "P #ab1"),
		item("P#a", "b/1", "P#a b/1"),
		item("P#a/b", "1", "P#a/b 1"),
		item("P#a", "b#1", "P#a b#1"),
		item("P#a#b", "1", "P#a#b 1"),
	}
	store(t, d, items...)
	for _, it := range items {
		wantItems(t, "Get "+it.Key.String(), get(t, d, it.Key), it)
	}
	wantItems(t, "Query P#a", query(t, d, kv.Query{Partition: "P#a", Limit: 100}), items[6], items[4], items[0])
	wantItems(t, "Query P#a, prefix b1", query(t, d, kv.Query{Partition: "P#a", Prefix: "b1", Limit: 100}), items[0])
	wantItems(t, "Query P#a descending", query(t, d, kv.Query{Partition: "P#a", Reverse: true, Limit: 100}), items[0], items[4], items[6])
	wantItems(t, "Query P#ab", query(t, d, kv.Query{Partition: "P#ab", Limit: 100}), items[1])
	wantItems(t, "Query P#", query(t, d, kv.Query{Partition: "P#", Limit: 100}), items[2])
	wantItems(t, "Query P", query(t, d, kv.Query{Partition: "P", Limit: 100}), items[3])
	wantItems(t, "Query P#a/b", query(t, d, kv.Query{Partition: "P#a/b", Limit: 100}), items[5])
	wantItems(t, "Query P#a#b, descending", query(t, d, kv.Query{Partition: "P#a#b", Reverse: true, Limit: 100}), items[7])
	wantItems(t, "Query P#b, a partition nothing is in", query(t, d, kv.Query{Partition: "P#b", Limit: 100}))
	wantItems(t, "Query Q, no such partition", query(t, d, kv.Query{Partition: "Q", Limit: 100}))
	wantItems(t, "Get across partitions", get(t, d, key("P#a", "b1"), key("P#ab", "b1"), key("P#ab", "1"), key("P", "#ab")), items[0], items[1])
}

func testQueryExpired(t *testing.T, d kv.Driver) {
	items := []kv.Item{
		{Key: key("exp", "a"), Value: []byte("a"), Expires: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Key: key("exp", "b"), Value: []byte("b")},
		{Key: key("exp", "c"), Value: []byte("c"), Expires: time.Unix(0, 0)},
	}
	store(t, d, items...)
	wantItems(t, "Query", query(t, d, kv.Query{Partition: "exp", Limit: 10}), items...)
}

func testQueryLarge(t *testing.T, d kv.Driver) {
	const n = 12 // 12 values of 100 KiB: 1.2 MiB
	var items []kv.Item
	for i := range n {
		v := make([]byte, 100<<10)
		for j := range v {
			v[j] = byte(i*31 + j)
		}
		items = append(items, kv.Item{Key: key("big", fmt.Sprintf("k%02d", i)), Value: v, Rev: int64(i)})
	}
	store(t, d, append(items, item("big2", "k00", "other partition"), item("bi", "gk00", "other partition"))...)
	rev := slices.Clone(items)
	slices.Reverse(rev)
	wantItems(t, "the whole partition", query(t, d, kv.Query{Partition: "big", Limit: 100}), items...)
	wantItems(t, "the whole partition, descending", query(t, d, kv.Query{Partition: "big", Reverse: true, Limit: 100}), rev...)
	wantItems(t, "limit 11", query(t, d, kv.Query{Partition: "big", Limit: 11}), items[:11]...)
	wantItems(t, "limit 11, descending", query(t, d, kv.Query{Partition: "big", Reverse: true, Limit: 11}), rev[:11]...)
	wantItems(t, "after k00, limit 11", query(t, d, kv.Query{Partition: "big", After: "k00", Limit: 11}), items[1:12]...)
	wantItems(t, "prefix k, after k01", query(t, d, kv.Query{Partition: "big", Prefix: "k", After: "k01", Limit: 100}), items[2:]...)
	wantItems(t, "prefix k1", query(t, d, kv.Query{Partition: "big", Prefix: "k1", Limit: 100}), items[10:]...)
}
