package secrets

import (
	"bytes"
	"testing"
	"time"
)

// A data key taken from the cache is the caller's own: the cache zeroing
// its entry on eviction or expiry leaves the copy intact.
func TestCachedDataKeyIsACopy(t *testing.T) {
	now := time.Unix(0, 0)
	c := newTTLCache[[]byte](1, time.Minute, func() time.Time { return now }, func(k []byte) { clear(k) })
	want := bytes.Repeat([]byte{7}, 32)
	c.put("a", bytes.Clone(want))
	got, ok := c.getWith("a", bytes.Clone)
	if !ok || !bytes.Equal(got, want) {
		t.Fatalf("getWith: %x, %v", got, ok)
	}
	c.put("b", bytes.Repeat([]byte{9}, 32)) // evicts "a" (max 1), zeroing the cache's copy
	if _, ok := c.get("a"); ok {
		t.Fatal("a is still cached")
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the caller's key was zeroed by the eviction: %x", got)
	}
	got, _ = c.getWith("b", bytes.Clone)
	now = now.Add(time.Hour) // expires "b" on the next read
	c.get("b")
	if !bytes.Equal(got, bytes.Repeat([]byte{9}, 32)) {
		t.Fatalf("the caller's key was zeroed by the expiry: %x", got)
	}
}

// putIf checks its condition under the lock and drops the value (through
// onEvict) when it does not hold.
func TestPutIf(t *testing.T) {
	var evicted [][]byte
	c := newTTLCache[[]byte](4, time.Minute, time.Now, func(k []byte) { evicted = append(evicted, k) })
	c.putIf("a", []byte("a"), func() bool { return false })
	if _, ok := c.get("a"); ok || len(evicted) != 1 {
		t.Fatalf("putIf with a false condition cached the value (evicted %q)", evicted)
	}
	c.putIf("a", []byte("a"), func() bool { return true })
	if _, ok := c.get("a"); !ok {
		t.Fatal("putIf with a true condition did not cache the value")
	}
}
