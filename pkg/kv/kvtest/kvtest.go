// Package kvtest is the conformance suite of the storage port: every
// kv.Driver must pass Run and RunRaces, and pkg/kv/memkv, the reference,
// does. A case states behaviour every backend shares; a bug found in one
// driver becomes a case here, so that no other driver can have it.
//
// Each case names, in a one-line comment, the backend divergence or
// DynamoDB rule it guards. The suite makes a few hundred calls on a fresh
// driver per case (Run) and a few hundred more in the races (RunRaces),
// so that it stays quick on a networked emulator.
//
// It is imported from tests only, and imports pkg/kv and the standard
// library.
package kvtest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// testCase is one named case, run on a fresh driver.
type testCase struct {
	name string
	run  func(t *testing.T, d kv.Driver)
}

// Run runs the conformance cases as named subtests of t (Get, Query,
// Commit, Limits, Context, each with its cases), each on a driver from
// newDriver, which must return an empty store and may register its
// cleanup with t.
func Run(t *testing.T, newDriver func(t *testing.T) kv.Driver) {
	t.Helper()
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"Get", getCases},
		{"Query", queryCases},
		{"Commit", commitCases},
		{"Limits", limitCases},
		{"Context", contextCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, newDriver(t)) })
			}
		})
	}
}

// RunRaces runs the concurrency cases as named subtests of t, each on a
// driver from newDriver: goroutines racing on the same items. A driver on
// an emulator that is not safe for concurrent requests is tested through a
// proxy that serialises them; the races still interleave one goroutine's
// commits between another's read and write.
func RunRaces(t *testing.T, newDriver func(t *testing.T) kv.Driver) {
	t.Helper()
	for _, c := range raceCases {
		t.Run(c.name, func(t *testing.T) { c.run(t, newDriver(t)) })
	}
}

// A fixed instant, with milliseconds, for conditions and expiries.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 678_000_000, time.UTC)

func key(p, s string) kv.Key { return kv.Key{Partition: p, Sort: s} }

func item(p, s, v string) kv.Item { return kv.Item{Key: key(p, s), Value: []byte(v)} }

// always is the condition that always holds.
var always kv.Cond

// commit applies ops and fails the test if the commit fails.
func commit(t *testing.T, d kv.Driver, ops ...kv.Op) {
	t.Helper()
	if err := d.Commit(t.Context(), ops...); err != nil {
		t.Fatalf("Commit of %d ops: %v", len(ops), err)
	}
}

// store puts items unconditionally, in as few commits as the limits allow.
func store(t *testing.T, d kv.Driver, items ...kv.Item) {
	t.Helper()
	var ops []kv.Op
	size := 0
	for _, it := range items {
		if len(ops) == kv.MaxOps || size+len(it.Value) > kv.MaxCommitBytes {
			commit(t, d, ops...)
			ops, size = nil, 0
		}
		ops = append(ops, kv.Put(it, always))
		size += len(it.Value)
	}
	if len(ops) > 0 {
		commit(t, d, ops...)
	}
}

// get reads keys and fails the test on an error.
func get(t *testing.T, d kv.Driver, keys ...kv.Key) []kv.Item {
	t.Helper()
	got, err := d.Get(t.Context(), keys...)
	if err != nil {
		t.Fatalf("Get of %d keys: %v", len(keys), err)
	}
	return got
}

// query runs q and fails the test on an error.
func query(t *testing.T, d kv.Driver, q kv.Query) []kv.Item {
	t.Helper()
	got, err := d.Query(t.Context(), q)
	if err != nil {
		t.Fatalf("Query %+v: %v", q, err)
	}
	return got
}

// sortKeys returns the sort keys of items, in order.
func sortKeys(items []kv.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Sort
	}
	return out
}

// wantSorts fails the test unless items have exactly the sort keys want,
// in that order.
func wantSorts(t *testing.T, what string, items []kv.Item, want ...string) {
	t.Helper()
	if got := sortKeys(items); !slices.Equal(got, want) {
		t.Fatalf("%s: sort keys %q, want %q", what, got, want)
	}
}

// readBack returns it as every driver reads it back: its expiry at
// millisecond precision, in UTC.
func readBack(it kv.Item) kv.Item {
	if !it.Expires.IsZero() {
		it.Expires = it.Expires.Truncate(time.Millisecond).UTC()
	}
	return it
}

