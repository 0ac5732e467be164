package kvtest_test

import (
	"cmp"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/kv/kvtest"
	"github.com/mobius-secrets/mobius/pkg/kv/memkv"
)

// The suite is validated both ways: memkv passes it (pkg/kv/memkv), and
// each mutant below, memkv with one divergence a real backend could have,
// fails the cases named for it. A mutant runs in a child process, since a
// failing subtest fails its parent.

const mutantEnv = "KVTEST_MUTANT"

// funcs is a kv.Driver made of functions, so that a mutant replaces one.
type funcs struct {
	get    func(ctx context.Context, keys ...kv.Key) ([]kv.Item, error)
	query  func(ctx context.Context, q kv.Query) ([]kv.Item, error)
	commit func(ctx context.Context, ops ...kv.Op) error
}

func (f *funcs) Get(ctx context.Context, keys ...kv.Key) ([]kv.Item, error) {
	return f.get(ctx, keys...)
}
func (f *funcs) Query(ctx context.Context, q kv.Query) ([]kv.Item, error) { return f.query(ctx, q) }
func (f *funcs) Commit(ctx context.Context, ops ...kv.Op) error           { return f.commit(ctx, ops...) }

type mutant struct {
	name   string
	group  string   // the group of the cases that must fail
	cases  []string // the cases of group that must fail
	mutate func(m *memkv.Driver, f *funcs)
}

func cmpKey(a, b kv.Item) int {
	return cmp.Or(strings.Compare(a.Partition, b.Partition), strings.Compare(a.Sort, b.Sort))
}

// mapItems changes each item a read returns.
func mapItems(read func(ctx context.Context, keys ...kv.Key) ([]kv.Item, error), f func(*kv.Item)) func(ctx context.Context, keys ...kv.Key) ([]kv.Item, error) {
	return func(ctx context.Context, keys ...kv.Key) ([]kv.Item, error) {
		got, err := read(ctx, keys...)
		for i := range got {
			f(&got[i])
		}
		return got, err
	}
}

// rewrite changes each op of a commit before memkv applies it.
func rewrite(m *memkv.Driver, f func(op *kv.Op)) func(ctx context.Context, ops ...kv.Op) error {
	return func(ctx context.Context, ops ...kv.Op) error {
		ops = slices.Clone(ops)
		for i := range ops {
			f(&ops[i])
		}
		return m.Commit(ctx, ops...)
	}
}

// reorder sorts what memkv's Query selects by cmp instead of byte order.
func reorder(m *memkv.Driver, order func(a, b string) int) func(ctx context.Context, q kv.Query) ([]kv.Item, error) {
	return func(ctx context.Context, q kv.Query) ([]kv.Item, error) {
		if err := kv.CheckQuery(q); err != nil {
			return nil, err
		}
		all := q
		all.Limit = math.MaxInt32
		got, err := m.Query(ctx, all)
		slices.SortStableFunc(got, func(a, b kv.Item) int { return order(a.Sort, b.Sort) })
		if q.Reverse {
			slices.Reverse(got)
		}
		return got[:min(len(got), q.Limit)], err
	}
}

// upTo keeps the items that fit in n bytes of values.
func upTo(items []kv.Item, n int) []kv.Item {
	size := 0
	for i, it := range items {
		if size += len(it.Value); size > n {
			return items[:i]
		}
	}
	return items
}

func invalid(op string) error { return kv.Errorf(kv.Invalid, op, nil, "refused by the mutant") }

