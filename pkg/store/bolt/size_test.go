package bolt_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
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
func TestSizePerSecret(t *testing.T) {
	dir := t.TempDir()
	d := mustOpenAt(t, filepath.Join(dir, "mobius.db"))
	const secrets = 2000
	fill(t, d, secrets, 16, 1, func(*rand.Rand) int { return 100 })
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
	if got := perSecret(d, "live"); got > 1280 {
		t.Errorf("live store: %.0f bytes of data file a secret, want at most 1280", got)
	}
	compacted := filepath.Join(dir, "compacted.db")
	if err := d.Compact(compacted); err != nil {
		t.Fatal(err)
	}
	if got := perSecret(mustOpenAt(t, compacted), "compacted"); got > 1024 {
		t.Errorf("compacted: %.0f bytes of data file a secret, want at most 1024", got)
	}
}
