package secrets

import (
	"sync"
	"time"
)

// ttlCache is a small bounded map whose entries expire. When full, it drops
// the entry closest to expiry. onEvict (if set) sees every value dropped.
type ttlCache[V any] struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	now     func() time.Time
	items   map[string]ttlItem[V]
	onEvict func(V)
}

type ttlItem[V any] struct {
	v   V
	exp time.Time
}

func newTTLCache[V any](max int, ttl time.Duration, now func() time.Time, onEvict func(V)) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, max: max, now: now, items: make(map[string]ttlItem[V]), onEvict: onEvict}
}

func (c *ttlCache[V]) get(k string) (V, bool) { return c.getWith(k, nil) }

// getWith is get, returning f(value) computed under the cache's lock (when
// f is not nil): a copy the caller owns, which eviction cannot touch.
func (c *ttlCache[V]) getWith(k string, f func(V) V) (V, bool) {
	var zero V
	if c == nil || c.max <= 0 {
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[k]
	if !ok {
		return zero, false
	}
	if !c.now().Before(it.exp) {
		c.dropLocked(k, it)
		return zero, false
	}
	if f != nil {
		return f(it.v), true
	}
	return it.v, true
}

func (c *ttlCache[V]) put(k string, v V) { c.putIf(k, v, nil) }

// putIf is put, done only if ok (when not nil) holds. ok runs under the
// cache's lock, so a removeIf cannot fall between the check and the put.
func (c *ttlCache[V]) putIf(k string, v V, ok func() bool) {
	if c == nil || c.max <= 0 {
		if c != nil && c.onEvict != nil {
			c.onEvict(v)
		}
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok != nil && !ok() {
		if c.onEvict != nil {
			c.onEvict(v)
		}
		return
	}
	now := c.now()
	if old, ok := c.items[k]; ok {
		c.dropLocked(k, old)
	}
	if len(c.items) >= c.max {
		// Drop expired entries first, then the one nearest expiry.
		var victim string
		var vexp time.Time
		for key, it := range c.items {
			if !now.Before(it.exp) {
				c.dropLocked(key, it)
				continue
			}
			if victim == "" || it.exp.Before(vexp) {
				victim, vexp = key, it.exp
			}
		}
		if len(c.items) >= c.max && victim != "" {
			c.dropLocked(victim, c.items[victim])
		}
	}
	c.items[k] = ttlItem[V]{v: v, exp: now.Add(c.ttl)}
}

// remove drops the entry of k, if any.
func (c *ttlCache[V]) remove(k string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if it, ok := c.items[k]; ok {
		c.dropLocked(k, it)
	}
}

// removeIf drops every entry whose value satisfies f.
func (c *ttlCache[V]) removeIf(f func(V) bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, it := range c.items {
		if f(it.v) {
			c.dropLocked(k, it)
		}
	}
}

func (c *ttlCache[V]) dropLocked(k string, it ttlItem[V]) {
	delete(c.items, k)
	if c.onEvict != nil {
		c.onEvict(it.v)
	}
}
