package kvtest

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

var getCases = []testCase{
	// BatchGetItem answers only for the keys it found; no empty item for a missing one.
	{"MissingKeysLeftOut", testGetMissing},
	// BatchGetItem answers in any order, bbolt in key order: Get keeps the caller's.
	{"KeysOrderKept", testGetOrder},
	// BatchGetItem refuses a request with a key twice (ValidationException).
	{"RepeatedKeysReadOnce", testGetRepeated},
	// BatchGetItem refuses an empty request: no keys is no items, no error.
	{"NoKeys", testGetNoKeys},
	// DynamoDB string attributes mangle bytes that are not UTF-8; an empty value is still an item.
	{"ValuesRoundTrip", testGetValues},
	// DynamoDB numbers travel as decimal strings; a float64 on the way loses 2^53+1 and MaxInt64.
	{"RevRoundTrip", testGetRevs},
	// DynamoDB keeps numbers, bbolt bytes: expiry at millisecond precision, in UTC, zero kept apart from the Unix epoch.
	{"ExpiresRoundTrip", testGetExpires},
	// bbolt's values live only as long as their transaction, memkv's map is shared: readers get copies.
	{"ValuesAreCopies", testGetCopies},
	// BatchGetItem takes at most 100 keys a call.
	{"ManyKeys", testGetMany},
	// BatchGetItem returns at most 16 MB a call and leaves the rest in UnprocessedKeys.
	{"OverSixteenMegabytes", testGetLarge},
	// DynamoDB's time to live deletes within days: reads return expired items until then, always.
	{"ExpiredIncluded", testGetExpired},
}

func testGetMissing(t *testing.T, d kv.Driver) {
	a, c := item("p", "a", "A"), item("p", "c", "C")
	store(t, d, a, c)
	wantItems(t, "Get of a, b (missing), c", get(t, d, a.Key, key("p", "b"), c.Key), a, c)
	wantItems(t, "Get of a missing key", get(t, d, key("p", "b")))
	wantItems(t, "Get in a partition that holds nothing", get(t, d, key("q", "a"), key("q", "c")))
}

func testGetOrder(t *testing.T, d kv.Driver) {
	var items []kv.Item
	for i := range 6 {
		items = append(items, item(fmt.Sprintf("p%d", i%2), fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)))
	}
	store(t, d, items...)
	order := []int{3, 0, 5, 1, 4, 2}
	var keys []kv.Key
	var want []kv.Item
	for _, i := range order {
		keys = append(keys, items[i].Key)
		want = append(want, items[i])
	}
	wantItems(t, "Get in the caller's order", get(t, d, keys...), want...)
	slices.Reverse(keys)
	slices.Reverse(want)
	wantItems(t, "Get in the reverse order", get(t, d, keys...), want...)
}

func testGetRepeated(t *testing.T, d kv.Driver) {
	a, b := item("p", "a", "A"), item("p", "b", "B")
	store(t, d, a, b)
	wantItems(t, "Get of b, a, b, b", get(t, d, b.Key, a.Key, b.Key, b.Key), b, a)
	wantItems(t, "Get of a missing key twice", get(t, d, key("p", "m"), key("p", "m")))
}

func testGetNoKeys(t *testing.T, d kv.Driver) {
	store(t, d, item("p", "a", "A"))
	wantItems(t, "Get of no keys", get(t, d))
}

func testGetValues(t *testing.T, d kv.Driver) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	values := []struct {
		name  string
		value []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"one 0 byte", []byte{0}},
		{"every byte 0x00 to 0xff", all},
		{"every byte 0xff to 0x00", func() []byte { r := append([]byte(nil), all...); slices.Reverse(r); return r }()},
		{"not UTF-8", []byte("\xc3\x28\xff\xfe")},
		{"text", []byte("hello, world")},
	}
	var items []kv.Item
	var keys []kv.Key
	for i, v := range values {
		it := kv.Item{Key: key("values", fmt.Sprintf("%02d", i)), Value: v.value}
		items = append(items, it)
		keys = append(keys, it.Key)
	}
	store(t, d, items...)
	got := get(t, d, keys...)
	for i := range values {
		if i < len(got) {
			if d := diff(got[i], items[i]); d != "" {
				t.Errorf("Get of the value %s: %s", values[i].name, d)
			}
		}
	}
	wantItems(t, "Get", got, items...)
	wantItems(t, "Query", query(t, d, kv.Query{Partition: "values", Limit: 100}), items...)
}

