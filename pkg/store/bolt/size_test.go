package bolt_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// secretOps returns the items the domain writes for secret i, as its
// layout has them: the record, its copy under the name, a version's
// metadata and ciphertext, and for every other secret a resolution audit
// record. size gives each value's length.
func secretOps(r *rand.Rand, i int, size func() int) []kv.Op {
	id := fmt.Sprintf("sec_01JABCDEFG%016d", i) // ULIDs sort in time order
	name := fmt.Sprintf("service-%08x", r.Uint32())
	val := func() []byte {
		b := make([]byte, size())
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		return b
	}
	ops := []kv.Op{
		kv.Put(kv.Item{Key: key("P#acme", "S#"+id), Value: val(), Rev: 1}, kv.IfAbsent(time.Time{})),
		kv.Put(kv.Item{Key: key("P#acme", "N#"+name), Value: val(), Rev: 1}, kv.IfAbsent(time.Time{})),
		kv.Put(kv.Item{Key: key("P#acme#S#"+id, "V#0000000001"), Value: val(), Rev: 1}, kv.IfAbsent(time.Time{})),
		kv.Put(kv.Item{Key: key("P#acme#S#"+id, "C#0000000001"), Value: val(), Rev: 1}, kv.IfAbsent(time.Time{})),
	}
	if i%2 == 0 {
		ops = append(ops, kv.Put(kv.Item{Key: key(fmt.Sprintf("A#acme#%s#%d", id, i%4), fmt.Sprintf("R#01JABCDEFG%016d", i)), Value: val()}, kv.Cond{}))
	}
	return ops
}

// fill writes secrets [0, n) with writers goroutines, perCommit secrets
// a commit.
func fill(tb testing.TB, d *bolt.Driver, n, writers, perCommit int, size func(r *rand.Rand) int) {
	tb.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			sz := func() int { return size(r) }
			for first := w * perCommit; first < n; first += writers * perCommit {
				var ops []kv.Op
				for i := first; i < min(first+perCommit, n); i++ {
					ops = append(ops, secretOps(r, i, sz)...)
				}
				if err := d.Commit(ctx, ops...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// The product's target is at most 1 KB of data file per secret of
// 100-byte values (4.5 items a secret). Written one secret per commit, as
// the domain writes them, by concurrent writers, the B-tree's pages end up
// about two thirds full, a little over the target; a compacted copy packs
// them and meets it. The bounds catch a layout or fill setting that
// wastes more.
//
// Concurrent writers make the figure depend on how their commits
// interleave (1,190-1,390 B a secret from one run to the next), so the
// store is filled in one deterministic order that models them: secrets
// arrive nearly in ID order, each up to 32 places early or late, one a
// commit. In this order the fill percent gives 1,178 B a secret at 0.5,
// 1,231 B at 0.75, 1,364 B at 0.8 (the driver's), 1,806 B at 0.9 and
// 2,177 B at 1.0; an item more a secret would add about 290 B. (Through
// the service, 32 writers pack 0.8 tighter than 0.75: BenchmarkBytesOnDisk.)
func TestSizePerSecret(t *testing.T) {
	const secrets = 2000
	perSecret := func(d *bolt.Driver, what string) float64 {
		st := d.Stats()
		if st.Items != secrets*9/2 {
			t.Fatalf("%s: %d items, want %d", what, st.Items, secrets*9/2)
		}
		used := (st.Pages - int64(st.FreePages)) * int64(st.PageSize)
		t.Logf("%s: %d items of 100 bytes in %d pages of %d B: %.0f B a secret, %.0f B an item (file %d B)",
			what, st.Items, st.Pages-int64(st.FreePages), st.PageSize, float64(used)/secrets, float64(used)/float64(st.Items), st.FileBytes)
		return float64(used) / secrets
	}
	dir := t.TempDir()
	d := mustOpenAt(t, filepath.Join(dir, "mobius.db"))
	r := rand.New(rand.NewPCG(1, 2))
	order := make([]int, secrets)
	late := make([]int, secrets)
	for i := range order {
		order[i], late[i] = i, i+r.IntN(65)-32
	}
	slices.SortStableFunc(order, func(a, b int) int { return late[a] - late[b] })
	val := func() int { return 100 }
	for _, i := range order {
		if err := d.Commit(ctx, secretOps(r, i, val)...); err != nil {
			t.Fatal(err)
		}
	}
	if got := perSecret(d, "live"); got > 1500 {
		t.Errorf("live store: %.0f bytes of data file a secret, want at most 1500", got)
	}
	compacted := filepath.Join(dir, "compacted.db")
	if err := d.Compact(compacted); err != nil {
		t.Fatal(err)
	}
	if got := perSecret(mustOpenAt(t, compacted), "compacted"); got > 1024 {
		t.Errorf("compacted: %.0f bytes of data file a secret, want at most 1024", got)
	}
}
