package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/kv/kvtest"
	"github.com/mobius-secrets/mobius/pkg/kv/memkv"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// MustOpen opens a driver on a fresh file that is closed when tb ends.
func MustOpen(tb testing.TB) *bolt.Driver {
	tb.Helper()
	return mustOpenAt(tb, filepath.Join(tb.TempDir(), "mobius.db"))
}

// mustOpenAt opens the store at path as a server starts it: Open, then
// Scrub once its start is checked.
func mustOpenAt(tb testing.TB, path string) *bolt.Driver {
	tb.Helper()
	d, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	if err := d.Scrub(); err != nil {
		tb.Fatal(err)
	}
	return d
}

var ctx = context.Background()

func newDriver(t *testing.T) kv.Driver { return MustOpen(t) }

// The port's conformance suite.
func TestConformance(t *testing.T) { kvtest.Run(t, newDriver) }

func TestRaces(t *testing.T) { kvtest.RunRaces(t, newDriver) }

func key(p, s string) kv.Key { return kv.Key{Partition: p, Sort: s} }

func mustCommit(tb testing.TB, d kv.Driver, ops ...kv.Op) {
	tb.Helper()
	if err := d.Commit(ctx, ops...); err != nil {
		tb.Fatal(err)
	}
}

// all returns every item of partition p, ascending.
func all(tb testing.TB, d kv.Driver, p string) []kv.Item {
	tb.Helper()
	items, err := d.Query(ctx, kv.Query{Partition: p, Limit: 1 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	return items
}

func TestCreatesFileAndFolderPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "mobius.db")
	d := mustOpenAt(t, path)
	for _, c := range []struct {
		path string
		want os.FileMode
	}{{path, 0o600}, {filepath.Dir(path), 0o700}} {
		st, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm != c.want {
			t.Errorf("%s: mode %v, want %v", c.path, perm, c.want)
		}
	}
	if d.Path() != path {
		t.Errorf("Path() = %q, want %q", d.Path(), path)
	}
	if empty, err := d.Empty(ctx); err != nil || !empty {
		t.Fatalf("a new store: Empty = %v, %v", empty, err)
	}
	// Nothing but the data file is left in the folder.
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(ents) != 1 {
		t.Fatalf("folder holds %v (%v), want only the data file", ents, err)
	}
}

