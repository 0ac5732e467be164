package kvtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

var limitCases = []testCase{
	// Commit takes 1 to kv.MaxOps ops (TransactWriteItems: 1 to 100 actions); bbolt has no limit.
	{"OpCount", testLimitOpCount},
	// TransactWriteItems refuses two actions on one item; memkv and bbolt would apply both.
	{"TwoOpsOnOneKey", testLimitTwoOps},
	// DynamoDB refuses empty and non-UTF-8 keys, bbolt takes any bytes; 0 stays free for encodings; lengths are in bytes.
	{"KeyRules", testLimitKeys},
	// The same rules for a Query's partition, prefix and bound.
	{"QueryRules", testLimitQuery},
	// DynamoDB's 400 KB item counts keys and attribute names as well as the value: the largest item fits.
	{"LargestItemAccepted", testLimitLargestItem},
	// kv.MaxValueBytes, under DynamoDB's 400 KB item; bbolt has no limit.
	{"ValueBytes", testLimitValueBytes},
	// kv.MaxCommitBytes, under TransactWriteItems' 4 MB with keys and attribute names; bbolt has no limit.
	{"CommitBytes", testLimitCommitBytes},
	// An op without a kind, or Erase on anything but a delete, is a caller's bug, refused alike by every driver.
	{"MalformedOps", testLimitMalformed},
}

var contextCases = []testCase{
	// An SDK call, a bbolt transaction or a map lookup alike: an ended context is Unavailable and writes nothing.
	{"Ended", testContextEnded},
}

// puts returns n puts of new items in partition p.
func puts(p string, n int) ([]kv.Op, []kv.Key) {
	var ops []kv.Op
	var keys []kv.Key
	for i := range n {
		k := key(p, fmt.Sprintf("k%03d", i))
		ops = append(ops, kv.Put(kv.Item{Key: k, Value: []byte("v")}, always))
		keys = append(keys, k)
	}
	return ops, keys
}

func testLimitOpCount(t *testing.T, d kv.Driver) {
	wantCode(t, "a commit of no ops", d.Commit(t.Context()), kv.Invalid)
	ops, keys := puts("over", kv.MaxOps+1)
	wantCode(t, "a commit of MaxOps+1 puts", d.Commit(t.Context(), ops...), kv.Invalid)
	wantAbsent(t, d, "the puts of a refused commit", keys...)

	store(t, d, item("at", "del", "v"), item("at", "erase", "v"), item("at", "check", "v"))
	ops, keys = puts("at", kv.MaxOps-3)
	ops = append(ops,
		kv.Delete(key("at", "del"), kv.IfExists()),
		kv.Erase(key("at", "erase"), kv.IfRev(0)),
		kv.Check(key("at", "check"), kv.IfExists()))
	if err := d.Commit(t.Context(), ops...); err != nil {
		t.Fatalf("a commit of exactly MaxOps ops (puts, a delete, an erase and a check): %v", err)
	}
	if got := get(t, d, keys...); len(got) != len(keys) {
		t.Fatalf("a commit of MaxOps ops stored %d of its %d puts", len(got), len(keys))
	}
	wantItems(t, "the delete and the erase of MaxOps ops", get(t, d, key("at", "del"), key("at", "erase"), key("at", "check")), item("at", "check", "v"))
}

func testLimitTwoOps(t *testing.T, d kv.Driver) {
	a := item("p", "a", "A")
	store(t, d, a)
	for _, c := range []struct {
		name string
		ops  []kv.Op
	}{
		{"two puts", []kv.Op{kv.Put(item("p", "b", "B"), always), kv.Put(item("p", "c", "C"), always), kv.Put(item("p", "b", "B2"), always)}},
		{"a put and a check", []kv.Op{kv.Put(item("p", "b", "B"), always), kv.Check(key("p", "b"), kv.IfAbsent(time.Time{}))}},
		{"a delete and a put", []kv.Op{kv.Delete(a.Key, always), kv.Put(item("p", "b", "B"), always), kv.Put(item("p", "a", "A2"), always)}},
		{"two checks", []kv.Op{kv.Check(a.Key, kv.IfExists()), kv.Check(a.Key, kv.IfRev(0))}},
		{"two erases", []kv.Op{kv.Erase(a.Key, always), kv.Erase(a.Key, always)}},
	} {
		wantCode(t, c.name+" on one key", d.Commit(t.Context(), c.ops...), kv.Invalid)
		wantItems(t, c.name+" on one key, refused", get(t, d, a.Key, key("p", "b"), key("p", "c")), a)
	}
}