var mutants = []mutant{
	{"Get returns a repeated key twice", "Get", []string{"RepeatedKeysReadOnce"}, func(m *memkv.Driver, f *funcs) {
		f.get = func(ctx context.Context, keys ...kv.Key) ([]kv.Item, error) {
			var out []kv.Item
			for _, k := range keys {
				got, err := m.Get(ctx, k)
				if err != nil {
					return nil, err
				}
				out = append(out, got...)
			}
			return out, nil
		}
	}},
	{"Get answers in key order", "Get", []string{"KeysOrderKept", "ManyKeys"}, func(m *memkv.Driver, f *funcs) {
		f.get = func(ctx context.Context, keys ...kv.Key) ([]kv.Item, error) {
			got, err := m.Get(ctx, keys...)
			slices.SortFunc(got, cmpKey)
			return got, err
		}
	}},
	{"Get reads the first 100 keys", "Get", []string{"ManyKeys"}, func(m *memkv.Driver, f *funcs) {
		f.get = func(ctx context.Context, keys ...kv.Key) ([]kv.Item, error) {
			return m.Get(ctx, keys[:min(len(keys), 100)]...)
		}
	}},
	{"Get stops at 16 MiB", "Get", []string{"OverSixteenMegabytes"}, func(m *memkv.Driver, f *funcs) {
		f.get = func(ctx context.Context, keys ...kv.Key) ([]kv.Item, error) {
			got, err := m.Get(ctx, keys...)
			return upTo(got, 16<<20), err
		}
	}},
	{"Get drops expired items", "Get", []string{"ExpiredIncluded"}, func(m *memkv.Driver, f *funcs) {
		f.get = func(ctx context.Context, keys ...kv.Key) ([]kv.Item, error) {
			got, err := m.Get(ctx, keys...)
			return slices.DeleteFunc(got, func(it kv.Item) bool { return it.ExpiredAt(time.Now()) }), err
		}
	}},
	{"reads share values with the caller", "Get", []string{"ValuesAreCopies"}, func(m *memkv.Driver, f *funcs) {
		var mu sync.Mutex
		shared := map[kv.Key][]byte{}
		f.commit = func(ctx context.Context, ops ...kv.Op) error {
			err := m.Commit(ctx, ops...)
			mu.Lock()
			defer mu.Unlock()
			for _, op := range ops {
				if err == nil && op.Kind == kv.OpPut {
					shared[op.Item.Key] = op.Item.Value
				}
			}
			return err
		}
		share := func(it *kv.Item) {
			mu.Lock()
			defer mu.Unlock()
			if v, ok := shared[it.Key]; ok {
				it.Value = v
			}
		}
		f.get = mapItems(m.Get, share)
		f.query = func(ctx context.Context, q kv.Query) ([]kv.Item, error) {
			got, err := m.Query(ctx, q)
			for i := range got {
				share(&got[i])
			}
			return got, err
		}
	}},
	{"Rev goes through a float64", "Get", []string{"RevRoundTrip"}, func(m *memkv.Driver, f *funcs) {
		f.get = mapItems(m.Get, func(it *kv.Item) { it.Rev = int64(float64(it.Rev)) })
	}},
	{"Expires reads back in another zone", "Get", []string{"ExpiresRoundTrip"}, func(m *memkv.Driver, f *funcs) {
		f.get = mapItems(m.Get, func(it *kv.Item) {
			if !it.Expires.IsZero() {
				it.Expires = it.Expires.In(time.FixedZone("UTC+1", 3600))
			}
		})
	}},
	{"Expires kept to the second", "Get", []string{"ExpiresRoundTrip"}, func(m *memkv.Driver, f *funcs) {
		f.get = mapItems(m.Get, func(it *kv.Item) { it.Expires = it.Expires.Truncate(time.Second) })
	}},
	{"Expires at the Unix epoch reads back as none", "Get", []string{"ExpiresRoundTrip"}, func(m *memkv.Driver, f *funcs) {
		f.get = mapItems(m.Get, func(it *kv.Item) {
			if it.Expires.Equal(time.Unix(0, 0)) {
				it.Expires = time.Time{}
			}
		})
	}},

	{"Query orders without case", "Query", []string{"ByteOrder"}, func(m *memkv.Driver, f *funcs) {
		f.query = reorder(m, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	}},
	{"Query orders by UTF-16", "Query", []string{"ByteOrder"}, func(m *memkv.Driver, f *funcs) {
		f.query = reorder(m, func(a, b string) int {
			return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
		})
	}},
	{"Query applies Limit before Prefix", "Query", []string{"After"}, func(m *memkv.Driver, f *funcs) {
		f.query = func(ctx context.Context, q kv.Query) ([]kv.Item, error) {
			all := q
			all.Prefix = ""
			got, err := m.Query(ctx, all)
			return slices.DeleteFunc(got, func(it kv.Item) bool { return !strings.HasPrefix(it.Sort, q.Prefix) }), err
		}
	}},
	{"Query ignores Limit", "Query", []string{"Limit"}, func(m *memkv.Driver, f *funcs) {
		f.query = func(ctx context.Context, q kv.Query) ([]kv.Item, error) {
			if q.Limit > 0 {
				q.Limit = math.MaxInt32
			}
			return m.Query(ctx, q)
		}
	}},
	{"Query stops at 1 MiB", "Query", []string{"OverOneMegabyte"}, func(m *memkv.Driver, f *funcs) {
		f.query = func(ctx context.Context, q kv.Query) ([]kv.Item, error) {
			got, err := m.Query(ctx, q)
			return upTo(got, 1<<20), err
		}
	}},
	{"Query drops expired items", "Query", []string{"ExpiredIncluded"}, func(m *memkv.Driver, f *funcs) {
		f.query = func(ctx context.Context, q kv.Query) ([]kv.Item, error) {
			got, err := m.Query(ctx, q)
			return slices.DeleteFunc(got, func(it kv.Item) bool { return it.ExpiredAt(time.Now()) }), err
		}
	}},
	{"Query reads the partitions that extend the one asked", "Query", []string{"PartitionsIsolated"}, func(m *memkv.Driver, f *funcs) {
		f.query = func(ctx context.Context, q kv.Query) ([]kv.Item, error) {
			if err := kv.CheckQuery(q); err != nil {
				return nil, err
			}
			var got []kv.Item
			m.Each(func(it kv.Item) {
				if strings.HasPrefix(it.Partition, q.Partition) && q.InRange(it.Sort) {
					got = append(got, it)
				}
			})
			slices.SortFunc(got, func(a, b kv.Item) int { return strings.Compare(a.Partition+a.Sort, b.Partition+b.Sort) })
			if q.Reverse {
				slices.Reverse(got)
			}
			return got[:min(len(got), q.Limit)], nil
		}
	}},

	{"Put keeps the old expiry", "Commit", []string{"PutReplaces"}, func(m *memkv.Driver, f *funcs) {
		f.commit = rewrite(m, func(op *kv.Op) {
			if old, _ := m.Get(context.Background(), op.Item.Key); op.Kind == kv.OpPut && len(old) == 1 && op.Item.Expires.IsZero() {
				op.Item.Expires = old[0].Expires
			}
		})
	}},
	{"IfAbsent(t) counts only a missing item", "Commit", []string{"Conditions"}, func(m *memkv.Driver, f *funcs) {
		f.commit = rewrite(m, func(op *kv.Op) {
			if _, ok := op.If.IsAbsent(); ok {
				op.If = kv.IfAbsent(time.Time{})
			}
		})
	}},
	{"IfAbsent(t) takes an expiry at t as live", "Commit", []string{"Conditions"}, func(m *memkv.Driver, f *funcs) {
		f.commit = rewrite(m, func(op *kv.Op) {
			if at, ok := op.If.IsAbsent(); ok && !at.IsZero() {
				op.If = kv.IfAbsent(at.Add(-time.Millisecond))
			}
		})
	}},
	{"IfRev(0) holds on a missing item", "Commit", []string{"Conditions"}, func(m *memkv.Driver, f *funcs) {
		f.commit = rewrite(m, func(op *kv.Op) {
			if rev, ok := op.If.IsRev(); ok && rev == 0 {
				if got, _ := m.Get(context.Background(), op.Item.Key); len(got) == 0 {
					op.If = kv.Cond{}
				}
			}
		})
	}},
	{"Erase does nothing", "Commit", []string{"Conditions"}, func(m *memkv.Driver, f *funcs) {
		f.commit = rewrite(m, func(op *kv.Op) {
			if op.Erase {
				*op = kv.Check(op.Item.Key, op.If)
			}
		})
	}},
	{"Check writes an empty item", "Commit", []string{"Conditions"}, func(m *memkv.Driver, f *funcs) {
		f.commit = rewrite(m, func(op *kv.Op) {
			if op.Kind == kv.OpCheck {
				op.Kind = kv.OpPut
			}
		})
	}},
	{"Commit applies ops one at a time", "Commit", []string{"FirstFailingOp", "FailingConditionWritesNothing"}, func(m *memkv.Driver, f *funcs) {
		f.commit = func(ctx context.Context, ops ...kv.Op) error {
			if err := kv.CheckCommit(ops); err != nil {
				return err
			}
			for i, op := range ops {
				err := m.Commit(ctx, op)
				if ce := new(kv.ConditionError); errors.As(err, &ce) {
					return &kv.ConditionError{Index: i, Key: op.Item.Key}
				}
				if err != nil {
					return err
				}
			}
			return nil
		}
	}},
	{"Commit names the last failing op", "Commit", []string{"FirstFailingOp", "FailingConditionWritesNothing"}, func(m *memkv.Driver, f *funcs) {
		f.commit = func(ctx context.Context, ops ...kv.Op) error {
			err := m.Commit(ctx, ops...)
			if ce := new(kv.ConditionError); !errors.As(err, &ce) {
				return err
			}
			for i := len(ops) - 1; i >= 0; i-- {
				if m.Commit(ctx, kv.Check(ops[i].Item.Key, ops[i].If)) != nil {
					return &kv.ConditionError{Index: i, Key: ops[i].Item.Key}
				}
			}
			return err
		}
	}},

	{"Commit splits more than MaxOps ops", "Limits", []string{"OpCount"}, func(m *memkv.Driver, f *funcs) {
		f.commit = func(ctx context.Context, ops ...kv.Op) error {
			for len(ops) > kv.MaxOps {
				if err := m.Commit(ctx, ops[:kv.MaxOps]...); err != nil {
					return err
				}
				ops = ops[kv.MaxOps:]
			}
			return m.Commit(ctx, ops...)
		}
	}},
	{"Commit refuses MaxOps ops", "Limits", []string{"OpCount"}, func(m *memkv.Driver, f *funcs) {
		f.commit = func(ctx context.Context, ops ...kv.Op) error {
			if len(ops) >= kv.MaxOps {
				return invalid("Commit")
			}
			return m.Commit(ctx, ops...)
		}
	}},
	{"Commit refuses a value of MaxValueBytes", "Limits", []string{"ValueBytes", "LargestItemAccepted"}, func(m *memkv.Driver, f *funcs) {
		f.commit = func(ctx context.Context, ops ...kv.Op) error {
			for _, op := range ops {
				if len(op.Item.Value) >= kv.MaxValueBytes {
					return invalid("Commit")
				}
			}
			return m.Commit(ctx, ops...)
		}
	}},
	{"Commit counts keys in MaxCommitBytes", "Limits", []string{"CommitBytes"}, func(m *memkv.Driver, f *funcs) {
		f.commit = func(ctx context.Context, ops ...kv.Op) error {
			n := 0
			for _, op := range ops {
				n += len(op.Item.Value) + len(op.Item.Partition) + len(op.Item.Sort)
			}
			if n > kv.MaxCommitBytes {
				return invalid("Commit")
			}
			return m.Commit(ctx, ops...)
		}
	}},

	{"calls ignore the context", "Context", []string{"Ended"}, func(m *memkv.Driver, f *funcs) {
		bg := context.Background()
		f.get = func(_ context.Context, keys ...kv.Key) ([]kv.Item, error) { return m.Get(bg, keys...) }
		f.query = func(_ context.Context, q kv.Query) ([]kv.Item, error) { return m.Query(bg, q) }
		f.commit = func(_ context.Context, ops ...kv.Op) error { return m.Commit(bg, ops...) }
	}},
	{"calls return the context's error bare", "Context", []string{"Ended"}, func(m *memkv.Driver, f *funcs) {
		f.get = func(ctx context.Context, keys ...kv.Key) ([]kv.Item, error) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return m.Get(ctx, keys...)
		}
	}},
	{"Commit on an ended context writes, then fails", "Context", []string{"Ended"}, func(m *memkv.Driver, f *funcs) {
		f.commit = func(ctx context.Context, ops ...kv.Op) error {
			if err := m.Commit(context.Background(), ops...); err != nil {
				return err
			}
			return kv.ContextError(ctx, "Commit")
		}
	}},

	{"Commit checks, then writes, in two steps", "Races", []string{"IfAbsentOneWinner", "Counter", "Transfer"}, func(m *memkv.Driver, f *funcs) {
		f.commit = func(ctx context.Context, ops ...kv.Op) error {
			checks := make([]kv.Op, len(ops))
			for i, op := range ops {
				checks[i] = kv.Check(op.Item.Key, op.If)
			}
			if err := m.Commit(ctx, checks...); err != nil {
				return err
			}
			time.Sleep(time.Millisecond) // widens the window between the two
			writes := slices.Clone(ops)
			for i := range writes {
				writes[i].If = kv.Cond{}
			}
			return m.Commit(ctx, writes...)
		}
	}},
}