// Items keep every field across Close and Open.
func TestReopenKeepsItems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mobius.db")
	d := mustOpenAt(t, path)
	exp := time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))
	want := []kv.Item{
		{Key: key("p", "a"), Value: []byte("one"), Rev: 1},
		{Key: key("p", "b"), Value: []byte{}, Rev: -7},
		{Key: key("p", "c"), Value: bytes.Repeat([]byte{0, 0xff}, 5000), Rev: 1 << 62, Expires: exp},
		{Key: key("p", "d"), Value: []byte("x"), Rev: 0, Expires: time.UnixMilli(1)},
		{Key: key("p", "e"), Value: []byte("x"), Expires: time.Unix(0, 0)},
		{Key: key("p", "f"), Value: []byte("x"), Expires: time.UnixMilli(-1)},
		{Key: key("p", "g"), Value: []byte("x"), Expires: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, it := range want {
		mustCommit(t, d, kv.Put(it, kv.IfAbsent(time.Time{})))
	}
	if empty, err := d.Empty(ctx); err != nil || empty {
		t.Fatalf("Empty = %v, %v; want false", empty, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(ctx, key("p", "a")); kv.ErrorCode(err) != kv.Unavailable {
		t.Fatalf("Get after Close: %v, want Unavailable", err)
	}
	if err := d.Commit(ctx, kv.Delete(key("p", "a"), kv.Cond{})); kv.ErrorCode(err) != kv.Unavailable {
		t.Fatalf("Commit after Close: %v, want Unavailable", err)
	}
	if err := d.Check(); kv.ErrorCode(err) != kv.Unavailable {
		t.Fatalf("Check after Close: %v, want Unavailable", err)
	}
	if _, err := d.Backup(io.Discard); kv.ErrorCode(err) != kv.Unavailable {
		t.Fatalf("Backup after Close: %v, want Unavailable", err)
	}
	if st := d.Stats(); st.Items != -1 {
		t.Fatalf("Stats after Close: %+v, want Items -1", st)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	d = mustOpenAt(t, path)
	got := all(t, d, "p")
	want[2].Expires = exp.Truncate(time.Millisecond).UTC()
	for i := 3; i < len(want); i++ {
		want[i].Expires = want[i].Expires.UTC()
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen:\n got %+v\nwant %+v", got, want)
	}
}

func TestRefusesWhatThePortRefuses(t *testing.T) {
	d := MustOpen(t)
	big := make([]byte, kv.MaxValueBytes+1)
	for _, c := range []struct {
		name string
		ops  []kv.Op
	}{
		{"no op", nil},
		{"empty sort key", []kv.Op{kv.Put(kv.Item{Key: key("p", "")}, kv.Cond{})}},
		{"0 byte in a key", []kv.Op{kv.Put(kv.Item{Key: key("p\x00q", "s")}, kv.Cond{})}},
		{"value too large", []kv.Op{kv.Put(kv.Item{Key: key("p", "s"), Value: big}, kv.Cond{})}},
		{"two ops on a key", []kv.Op{kv.Delete(key("p", "s"), kv.Cond{}), kv.Check(key("p", "s"), kv.Cond{})}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := d.Commit(ctx, c.ops...); kv.ErrorCode(err) != kv.Invalid {
				t.Fatalf("Commit: %v, want Invalid", err)
			}
		})
	}
	if _, err := d.Get(ctx, key("", "s")); kv.ErrorCode(err) != kv.Invalid {
		t.Errorf("Get of a bad key: %v, want Invalid", err)
	}
	if _, err := d.Query(ctx, kv.Query{Partition: "p"}); kv.ErrorCode(err) != kv.Invalid {
		t.Errorf("Query without a limit: %v, want Invalid", err)
	}
	if empty, err := d.Empty(ctx); err != nil || !empty {
		t.Errorf("after refused commits: Empty = %v, %v; want true", empty, err)
	}
}

func TestEndedContext(t *testing.T) {
	d := MustOpen(t)
	c, cancel := context.WithCancel(ctx)
	cancel()
	checks := map[string]error{}
	_, checks["Get"] = d.Get(c, key("p", "s"))
	_, checks["Query"] = d.Query(c, kv.Query{Partition: "p", Limit: 1})
	checks["Commit"] = d.Commit(c, kv.Put(kv.Item{Key: key("p", "s")}, kv.Cond{}))
	_, checks["Empty"] = d.Empty(c)
	for op, err := range checks {
		if kv.ErrorCode(err) != kv.Unavailable || !errors.Is(err, context.Canceled) {
			t.Errorf("%s with an ended context: %v, want Unavailable wrapping context.Canceled", op, err)
		}
	}
	if empty, _ := d.Empty(ctx); !empty {
		t.Error("a commit with an ended context wrote")
	}
}

// The driver answers exactly as memkv, the reference, does: the same
// items in the same order, the same errors, over random sequences of
// commits, gets and queries on a few keys, so that conditions collide.
func TestAgreesWithMemkv(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 1))
			ref, d := memkv.New(), MustOpen(t)
			now := time.UnixMilli(1_900_000_000_000)
			parts := []string{"a", "ab", "b"}
			sorts := []string{"x", "x1", "x2", "y", "yy", "z", "é"}
			randKey := func() kv.Key { return key(parts[r.IntN(len(parts))], sorts[r.IntN(len(sorts))]) }
			randCond := func() kv.Cond {
				switch r.IntN(5) {
				case 0:
					return kv.IfAbsent(time.Time{})
				case 1:
					return kv.IfAbsent(now)
				case 2:
					return kv.IfExists()
				case 3:
					return kv.IfRev(int64(r.IntN(3)))
				}
				return kv.Cond{}
			}
			for step := range 600 {
				switch r.IntN(3) {
				case 0, 1:
					var ops []kv.Op
					seen := map[kv.Key]bool{}
					for range 1 + r.IntN(4) {
						k := randKey()
						if seen[k] && r.IntN(4) > 0 {
							continue // mostly valid commits; sometimes a repeated key
						}
						seen[k] = true
						switch r.IntN(5) {
						case 0, 1:
							it := kv.Item{Key: k, Rev: int64(r.IntN(3)), Value: []byte(fmt.Sprint(step))}
							if r.IntN(3) == 0 {
								it.Expires = now.Add(time.Duration(r.IntN(3)-1) * time.Second)
							}
							ops = append(ops, kv.Put(it, randCond()))
						case 2:
							ops = append(ops, kv.Delete(k, randCond()))
						case 3:
							ops = append(ops, kv.Erase(k, randCond()))
						case 4:
							ops = append(ops, kv.Check(k, randCond()))
						}
					}
					want, got := ref.Commit(ctx, ops...), d.Commit(ctx, ops...)
					if !sameError(want, got) {
						t.Fatalf("step %d: Commit(%v): %v, memkv %v", step, ops, got, want)
					}
				case 2:
					if r.IntN(2) == 0 {
						keys := []kv.Key{randKey(), randKey(), randKey()}
						want, _ := ref.Get(ctx, keys...)
						got, err := d.Get(ctx, keys...)
						if err != nil || !reflect.DeepEqual(got, want) {
							t.Fatalf("step %d: Get(%v) = %v, %v; memkv %v", step, keys, got, err, want)
						}
						continue
					}
					q := kv.Query{Partition: parts[r.IntN(len(parts))], Reverse: r.IntN(2) == 0, Limit: 1 + r.IntN(5)}
					if r.IntN(2) == 0 {
						q.Prefix = []string{"x", "y", "é", "w"}[r.IntN(4)]
					}
					if r.IntN(2) == 0 {
						q.After = []string{"x", "x1", "y", "yz", "a", "zz"}[r.IntN(6)]
					}
					want, _ := ref.Query(ctx, q)
					got, err := d.Query(ctx, q)
					if err != nil || !reflect.DeepEqual(got, want) {
						t.Fatalf("step %d: Query(%+v) = %v, %v; memkv %v", step, q, got, err, want)
					}
				}
			}
		})
	}
}