// badKeys break the rules of kv.Key.
var badKeys = []struct {
	name string
	key  kv.Key
}{
	{"empty partition", key("", "s")},
	{"empty sort key", key("p", "")},
	{"0 byte in the partition", key("p\x00q", "s")},
	{"0 byte in the sort key", key("p", "s\x00")},
	{"invalid UTF-8 in the partition", key("p\xff", "s")},
	{"a cut UTF-8 sequence in the sort key", key("p", "s\xc3")},
	{"an encoded surrogate in the sort key", key("p", "\xed\xa0\x80")},
	{"partition of MaxKeyBytes+1", key(strings.Repeat("p", kv.MaxKeyBytes+1), "s")},
	{"sort key of MaxKeyBytes+1", key("p", strings.Repeat("s", kv.MaxKeyBytes+1))},
	{"sort key of MaxKeyBytes+2 bytes in fewer characters", key("p", strings.Repeat("é", kv.MaxKeyBytes/2+1))},
}

func testLimitKeys(t *testing.T, d kv.Driver) {
	good := item("p", "good", "v")
	for _, c := range badKeys {
		bad := c.key
		wantCode(t, c.name+": a put", d.Commit(t.Context(), kv.Put(good, always), kv.Put(kv.Item{Key: bad, Value: []byte("v")}, always)), kv.Invalid)
		wantCode(t, c.name+": a delete", d.Commit(t.Context(), kv.Put(good, always), kv.Delete(bad, always)), kv.Invalid)
		wantCode(t, c.name+": a check", d.Commit(t.Context(), kv.Check(bad, kv.IfAbsent(time.Time{})), kv.Put(good, always)), kv.Invalid)
		wantAbsent(t, d, c.name+": the good item of the refused commits", good.Key)
		_, err := d.Get(t.Context(), good.Key, bad)
		wantCode(t, c.name+": a Get", err, kv.Invalid)
	}
}

func testLimitQuery(t *testing.T, d kv.Driver) {
	store(t, d, item("p", "a", "v"))
	for _, c := range badKeys {
		if kv.CheckKey(key(c.key.Partition, "s")) != nil {
			_, err := d.Query(t.Context(), kv.Query{Partition: c.key.Partition, Limit: 10})
			wantCode(t, c.name+": Query of that partition", err, kv.Invalid)
		}
		if s := c.key.Sort; s != "" && kv.CheckKey(key("p", s)) != nil {
			_, err := d.Query(t.Context(), kv.Query{Partition: "p", Prefix: s, Limit: 10})
			wantCode(t, c.name+": as a Query's prefix", err, kv.Invalid)
			_, err = d.Query(t.Context(), kv.Query{Partition: "p", After: s, Limit: 10})
			wantCode(t, c.name+": as a Query's bound", err, kv.Invalid)
			_, err = d.Query(t.Context(), kv.Query{Partition: "p", After: s, Reverse: true, Limit: 10})
			wantCode(t, c.name+": as a descending Query's bound", err, kv.Invalid)
		}
	}
	for _, limit := range []int{0, -1} {
		_, err := d.Query(t.Context(), kv.Query{Partition: "p", Limit: limit})
		wantCode(t, fmt.Sprintf("Query with limit %d", limit), err, kv.Invalid)
	}
}

// value returns n bytes that differ from one seed to the next.
func value(n int, seed byte) []byte {
	v := make([]byte, n)
	for i := range v {
		v[i] = seed + byte(i*7)
	}
	return v
}

func testLimitLargestItem(t *testing.T, d kv.Driver) {
	// 1024 bytes each: one byte a character, and two.
	k := key(strings.Repeat("p", kv.MaxKeyBytes), strings.Repeat("é", kv.MaxKeyBytes/2))
	it := kv.Item{Key: k, Value: value(kv.MaxValueBytes, 1), Rev: math.MinInt64, Expires: t0}
	commit(t, d, kv.Put(it, kv.IfAbsent(time.Time{})))
	wantItems(t, "Get of the largest item", get(t, d, k), it)
	wantItems(t, "Query of the largest item", query(t, d, kv.Query{Partition: k.Partition, Prefix: "é", After: "é", Limit: 2}), it)
	commit(t, d, kv.Check(k, kv.IfRev(math.MinInt64)))
	commit(t, d, kv.Erase(k, kv.IfRev(math.MinInt64)))
	wantAbsent(t, d, "the largest item, erased", k)
}

