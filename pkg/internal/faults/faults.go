// Package faults wraps a kv.Driver and a KeyWrapper so tests can
// make any call fail, before or after it reaches the real dependency, or
// slow down. It is for tests only.
package faults

import (
	"context"
	"sync"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// When says where an injected fault strikes.
type When int

const (
	Before When = iota // the call never reaches the dependency
	After              // the call completes, then the caller sees an error
)

// Rule is one injected fault: on the Nth call (1-based, counted per Op) of
// Op ("" matches every op), return Err at When, after sleeping Delay.
type Rule struct {
	Op    string
	Nth   int // 0: every call
	When  When
	Err   error
	Delay time.Duration
}

// Injector holds the rules and counts calls. The zero value injects nothing.
type Injector struct {
	mu    sync.Mutex
	rules []Rule
	calls map[string]int
	log   []string
}

// Set replaces the rules and resets the counts.
func (in *Injector) Set(rules ...Rule) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = rules
	in.calls = map[string]int{}
	in.log = nil
}

// Calls returns the ops called since the last Set, in order.
func (in *Injector) Calls() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.log...)
}

func (in *Injector) hit(op string) (before, after error, delay time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.calls == nil {
		in.calls = map[string]int{}
	}
	in.calls[op]++
	in.log = append(in.log, op)
	n := in.calls[op]
	for _, r := range in.rules {
		if (r.Op == "" || r.Op == op) && (r.Nth == 0 || r.Nth == n) {
			delay += r.Delay
			if r.When == Before && before == nil {
				before = r.Err
			} else if r.When == After && after == nil {
				after = r.Err
			}
		}
	}
	return before, after, delay
}

// do runs f under the injector's rules for op.
func do(ctx context.Context, in *Injector, op string, f func() error) error {
	return doOr(ctx, in, op, f, ctx.Err)
}

// doOr is do, returning ended() if ctx ends during an injected delay.
func doOr(ctx context.Context, in *Injector, op string, f func() error, ended func() error) error {
	before, after, delay := in.hit(op)
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ended()
		case <-t.C:
		}
	}
	if before != nil {
		return before
	}
	if err := f(); err != nil {
		return err
	}
	return after
}

// Driver is a kv.Driver whose calls pass through an Injector as the ops
// "Get", "Query" and "Commit". A fault Before means the call never reaches
// Inner; After means Inner completes it (a Commit is applied), then the
// caller gets the fault's error and no items. A context that ends during an
// injected delay gives the Unavailable *kv.Error the port promises.
type Driver struct {
	Inner kv.Driver
	In    *Injector
}

var _ kv.Driver = (*Driver)(nil)

func (d *Driver) do(ctx context.Context, op string, f func() error) error {
	return doOr(ctx, d.In, op, f, func() error { return kv.ContextError(ctx, op) })
}

func (d *Driver) Get(ctx context.Context, keys ...kv.Key) (out []kv.Item, err error) {
	err = d.do(ctx, "Get", func() (e error) { out, e = d.Inner.Get(ctx, keys...); return })
	return ret(out, err)
}

func (d *Driver) Query(ctx context.Context, q kv.Query) (out []kv.Item, err error) {
	err = d.do(ctx, "Query", func() (e error) { out, e = d.Inner.Query(ctx, q); return })
	return ret(out, err)
}

func (d *Driver) Commit(ctx context.Context, ops ...kv.Op) error {
	return d.do(ctx, "Commit", func() error { return d.Inner.Commit(ctx, ops...) })
}

// ret drops a result that came with an injected error.
func ret[T any](v T, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// Keys is a secrets.KeyWrapper whose calls pass through an Injector.
type Keys struct {
	Inner secrets.KeyWrapper
	In    *Injector
}

var _ secrets.KeyWrapper = (*Keys)(nil)

func (k *Keys) GenerateDataKey(ctx context.Context, ec map[string]string) (pt, wrapped []byte, err error) {
	err = do(ctx, k.In, "GenerateDataKey", func() (e error) { pt, wrapped, e = k.Inner.GenerateDataKey(ctx, ec); return })
	if err != nil {
		clear(pt)
		return nil, nil, err
	}
	return pt, wrapped, nil
}

func (k *Keys) UnwrapDataKey(ctx context.Context, wrapped []byte, ec map[string]string) (out []byte, err error) {
	err = do(ctx, k.In, "UnwrapDataKey", func() (e error) { out, e = k.Inner.UnwrapDataKey(ctx, wrapped, ec); return })
	if err != nil {
		clear(out)
		return nil, err
	}
	return out, nil
}
