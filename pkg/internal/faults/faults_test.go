package faults_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/internal/testenv"
	"github.com/mobius-secrets/mobius/pkg/internal/faults"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/kv/kvtest"
	"github.com/mobius-secrets/mobius/pkg/kv/memkv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// snapshot is everything observable about a project, read without faults.
type snapshot map[string]string

func snap(t *testing.T, svc *secrets.Service, project string) snapshot {
	t.Helper()
	ctx := context.Background()
	out := snapshot{}
	list, _, err := svc.ListSecrets(ctx, project, secrets.ListQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		vs, _, err := svc.ListVersions(ctx, project, s.ID, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		desc := fmt.Sprintf("id=%s cur=%d latest=%d desc=%q", s.ID, s.CurrentVersion, s.LatestVersion, s.Description)
		for _, v := range vs {
			desc += fmt.Sprintf(" v%d=%s/%s", v.Number, v.State, v.SHA256[:8])
		}
		out[s.Name] = desc
	}
	keys, err := svc.ListAPIKeys(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		out["key:"+k.ID] = k.Name
	}
	return out
}

// TestEveryOperationCompletesOrLeavesNothing injects a dependency failure
// at every call site of every write (before the call reaches the store or
// key service, and after it returns) and checks that the operation either
// fully happened or left no trace, and that the error is Unavailable.
func TestEveryOperationCompletesOrLeavesNothing(t *testing.T) {
	type op struct {
		name string
		run  func(ctx context.Context, svc *secrets.Service) error
	}
	str := func(s string) *string { return &s }
	ops := []op{
		{"create", func(ctx context.Context, svc *secrets.Service) error {
			_, err := svc.CreateSecret(ctx, "p", secrets.CreateSecretInput{Name: "new", Values: map[string]string{"k": "fault-canary-1"}})
			return err
		}},
		{"rotate", func(ctx context.Context, svc *secrets.Service) error {
			_, err := svc.UpdateSecret(ctx, "p", "base", secrets.UpdateSecretInput{Values: map[string]string{"k": "fault-canary-2"}})
			return err
		}},
		{"rename", func(ctx context.Context, svc *secrets.Service) error {
			_, err := svc.UpdateSecret(ctx, "p", "base", secrets.UpdateSecretInput{Name: str("renamed"), Description: str("moved")})
			return err
		}},
		{"enable", func(ctx context.Context, svc *secrets.Service) error {
			_, _, err := svc.ChangeVersionState(ctx, "p", "base", "1", secrets.ActionEnable, nil)
			return err
		}},
		{"disable", func(ctx context.Context, svc *secrets.Service) error {
			_, _, err := svc.ChangeVersionState(ctx, "p", "base", "current", secrets.ActionDisable, nil)
			return err
		}},
		{"destroy", func(ctx context.Context, svc *secrets.Service) error {
			_, _, err := svc.ChangeVersionState(ctx, "p", "base", "1", secrets.ActionDestroy, nil)
			return err
		}},
		{"delete", func(ctx context.Context, svc *secrets.Service) error {
			return svc.DeleteSecret(ctx, "p", "base", nil)
		}},
		{"create key", func(ctx context.Context, svc *secrets.Service) error {
			_, _, err := svc.CreateAPIKey(ctx, "p", "ci", nil)
			return err
		}},
	}
	injected := secrets.Errorf(secrets.Unavailable, "injected dependency failure")
	cases := 0
	for _, o := range ops {
		// Learn the op's call sites with no faults.
		calls := func() []string {
			svc, _, in := setup(t)
			in.Set()
			if err := o.run(context.Background(), svc); err != nil {
				t.Fatalf("%s without faults: %v", o.name, err)
			}
			return in.Calls()
		}()
		for i, call := range calls {
			for _, when := range []faults.When{faults.Before, faults.After} {
				name := fmt.Sprintf("%s/%d-%s/%s", o.name, i, call, map[faults.When]string{faults.Before: "before", faults.After: "after"}[when])
				t.Run(name, func(t *testing.T) {
					svc, clean, in := setup(t)
					before := snap(t, clean, "p")
					// Expected end state if the op succeeds.
					ref, refClean, refIn := setup(t)
					refIn.Set()
					if err := o.run(context.Background(), ref); err != nil {
						t.Fatal(err)
					}
					_ = refClean
					nth := 0
					for _, c := range calls[:i+1] {
						if c == call {
							nth++
						}
					}
					in.Set(faults.Rule{Op: call, Nth: nth, When: when, Err: injected})
					err := o.run(context.Background(), svc)
					after := snap(t, clean, "p")
					cases++
					if err == nil {
						// Reads after the write may fail harmlessly only if the write is done.
						if !sameShape(after, snap(t, refClean, "p")) {
							t.Fatalf("succeeded but state differs from a clean run:\n got %v\nwant %v", after, snap(t, refClean, "p"))
						}
						return
					}
					if c := secrets.ErrorCode(err); c != secrets.Unavailable {
						t.Errorf("error code %q (%v), want Unavailable", c, err)
					}
					if reflect.DeepEqual(after, before) {
						return // left nothing behind
					}
					if !sameShape(after, snap(t, refClean, "p")) {
						t.Fatalf("half-done state after a failed %s:\nbefore %v\n after %v", o.name, before, after)
					}
				})
			}
		}
	}
	if cases == 0 {
		t.Fatal("no fault cases ran")
	}
	t.Logf("fault injection: %d cases", cases)
}

// sameShape compares snapshots of two independent runs: IDs, digests and
// key IDs differ between runs, so it compares names and structure only.
func sameShape(a, b snapshot) bool {
	norm := func(s snapshot) map[string]int {
		m := map[string]int{}
		for k := range s {
			if len(k) > 4 && k[:4] == "key:" {
				m["key"]++
			} else {
				m[k]++
			}
		}
		return m
	}
	if !reflect.DeepEqual(norm(a), norm(b)) {
		return false
	}
	for k, v := range a {
		if len(k) > 4 && k[:4] == "key:" {
			continue
		}
		if shape(v) != shape(b[k]) {
			return false
		}
	}
	return true
}

// shape drops IDs and digests from a snapshot line.
func shape(line string) string {
	out := []byte{}
	skip := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ':
			skip = false
			out = append(out, c)
		case skip:
		case c == '/' || (i >= 3 && line[i-3:i] == "id="):
			skip = true
			out = append(out, c)
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

// setup returns a service whose store and keys fail on demand, a clean
// service over the same store for observing it, and the injector. The store
// holds secret "base" with versions 1 (DISABLED) and 2 (ENABLED).
func setup(t *testing.T) (*secrets.Service, *secrets.Service, *faults.Injector) {
	t.Helper()
	st := testenv.Bolt(t)
	w := testenv.LocalKeys(t)
	clean := secrets.NewService(st, w, secrets.Options{})
	ctx := context.Background()
	if _, err := clean.CreateSecret(ctx, "p", secrets.CreateSecretInput{Name: "base", Values: map[string]string{"k": "v1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := clean.UpdateSecret(ctx, "p", "base", secrets.UpdateSecretInput{Values: map[string]string{"k": "v2"}}); err != nil {
		t.Fatal(err)
	}
	in := &faults.Injector{}
	svc := secrets.NewService(&faults.Driver{Inner: st, In: in}, &faults.Keys{Inner: w, In: in}, secrets.Options{MaxAttempts: 3, AuthCacheTTL: -1})
	return svc, clean, in
}

// newDriver returns a faults.Driver over memkv holding item p/a, its
// injector, and a second injector that records the calls reaching memkv.
func newDriver(t *testing.T) (d *faults.Driver, in, reached *faults.Injector, mem *memkv.Driver) {
	t.Helper()
	mem = memkv.New()
	if err := mem.Commit(t.Context(), kv.Put(kv.Item{Key: kv.Key{Partition: "p", Sort: "a"}, Value: []byte("A")}, kv.Cond{})); err != nil {
		t.Fatal(err)
	}
	in, reached = &faults.Injector{}, &faults.Injector{}
	return &faults.Driver{Inner: &faults.Driver{Inner: mem, In: reached}, In: in}, in, reached, mem
}

var (
	keyA = kv.Key{Partition: "p", Sort: "a"}
	keyB = kv.Key{Partition: "p", Sort: "b"}
	// driverCalls makes one call of each op, on p/a and p/b.
	driverCalls = map[string]func(ctx context.Context, d kv.Driver) ([]kv.Item, error){
		"Get": func(ctx context.Context, d kv.Driver) ([]kv.Item, error) { return d.Get(ctx, keyA) },
		"Query": func(ctx context.Context, d kv.Driver) ([]kv.Item, error) {
			return d.Query(ctx, kv.Query{Partition: "p", Limit: 10})
		},
		"Commit": func(ctx context.Context, d kv.Driver) ([]kv.Item, error) {
			return nil, d.Commit(ctx, kv.Put(kv.Item{Key: keyB, Value: []byte("B")}, kv.Cond{}))
		},
	}
	driverOps = []string{"Get", "Query", "Commit"}
)

// TestDriverConformance: with no rules the wrapper is a kv.Driver like
// the one it wraps.
func TestDriverConformance(t *testing.T) {
	newDriver := func(*testing.T) kv.Driver { return &faults.Driver{Inner: memkv.New(), In: &faults.Injector{}} }
	kvtest.Run(t, newDriver)
	kvtest.RunRaces(t, newDriver)
}

// TestDriverFaults injects a fault before and after each op: the caller
// gets the injected error and no items, the inner driver is reached only
// after, and only the named op fails.
func TestDriverFaults(t *testing.T) {
	injected := kv.Errorf(kv.Unavailable, "test", nil, "injected dependency failure")
	for _, op := range driverOps {
		for _, when := range []faults.When{faults.Before, faults.After} {
			name := map[faults.When]string{faults.Before: "before", faults.After: "after"}[when]
			t.Run(op+"/"+name, func(t *testing.T) {
				d, in, reached, mem := newDriver(t)
				in.Set(faults.Rule{Op: op, When: when, Err: injected})
				got, err := driverCalls[op](t.Context(), d)
				if !errors.Is(err, injected) || got != nil {
					t.Fatalf("%s: %d items, error %v; want none and the injected error", op, len(got), err)
				}
				wantReached := map[faults.When][]string{faults.Before: nil, faults.After: {op}}[when]
				if r := reached.Calls(); !reflect.DeepEqual(r, wantReached) {
					t.Fatalf("calls that reached the inner driver: %q, want %q", r, wantReached)
				}
				if op == "Commit" {
					stored, err := mem.Get(t.Context(), keyB)
					if err != nil {
						t.Fatal(err)
					}
					if want := map[faults.When]int{faults.Before: 0, faults.After: 1}[when]; len(stored) != want {
						t.Fatalf("a Commit failed %s: %d items written, want %d", name, len(stored), want)
					}
				}
				for _, other := range driverOps {
					if other == op {
						continue
					}
					if _, err := driverCalls[other](t.Context(), d); err != nil {
						t.Fatalf("%s under a rule for %s: %v", other, op, err)
					}
				}
				if c, want := in.Calls(), len(driverOps); len(c) != want || c[0] != op {
					t.Fatalf("the injector saw %q, want %s first and %d calls", c, op, want)
				}
			})
		}
	}
}

// TestDriverFaultRules: Nth counts per op, an empty Op matches every op,
// and Set resets the counts.
func TestDriverFaultRules(t *testing.T) {
	injected := errors.New("injected")
	d, in, _, _ := newDriver(t)
	in.Set(faults.Rule{Op: "Get", Nth: 2, When: faults.Before, Err: injected})
	var errs []error
	for range 3 {
		_, err := d.Query(t.Context(), kv.Query{Partition: "p", Limit: 1})
		errs = append(errs, err)
		_, err = d.Get(t.Context(), keyA)
		errs = append(errs, err)
	}
	if want := []error{nil, nil, nil, injected, nil, nil}; !reflect.DeepEqual(errs, want) {
		t.Fatalf("Nth 2 of Get, with Queries between: errors %v, want %v", errs, want)
	}
	in.Set(faults.Rule{Op: "Get", Nth: 1, When: faults.Before, Err: injected})
	if _, err := d.Get(t.Context(), keyA); !errors.Is(err, injected) {
		t.Fatalf("the first Get after Set: %v, want the injected error", err)
	}
	in.Set(faults.Rule{When: faults.Before, Err: injected})
	for _, op := range driverOps {
		if _, err := driverCalls[op](t.Context(), d); !errors.Is(err, injected) {
			t.Fatalf("%s under a rule for every op: %v, want the injected error", op, err)
		}
	}
}

// TestDriverDelayOnEndedContext: a context that ends during an injected
// delay gives the port's Unavailable error, and the call goes no further.
func TestDriverDelayOnEndedContext(t *testing.T) {
	for _, op := range driverOps {
		t.Run(op, func(t *testing.T) {
			d, in, reached, mem := newDriver(t)
			in.Set(faults.Rule{Op: op, Delay: time.Hour})
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := driverCalls[op](ctx, d)
			var ke *kv.Error
			if !errors.As(err, &ke) || ke.Code != kv.Unavailable || !errors.Is(err, context.Canceled) {
				t.Fatalf("%s delayed on a cancelled context: %v, want an Unavailable *kv.Error wrapping context.Canceled", op, err)
			}
			if r := reached.Calls(); len(r) != 0 {
				t.Fatalf("calls that reached the inner driver: %q, want none", r)
			}
			if n := mem.Len(); n != 1 {
				t.Fatalf("%d items stored, want the 1 from before", n)
			}
		})
	}
}