func testLimitValueBytes(t *testing.T, d kv.Driver) {
	other := item("p", "other", "v")
	over := kv.Item{Key: key("p", "over"), Value: value(kv.MaxValueBytes+1, 2)}
	wantCode(t, "a value of MaxValueBytes+1", d.Commit(t.Context(), kv.Put(other, always), kv.Put(over, always)), kv.Invalid)
	wantAbsent(t, d, "the items of the refused commit", other.Key, over.Key)
	at := kv.Item{Key: key("p", "at"), Value: value(kv.MaxValueBytes, 3)}
	commit(t, d, kv.Put(at, always))
	wantItems(t, "a value of exactly MaxValueBytes", get(t, d, at.Key), at)
}

// itemsOf returns puts of values totalling n bytes, each at most
// MaxValueBytes.
func itemsOf(p string, n int) []kv.Item {
	var items []kv.Item
	for i := 0; n > 0; i++ {
		size := min(n, kv.MaxValueBytes)
		items = append(items, kv.Item{Key: key(p, fmt.Sprintf("k%02d", i)), Value: value(size, byte(i))})
		n -= size
	}
	return items
}

func testLimitCommitBytes(t *testing.T, d kv.Driver) {
	for _, c := range []struct {
		name  string
		bytes int
		ok    bool
	}{
		{"MaxCommitBytes+1", kv.MaxCommitBytes + 1, false},
		{"exactly MaxCommitBytes", kv.MaxCommitBytes, true},
	} {
		p := fmt.Sprintf("commit-%d", c.bytes)
		items := itemsOf(p, c.bytes)
		var ops []kv.Op
		var keys []kv.Key
		for _, it := range items {
			ops = append(ops, kv.Put(it, kv.IfAbsent(time.Time{})))
			keys = append(keys, it.Key)
		}
		err := d.Commit(t.Context(), ops...)
		what := fmt.Sprintf("a commit of %d values totalling %s", len(ops), c.name)
		if !c.ok {
			wantCode(t, what, err, kv.Invalid)
			wantAbsent(t, d, what+", refused", keys...)
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		wantItems(t, what, get(t, d, keys...), items...)
	}
}

func testLimitMalformed(t *testing.T, d kv.Driver) {
	a := item("p", "a", "A")
	store(t, d, a)
	for _, c := range []struct {
		name string
		op   kv.Op
	}{
		{"an op without a kind", kv.Op{Item: item("p", "b", "B")}},
		{"an op of an unknown kind", kv.Op{Kind: kv.OpCheck + 10, Item: item("p", "b", "B")}},
		{"a put with Erase", kv.Op{Kind: kv.OpPut, Item: item("p", "b", "B"), Erase: true}},
		{"a check with Erase", kv.Op{Kind: kv.OpCheck, Item: kv.Item{Key: a.Key}, Erase: true}},
	} {
		wantCode(t, c.name, d.Commit(t.Context(), kv.Delete(a.Key, always), c.op), kv.Invalid)
		wantItems(t, c.name+", refused", get(t, d, a.Key, key("p", "b")), a)
	}
}

func testContextEnded(t *testing.T, d kv.Driver) {
	a := item("p", "a", "A")
	store(t, d, a)
	for _, c := range []struct {
		name  string
		ctx   func() context.Context
		cause error
	}{
		{"cancelled", func() context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return ctx
		}, context.Canceled},
		{"past its deadline", func() context.Context {
			ctx, cancel := context.WithDeadline(t.Context(), time.Unix(0, 0))
			t.Cleanup(cancel)
			return ctx
		}, context.DeadlineExceeded},
	} {
		ctx := c.ctx()
		check := func(call string, err error) {
			t.Helper()
			wantCode(t, call+" on a context "+c.name, err, kv.Unavailable)
			if !errors.Is(err, c.cause) {
				t.Fatalf("%s on a context %s: %v does not wrap %v", call, c.name, err, c.cause)
			}
		}
		_, err := d.Get(ctx, a.Key)
		check("Get", err)
		_, err = d.Query(ctx, kv.Query{Partition: "p", Limit: 10})
		check("Query", err)
		check("Commit", d.Commit(ctx, kv.Put(item("p", "b", "B"), always), kv.Delete(a.Key, always)))
		wantItems(t, "the store after a Commit on a context "+c.name, get(t, d, a.Key, key("p", "b")), a)
	}
}
