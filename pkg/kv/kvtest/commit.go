package kvtest

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

var commitCases = []testCase{
	// UpdateItem keeps attributes a Put does not name, bbolt's Put does not: a Put replaces the whole item.
	{"PutReplaces", testCommitPutReplaces},
	// DynamoDB's condition expressions (attribute_not_exists, exp <= :t, rev = :r) agree with kv.Cond.Holds, on every kind of op.
	{"Conditions", testCommitConditions},
	// TransactionCanceledException gives a reason per op; the error names the first op whose condition failed.
	{"FirstFailingOp", testCommitFirstFailing},
	// TransactWriteItems is all or nothing; a driver that splits a commit, or applies ops as it checks them, is not.
	{"FailingConditionWritesNothing", testCommitWritesNothing},
	// Puts, deletes, erases and checks of one commit all land.
	{"MixedOpsApply", testCommitMixed},
}

// testCommitPutReplaces puts over items with and without expiry.
func testCommitPutReplaces(t *testing.T, d kv.Driver) {
	k := key("p", "a")
	first := kv.Item{Key: k, Value: []byte("first value"), Rev: 1, Expires: t0}
	commit(t, d, kv.Put(first, kv.IfAbsent(time.Time{})))
	wantStored(t, d, "the first put", k, &first)
	second := kv.Item{Key: k, Value: []byte("2nd"), Rev: 2}
	commit(t, d, kv.Put(second, kv.IfRev(1)))
	wantStored(t, d, "a put without expiry over one with", k, &second)
	third := kv.Item{Key: k, Value: nil, Rev: 0, Expires: t0.Add(time.Hour)}
	commit(t, d, kv.Put(third, kv.IfRev(2)))
	wantStored(t, d, "a put with an empty value and rev 0", k, &third)
	fourth := kv.Item{Key: k, Value: []byte("4"), Rev: 4}
	commit(t, d, kv.Put(fourth, kv.IfRev(0)))
	wantStored(t, d, "a put without expiry again", k, &fourth)
}

