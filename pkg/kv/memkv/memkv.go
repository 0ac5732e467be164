// Package memkv is a kv.Driver in memory: the reference driver, for the
// domain's unit tests and as the plainest statement of the port's
// semantics. It keeps nothing after the process ends.
//
// It imports pkg/kv and the standard library.
package memkv

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// Driver is a kv.Driver over a map. The zero value is not usable; call New.
type Driver struct {
	mu    sync.RWMutex
	parts map[string]map[string]kv.Item
	// Commits counts successful commits, for tests.
	commits int
}

var _ kv.Driver = (*Driver)(nil)

// New returns an empty Driver.
func New() *Driver { return &Driver{parts: map[string]map[string]kv.Item{}} }

func clone(it kv.Item) kv.Item {
	it.Value = bytes.Clone(it.Value)
	if it.Value == nil {
		it.Value = []byte{}
	}
	return it
}

func (d *Driver) lookup(k kv.Key) (kv.Item, bool) {
	it, ok := d.parts[k.Partition][k.Sort]
	return it, ok
}

// Get implements kv.Driver.
func (d *Driver) Get(ctx context.Context, keys ...kv.Key) ([]kv.Item, error) {
	if err := kv.ContextError(ctx, "Get"); err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := kv.CheckKey(k); err != nil {
			return nil, err
		}
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]kv.Item, 0, len(keys))
	seen := make(map[kv.Key]bool, len(keys))
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		if it, ok := d.lookup(k); ok {
			out = append(out, clone(it))
		}
	}
	return out, nil
}

// Query implements kv.Driver.
func (d *Driver) Query(ctx context.Context, q kv.Query) ([]kv.Item, error) {
	if err := kv.ContextError(ctx, "Query"); err != nil {
		return nil, err
	}
	if err := kv.CheckQuery(q); err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	part := d.parts[q.Partition]
	sks := make([]string, 0, len(part))
	for sk := range part {
		if q.InRange(sk) {
			sks = append(sks, sk)
		}
	}
	slices.Sort(sks)
	if q.Reverse {
		slices.Reverse(sks)
	}
	if len(sks) > q.Limit {
		sks = sks[:q.Limit]
	}
	out := make([]kv.Item, len(sks))
	for i, sk := range sks {
		out[i] = clone(part[sk])
	}
	return out, nil
}

// Commit implements kv.Driver.
func (d *Driver) Commit(ctx context.Context, ops ...kv.Op) error {
	if err := kv.ContextError(ctx, "Commit"); err != nil {
		return err
	}
	if err := kv.CheckCommit(ops); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, op := range ops {
		var stored *kv.Item
		if it, ok := d.lookup(op.Item.Key); ok {
			stored = &it
		}
		if !op.If.Holds(stored) {
			return &kv.ConditionError{Index: i, Key: op.Item.Key}
		}
	}
	for _, op := range ops {
		k := op.Item.Key
		switch op.Kind {
		case kv.OpPut:
			part := d.parts[k.Partition]
			if part == nil {
				part = map[string]kv.Item{}
				d.parts[k.Partition] = part
			}
			it := clone(op.Item)
			if !it.Expires.IsZero() {
				it.Expires = it.Expires.Truncate(1e6).UTC()
			}
			part[k.Sort] = it
		case kv.OpDelete:
			delete(d.parts[k.Partition], k.Sort)
			if len(d.parts[k.Partition]) == 0 {
				delete(d.parts, k.Partition)
			}
		}
	}
	d.commits++
	return nil
}

// Partitions returns up to limit names of partitions that hold items and
// start with prefix, in byte order, after the name after: what the domain's
// Sweep needs of a store that keeps expired items (secrets.PartitionLister).
func (d *Driver) Partitions(ctx context.Context, prefix, after string, limit int) ([]string, error) {
	if err := kv.ContextError(ctx, "Partitions"); err != nil {
		return nil, err
	}
	if limit < 1 {
		return nil, kv.Errorf(kv.Invalid, "Partitions", nil, "limit must be at least 1, not %d", limit)
	}
	d.mu.RLock()
	var names []string
	for p := range d.parts {
		if strings.HasPrefix(p, prefix) && p > after {
			names = append(names, p)
		}
	}
	d.mu.RUnlock()
	slices.Sort(names)
	if len(names) > limit {
		names = names[:limit]
	}
	return names, nil
}

// Len returns how many items are stored.
func (d *Driver) Len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	n := 0
	for _, p := range d.parts {
		n += len(p)
	}
	return n
}

// Each calls f with every item, in no particular order, under a read lock;
// f must not call the driver.
func (d *Driver) Each(f func(kv.Item)) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, p := range d.parts {
		for _, it := range p {
			f(clone(it))
		}
	}
}

// Empty reports whether the driver holds no item.
func (d *Driver) Empty(ctx context.Context) (bool, error) {
	if err := kv.ContextError(ctx, "Empty"); err != nil {
		return false, err
	}
	return d.Len() == 0, nil
}