// sameError reports whether two drivers' errors mean the same: both nil,
// the same failing operation, or the same code.
func sameError(a, b error) bool {
	var ca, cb *kv.ConditionError
	if errors.As(a, &ca) || errors.As(b, &cb) {
		return errors.As(a, &ca) && errors.As(b, &cb) && *ca == *cb
	}
	return (a == nil) == (b == nil) && kv.ErrorCode(a) == kv.ErrorCode(b)
}

func TestStats(t *testing.T) {
	d := MustOpen(t)
	for i := range 10 {
		mustCommit(t, d, kv.Put(kv.Item{Key: key("p", fmt.Sprint(i)), Value: make([]byte, 100)}, kv.Cond{}))
	}
	st := d.Stats()
	if st.Items != 10 || st.ValueBytes != 1000 || st.PageSize <= 0 || st.Pages < 4 || st.FileBytes < st.Pages*int64(st.PageSize) {
		t.Fatalf("Stats = %+v", st)
	}
}

// A Get on a store whose file was damaged under it fails with Corrupt; it
// does not panic, and Check names the damage.
func TestDamageUnderAnOpenStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mobius.db")
	keys := buildStore(t, path, 400)
	l := pageLayout(t, path)
	d := mustOpenAt(t, path)
	if err := d.Check(); err != nil {
		t.Fatalf("Check on a whole store: %v", err)
	}
	// Overwrite every leaf of the kv bucket, so that any read meets one.
	for _, id := range l.kvLeaves() {
		overwrite(t, path, int64(id*l.pageSize), bytes.Repeat([]byte{0xA5}, l.pageSize))
	}
	if _, err := d.Get(ctx, keys...); kv.ErrorCode(err) != kv.Corrupt || !errors.Is(err, bolt.ErrBadDataFile) {
		t.Errorf("Get on a damaged file: %v, want Corrupt", err)
	} else {
		t.Log(err)
	}
	if _, err := d.Query(ctx, kv.Query{Partition: keys[0].Partition, Limit: 1000}); kv.ErrorCode(err) != kv.Corrupt {
		t.Errorf("Query on a damaged file: %v, want Corrupt", err)
	}
	err := d.Check()
	var fe *bolt.FileError
	if !errors.As(err, &fe) || fe.Problem != bolt.FileDamaged || !errors.Is(err, bolt.ErrBadDataFile) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Check on a damaged file: %v, want a damaged *FileError naming the file", err)
	}
}

// The ports' conditions are the only thing a commit checks: a commit of
// many ops on many partitions is all or nothing.
func TestCommitIsAllOrNothing(t *testing.T) {
	d := MustOpen(t)
	mustCommit(t, d, kv.Put(kv.Item{Key: key("a", "1"), Rev: 1}, kv.Cond{}))
	err := d.Commit(ctx,
		kv.Put(kv.Item{Key: key("b", "1")}, kv.IfAbsent(time.Time{})),
		kv.Delete(key("a", "1"), kv.IfRev(1)),
		kv.Check(key("c", "1"), kv.IfExists()),
	)
	var ce *kv.ConditionError
	if !errors.As(err, &ce) || ce.Index != 2 || ce.Key != key("c", "1") {
		t.Fatalf("Commit: %v, want the condition of op 2 to fail", err)
	}
	if got := all(t, d, "b"); len(got) != 0 {
		t.Errorf("a failed commit wrote %v", got)
	}
	if got := all(t, d, "a"); len(got) != 1 {
		t.Errorf("a failed commit deleted: %v", got)
	}
}

func TestPartitions(t *testing.T) { kvtest.RunPartitions(t, newDriver) }