func testCommitConditions(t *testing.T, d kv.Driver) {
	type stored func(k kv.Key) *kv.Item
	none := func(kv.Key) *kv.Item { return nil }
	with := func(rev int64, exp time.Time) stored {
		return func(k kv.Key) *kv.Item { return &kv.Item{Key: k, Value: []byte("old"), Rev: rev, Expires: exp} }
	}
	var (
		present      = with(7, time.Time{})
		expiredLong  = with(7, t0.Add(-time.Hour))
		expiringAtT  = with(7, t0)
		expiring1ms  = with(7, t0.Add(time.Millisecond))
		expiringSub  = with(7, t0.Add(400*time.Microsecond)) // stored as t0
		rev0         = with(0, time.Time{})
		revMax       = with(math.MaxInt64, time.Time{})
		revMin       = with(math.MinInt64, time.Time{})
		zero         time.Time
		subMsAfterT0 = t0.Add(999 * time.Microsecond) // taken as t0
	)
	rows := []struct {
		name   string
		stored stored
		cond   kv.Cond
		holds  bool
	}{
		{"absent, always", none, always, true},
		{"present, always", present, always, true},
		{"absent, IfAbsent(zero)", none, kv.IfAbsent(zero), true},
		{"present, IfAbsent(zero)", present, kv.IfAbsent(zero), false},
		// With the zero t only a missing item is absent.
		{"expired an hour before t, IfAbsent(zero)", expiredLong, kv.IfAbsent(zero), false},
		{"absent, IfAbsent(t)", none, kv.IfAbsent(t0), true},
		{"no expiry, IfAbsent(t)", present, kv.IfAbsent(t0), false},
		{"expired an hour before t, IfAbsent(t)", expiredLong, kv.IfAbsent(t0), true},
		// Expires == t counts as expired.
		{"expiring at t, IfAbsent(t)", expiringAtT, kv.IfAbsent(t0), true},
		{"expiring 1 ms after t, IfAbsent(t)", expiring1ms, kv.IfAbsent(t0), false},
		// Both at millisecond precision.
		{"expiring 0.4 ms after t, IfAbsent(t)", expiringSub, kv.IfAbsent(t0), true},
		{"expiring 1 ms after t, IfAbsent(t + 0.999 ms)", expiring1ms, kv.IfAbsent(subMsAfterT0), false},
		{"expiring at t, IfAbsent(t + 0.999 ms)", expiringAtT, kv.IfAbsent(subMsAfterT0), true},
		{"absent, IfExists", none, kv.IfExists(), false},
		{"present, IfExists", present, kv.IfExists(), true},
		{"expired, IfExists", expiredLong, kv.IfExists(), true},
		{"absent, IfRev(7)", none, kv.IfRev(7), false},
		{"rev 7, IfRev(7)", present, kv.IfRev(7), true},
		{"rev 7, IfRev(8)", present, kv.IfRev(8), false},
		{"rev 7, IfRev(-7)", present, kv.IfRev(-7), false},
		{"expired rev 7, IfRev(7)", expiredLong, kv.IfRev(7), true},
		// A missing item has no rev, not rev 0.
		{"absent, IfRev(0)", none, kv.IfRev(0), false},
		{"rev 0, IfRev(0)", rev0, kv.IfRev(0), true},
		{"rev 0, IfRev(7)", rev0, kv.IfRev(7), false},
		{"rev MaxInt64, IfRev(MaxInt64)", revMax, kv.IfRev(math.MaxInt64), true},
		// As float64 both are 2^63.
		{"rev MaxInt64, IfRev(MaxInt64 - 1)", revMax, kv.IfRev(math.MaxInt64 - 1), false},
		{"rev MinInt64, IfRev(MinInt64)", revMin, kv.IfRev(math.MinInt64), true},
	}
	kinds := []struct {
		name string
		op   func(k kv.Key, c kv.Cond) kv.Op
	}{
		{"Put", func(k kv.Key, c kv.Cond) kv.Op {
			return kv.Put(kv.Item{Key: k, Value: []byte("new"), Rev: 99, Expires: t0.Add(24 * time.Hour)}, c)
		}},
		{"Delete", kv.Delete},
		{"Erase", kv.Erase},
		{"Check", kv.Check},
	}
	var setup []kv.Item
	for ki := range kinds {
		for ri, r := range rows {
			if it := r.stored(key("cond", fmt.Sprintf("%d-%02d", ki, ri))); it != nil {
				setup = append(setup, *it)
			}
		}
	}
	store(t, d, setup...)
	for ki, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			for ri, r := range rows {
				k := key("cond", fmt.Sprintf("%d-%02d", ki, ri))
				op := kind.op(k, r.cond)
				err := d.Commit(t.Context(), op)
				before := r.stored(k)
				what := fmt.Sprintf("%s on %s", kind.name, r.name)
				if !r.holds {
					wantCondition(t, what, err, 0, k)
					wantStored(t, d, what+", after it failed", k, before)
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v, want the condition to hold", what, err)
				}
				switch op.Kind {
				case kv.OpPut:
					wantStored(t, d, what, k, &op.Item)
				case kv.OpDelete:
					wantStored(t, d, what, k, nil)
				case kv.OpCheck:
					wantStored(t, d, what+" (a check writes nothing)", k, before)
				}
			}
		})
	}
}

// abcd stores a, b and d at rev 1; c is absent.
func abcd(t *testing.T, d kv.Driver) []kv.Item {
	t.Helper()
	items := []kv.Item{
		{Key: key("p", "a"), Value: []byte("A"), Rev: 1},
		{Key: key("p", "b"), Value: []byte("B"), Rev: 1, Expires: t0},
		{Key: key("p", "d"), Value: []byte("D"), Rev: 1},
	}
	store(t, d, items...)
	return items
}

var (
	ka, kb, kc, kd = key("p", "a"), key("p", "b"), key("p", "c"), key("p", "d")
	kx, ky         = key("p", "x"), key("p", "y")
)

func newItem(k kv.Key) kv.Item { return kv.Item{Key: k, Value: []byte("new " + k.Sort), Rev: 2} }

// wantUnchanged fails the test unless the store holds exactly items among
// a, b, c, d, x and y.
func wantUnchanged(t *testing.T, d kv.Driver, what string, items []kv.Item) {
	t.Helper()
	wantItems(t, what+": the store after it", get(t, d, ka, kb, kc, kd, kx, ky), items...)
}