// TestSuiteCatchesMutants runs the suite's cases on each mutant, in a
// child process, and checks that the cases named for it fail.
func TestSuiteCatchesMutants(t *testing.T) {
	for _, mu := range mutants {
		t.Run(mu.name, func(t *testing.T) {
			run := "^TestMutantChild$/^" + mu.group + "$/^(" + strings.Join(mu.cases, "|") + ")$"
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+run, "-test.count=1", "-test.timeout=2m")
			cmd.Env = append(os.Environ(), mutantEnv+"="+mu.name)
			out, err := cmd.CombinedOutput()
			if ee := new(exec.ExitError); !errors.As(err, &ee) {
				t.Fatalf("the suite passed on the mutant (%v):\n%s", err, out)
			}
			for _, c := range mu.cases {
				if !strings.Contains(string(out), "--- FAIL: TestMutantChild/"+mu.group+"/"+c+" (") {
					t.Errorf("%s/%s did not fail on the mutant:\n%s", mu.group, c, out)
				}
			}
		})
	}
}

// TestMutantChild is the child process of TestSuiteCatchesMutants: it runs
// the suite on the mutant named by $KVTEST_MUTANT. Without it, it has
// nothing to do.
func TestMutantChild(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		return
	}
	i := slices.IndexFunc(mutants, func(m mutant) bool { return m.name == name })
	if i < 0 {
		t.Fatalf("no mutant %q", name)
	}
	newDriver := func(*testing.T) kv.Driver {
		m := memkv.New()
		f := &funcs{get: m.Get, query: m.Query, commit: m.Commit}
		mutants[i].mutate(m, f)
		return f
	}
	kvtest.Run(t, newDriver)
	t.Run("Races", func(t *testing.T) { kvtest.RunRaces(t, newDriver) })
}