// describe shows an item without dumping a large value.
func describe(it kv.Item) string {
	head := it.Value[:min(len(it.Value), 8)]
	exp := "none"
	if !it.Expires.IsZero() {
		exp = it.Expires.Format(time.RFC3339Nano) + " (" + it.Expires.Location().String() + ")"
	}
	return fmt.Sprintf("{%s rev %d expires %s value %d bytes %x…}", it.Key, it.Rev, exp, len(it.Value), head)
}

// diff says how got differs from want as read back, "" if it does not.
func diff(got, want kv.Item) string {
	want = readBack(want)
	var d []string
	if got.Key != want.Key {
		d = append(d, fmt.Sprintf("key %q, want %q", got.Key, want.Key))
	}
	if !bytes.Equal(got.Value, want.Value) {
		at := 0
		for at < len(got.Value) && at < len(want.Value) && got.Value[at] == want.Value[at] {
			at++
		}
		d = append(d, fmt.Sprintf("value of %d bytes, want %d, first difference at byte %d", len(got.Value), len(want.Value), at))
	}
	if got.Rev != want.Rev {
		d = append(d, fmt.Sprintf("rev %d, want %d", got.Rev, want.Rev))
	}
	switch {
	case got.Expires.IsZero() != want.Expires.IsZero() || !got.Expires.Equal(want.Expires):
		d = append(d, fmt.Sprintf("expires %v, want %v", got.Expires, want.Expires))
	case !got.Expires.IsZero() && got.Expires.Location() != time.UTC:
		d = append(d, fmt.Sprintf("expires in %s, want UTC", got.Expires.Location()))
	}
	return strings.Join(d, "; ")
}

// wantItems fails the test unless got is want (as read back), in order.
func wantItems(t *testing.T, what string, got []kv.Item, want ...kv.Item) {
	t.Helper()
	if len(got) != len(want) {
		g, w := make([]string, len(got)), make([]string, len(want))
		for i := range got {
			g[i] = got[i].Key.String()
		}
		for i := range want {
			w[i] = want[i].Key.String()
		}
		t.Fatalf("%s: %d items %q, want %d %q", what, len(got), g, len(want), w)
	}
	for i := range got {
		if d := diff(got[i], want[i]); d != "" {
			t.Fatalf("%s: item %d: %s\n got %s\nwant %s", what, i, d, describe(got[i]), describe(readBack(want[i])))
		}
	}
}

// wantStored fails the test unless the store holds exactly want under k
// (nil: nothing).
func wantStored(t *testing.T, d kv.Driver, what string, k kv.Key, want *kv.Item) {
	t.Helper()
	got := get(t, d, k)
	if want == nil {
		if len(got) != 0 {
			t.Fatalf("%s: %s holds %s, want nothing", what, k, describe(got[0]))
		}
		return
	}
	wantItems(t, what, got, *want)
}

// wantAbsent fails the test if any of keys holds an item.
func wantAbsent(t *testing.T, d kv.Driver, what string, keys ...kv.Key) {
	t.Helper()
	if got := get(t, d, keys...); len(got) != 0 {
		t.Fatalf("%s: %d items stored, want none; the first is %s", what, len(got), describe(got[0]))
	}
}

// wantCode fails the test unless err is an *kv.Error of code c.
func wantCode(t *testing.T, what string, err error, c kv.Code) {
	t.Helper()
	var ke *kv.Error
	if err == nil || !errors.As(err, &ke) || kv.ErrorCode(err) != c {
		t.Fatalf("%s: error %v (code %q), want a *kv.Error of code %s", what, err, kv.ErrorCode(err), c)
	}
}

// wantCondition fails the test unless err is a *kv.ConditionError naming
// operation index on k.
func wantCondition(t *testing.T, what string, err error, index int, k kv.Key) {
	t.Helper()
	var ce *kv.ConditionError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: error %v, want a *kv.ConditionError", what, err)
	}
	if ce.Index != index || ce.Key != k {
		t.Fatalf("%s: the condition error names operation %d (%s), want %d (%s)", what, ce.Index, ce.Key, index, k)
	}
	if c := kv.ErrorCode(err); c != "" {
		t.Fatalf("%s: kv.ErrorCode of a condition error is %q, want \"\"", what, c)
	}
}

// retryable reports whether a commit lost to a concurrent one and may be
// retried after a fresh read.
func retryable(err error) bool {
	var ce *kv.ConditionError
	return errors.As(err, &ce) || kv.ErrorCode(err) == kv.Contention
}