func testCommitFirstFailing(t *testing.T, d kv.Driver) {
	items := abcd(t, d)
	for _, c := range []struct {
		name  string
		ops   []kv.Op
		index int
	}{
		{"only the last fails", []kv.Op{
			kv.Put(newItem(kx), kv.IfAbsent(time.Time{})),
			kv.Delete(ka, kv.IfRev(1)),
			kv.Check(kb, kv.IfExists()),
			kv.Put(newItem(kd), kv.IfRev(2)),
		}, 3},
		{"the first and the third fail", []kv.Op{
			kv.Put(newItem(ka), kv.IfAbsent(time.Time{})),
			kv.Delete(kb, kv.IfRev(1)),
			kv.Check(kc, kv.IfExists()),
			kv.Put(newItem(kx), kv.IfAbsent(time.Time{})),
		}, 0},
		{"three fail after one that holds", []kv.Op{
			kv.Put(newItem(kx), kv.IfAbsent(time.Time{})),
			kv.Erase(ka, kv.IfRev(9)),
			kv.Check(kc, kv.IfExists()),
			kv.Delete(kd, kv.IfRev(5)),
		}, 1},
		{"a check fails between writes", []kv.Op{
			kv.Put(newItem(kx), kv.IfAbsent(time.Time{})),
			kv.Put(newItem(ky), always),
			kv.Check(kb, kv.IfRev(0)),
			kv.Delete(kd, always),
		}, 2},
		{"an IfAbsent(t) over an item expiring after t fails", []kv.Op{
			kv.Put(newItem(kb), kv.IfAbsent(t0.Add(-time.Millisecond))),
			kv.Put(newItem(ka), kv.IfAbsent(t0)),
		}, 0},
		{"a delete of a missing item on IfExists fails", []kv.Op{
			kv.Delete(ka, always),
			kv.Delete(kc, kv.IfExists()),
		}, 1},
	} {
		err := d.Commit(t.Context(), c.ops...)
		wantCondition(t, c.name, err, c.index, c.ops[c.index].Item.Key)
		wantUnchanged(t, d, c.name, items)
	}
}

func testCommitWritesNothing(t *testing.T, d kv.Driver) {
	items := abcd(t, d)
	// MaxOps ops: new items on IfAbsent, then writes over a, b and d that
	// hold, with two failing checks among them.
	var ops []kv.Op
	var news []kv.Key
	for i := range kv.MaxOps - 5 {
		k := key("new", fmt.Sprintf("n%03d", i))
		news = append(news, k)
		ops = append(ops, kv.Put(newItem(k), kv.IfAbsent(time.Time{})))
	}
	ops = append(ops,
		kv.Put(newItem(ka), kv.IfRev(1)),
		kv.Erase(kb, kv.IfExists()),
		kv.Check(kc, kv.IfRev(1)), // fails: c is absent
		kv.Delete(kd, kv.IfRev(1)),
		kv.Check(kx, kv.IfExists()), // fails too
	)
	err := d.Commit(t.Context(), ops...)
	wantCondition(t, "a commit of 100 ops with two failing checks", err, kv.MaxOps-3, kc)
	wantUnchanged(t, d, "a failed commit of 100 ops", items)
	wantAbsent(t, d, "the 95 new items of a failed commit", news...)
	wantItems(t, "Query after a failed commit", query(t, d, kv.Query{Partition: "new", Limit: 10}))
}

func testCommitMixed(t *testing.T, d kv.Driver) {
	abcd(t, d)
	a2 := newItem(ka)
	x := newItem(kx)
	commit(t, d,
		kv.Put(x, kv.IfAbsent(time.Time{})),
		kv.Put(a2, kv.IfRev(1)),
		kv.Delete(kb, kv.IfExists()),
		kv.Erase(kd, always),
		kv.Check(kc, kv.IfAbsent(time.Time{})),
		kv.Delete(ky, always), // a missing item, without condition
	)
	wantUnchanged(t, d, "a commit whose conditions hold", []kv.Item{a2, x})
}