func testGetRevs(t *testing.T, d kv.Driver) {
	revs := []int64{math.MinInt64, math.MinInt64 + 1, -1, 0, 1, 1<<53 + 1, math.MaxInt64 - 1, math.MaxInt64}
	var items []kv.Item
	var keys []kv.Key
	for i, r := range revs {
		it := kv.Item{Key: key("revs", fmt.Sprintf("%02d", i)), Value: []byte("v"), Rev: r}
		items = append(items, it)
		keys = append(keys, it.Key)
	}
	store(t, d, items...)
	wantItems(t, "Get", get(t, d, keys...), items...)
	wantItems(t, "Query", query(t, d, kv.Query{Partition: "revs", Limit: 100}), items...)
}

func testGetExpires(t *testing.T, d kv.Driver) {
	east := time.FixedZone("UTC+9", 9*3600)
	expiries := []struct {
		name string
		at   time.Time
	}{
		{"none", time.Time{}},
		{"the Unix epoch", time.Unix(0, 0)},
		{"1 ms after the epoch", time.UnixMilli(1)},
		{"with milliseconds", t0},
		{"with nanoseconds, in another zone", time.Date(2031, 5, 6, 7, 8, 9, 123_456_789, east)},
		{"999,999 ns into a second", time.Date(2031, 5, 6, 7, 8, 9, 999_999, time.UTC)},
		{"after 2262 (past int64 nanoseconds)", time.Date(2300, 1, 1, 0, 0, 0, 1_000_000, time.UTC)},
	}
	var items []kv.Item
	var keys []kv.Key
	for i, e := range expiries {
		it := kv.Item{Key: key("expires", fmt.Sprintf("%02d", i)), Value: []byte(e.name), Expires: e.at}
		items = append(items, it)
		keys = append(keys, it.Key)
	}
	store(t, d, items...)
	got := get(t, d, keys...)
	for i := range expiries {
		if i < len(got) {
			if d := diff(got[i], items[i]); d != "" {
				t.Errorf("Get of the expiry %s: %s", expiries[i].name, d)
			}
		}
	}
	wantItems(t, "Get", got, items...)
	wantItems(t, "Query", query(t, d, kv.Query{Partition: "expires", Limit: 100}), items...)
}

func testGetCopies(t *testing.T, d kv.Driver) {
	in := []byte("original")
	k := key("p", "a")
	commit(t, d, kv.Put(kv.Item{Key: k, Value: in, Rev: 1}, always))
	want := kv.Item{Key: k, Value: []byte("original"), Rev: 1}
	copy(in, "mutated!")
	wantStored(t, d, "after the caller changed the value it put", k, &want)

	got := get(t, d, k)
	copy(got[0].Value, "mutated!")
	wantStored(t, d, "after the caller changed a value Get returned", k, &want)

	q := query(t, d, kv.Query{Partition: "p", Limit: 10})
	copy(q[0].Value, "mutated!")
	wantStored(t, d, "after the caller changed a value Query returned", k, &want)

	ops := []kv.Op{kv.Put(kv.Item{Key: key("p", "b"), Value: []byte("b")}, always)}
	commit(t, d, ops...)
	ops[0].Item.Value[0] = 'x'
	ops[0].Item.Key = key("p", "c")
	wantItems(t, "after the caller changed the ops it committed", get(t, d, key("p", "b"), key("p", "c")), item("p", "b", "b"))
}

func testGetMany(t *testing.T, d kv.Driver) {
	const n = 250
	var items []kv.Item
	for i := range n {
		items = append(items, item("many", fmt.Sprintf("k%03d", i), fmt.Sprintf("v%d", i)))
	}
	store(t, d, items...)
	// A stride through the items, with a missing key every 25.
	var keys []kv.Key
	var want []kv.Item
	for j := range n {
		i := (j * 97) % n
		keys = append(keys, items[i].Key)
		want = append(want, items[i])
		if j%25 == 0 {
			keys = append(keys, key("many", fmt.Sprintf("missing%03d", j)))
		}
	}
	wantItems(t, "Get of 250 keys and 10 missing ones", get(t, d, keys...), want...)
}

func testGetLarge(t *testing.T, d kv.Driver) {
	const n = 48 // 48 values of 350 KiB: 16.4 MiB
	var items []kv.Item
	var keys []kv.Key
	for i := range n {
		v := make([]byte, kv.MaxValueBytes)
		for j := range v {
			v[j] = byte(i + j)
		}
		it := kv.Item{Key: key("large", fmt.Sprintf("k%02d", i)), Value: v, Rev: int64(i)}
		items = append(items, it)
		keys = append(keys, it.Key)
	}
	store(t, d, items...)
	slices.Reverse(keys)
	slices.Reverse(items)
	wantItems(t, "Get of 16.4 MiB", get(t, d, keys...), items...)
}

func testGetExpired(t *testing.T, d kv.Driver) {
	old := kv.Item{Key: key("p", "old"), Value: []byte("v"), Expires: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)}
	store(t, d, old)
	wantItems(t, "Get of an item that expired in 2001", get(t, d, old.Key), old)
}
