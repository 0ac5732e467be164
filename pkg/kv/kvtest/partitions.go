package kvtest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// PartitionLister is the optional listing of partition names a driver of a
// store that keeps expired items offers, for the domain's sweep of them.
type PartitionLister interface {
	Partitions(ctx context.Context, prefix, after string, limit int) ([]string, error)
}

// RunPartitions checks a driver's PartitionLister: every partition that
// holds an item (expired ones included) and starts with the prefix, once,
// in byte order, after the name given, at most limit of them; a partition
// whose name only extends another's is its own; an emptied one is gone.
func RunPartitions(t *testing.T, newDriver func(t *testing.T) kv.Driver) {
	t.Helper()
	d := newDriver(t)
	pl, ok := d.(PartitionLister)
	if !ok {
		t.Fatalf("%T does not list partitions", d)
	}
	ctx := context.Background()
	past := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	var ops []kv.Op
	for _, p := range []string{"E#b", "E#a", "E#a2", "E#", "D#x", "F#", "E#c"} {
		for _, s := range []string{"1", "2", "3"} {
			ops = append(ops, kv.Put(item(p, s, "v"), always))
		}
	}
	ops = append(ops, kv.Put(kv.Item{Key: key("E#expired", "1"), Value: []byte("v"), Expires: past}, always))
	if err := d.Commit(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	list := func(prefix, after string, limit int) []string {
		t.Helper()
		got, err := pl.Partitions(ctx, prefix, after, limit)
		if err != nil {
			t.Fatalf("Partitions(%q, %q, %d): %v", prefix, after, limit, err)
		}
		return got
	}
	for _, c := range []struct {
		prefix, after string
		limit         int
		want          []string
	}{
		{"E#", "", 100, []string{"E#", "E#a", "E#a2", "E#b", "E#c", "E#expired"}},
		{"E#", "", 2, []string{"E#", "E#a"}},
		{"E#", "E#a", 2, []string{"E#a2", "E#b"}},
		{"E#", "E#a2", 100, []string{"E#b", "E#c", "E#expired"}},
		{"E#", "E#expired", 100, nil},
		{"E#", "A", 100, []string{"E#", "E#a", "E#a2", "E#b", "E#c", "E#expired"}},
		{"", "", 100, []string{"D#x", "E#", "E#a", "E#a2", "E#b", "E#c", "E#expired", "F#"}},
		{"G#", "", 100, nil},
		{"E#a", "", 100, []string{"E#a", "E#a2"}},
	} {
		if got := list(c.prefix, c.after, c.limit); !slices.Equal(got, c.want) {
			t.Errorf("Partitions(%q, %q, %d) = %q, want %q", c.prefix, c.after, c.limit, got, c.want)
		}
	}
	// A partition emptied is no longer listed.
	if err := d.Commit(ctx, kv.Delete(key("E#b", "1"), always), kv.Delete(key("E#b", "2"), always), kv.Delete(key("E#b", "3"), always)); err != nil {
		t.Fatal(err)
	}
	if got := list("E#", "E#a2", 1); !slices.Equal(got, []string{"E#c"}) {
		t.Errorf("after emptying E#b: %q", got)
	}
	if _, err := pl.Partitions(ctx, "E#", "", 0); kv.ErrorCode(err) != kv.Invalid {
		t.Errorf("a limit of 0: %v, want Invalid", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := pl.Partitions(cctx, "E#", "", 10); kv.ErrorCode(err) != kv.Unavailable {
		t.Errorf("a cancelled context: %v, want Unavailable", err)
	}
}
