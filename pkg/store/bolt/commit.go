package bolt

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/mobius-secrets/mobius/pkg/kv"
	bbolt "go.etcd.io/bbolt"
)

// A request is one Commit waiting for the writer.
type request struct {
	ops   []prepared
	erase bool // it holds an Erase
	bytes int  // of its encoded values
	// state moves from queued to taken (by the writer) or to abandoned
	// (by a caller whose context ended first), once.
	state atomic.Int32
	err   error
	done  chan struct{}
}

const (
	queued int32 = iota
	taken
	abandoned
)

// prepared is an operation encoded for bbolt, outside the transaction.
type prepared struct {
	kind  kv.OpKind
	key   kv.Key
	bkey  []byte
	value []byte // header and value, for a put
	cond  kv.Cond
}

// writer is the queue of commits and the one goroutine that writes them.
type writer struct {
	mu       sync.Mutex
	cond     *sync.Cond
	queue    []*request
	closed   bool
	stopped  chan struct{}
	maxBatch int
	// hook, if set (by tests), runs inside each transaction after its
	// commits are applied, with their number; an error fails the
	// transaction.
	hook func(n int) error
	// txs counts transactions written, for tests.
	txs atomic.Int64
}

func (d *Driver) startWriter(maxBatch int) {
	d.w.cond = sync.NewCond(&d.w.mu)
	d.w.stopped = make(chan struct{})
	d.w.maxBatch = maxBatch
	go d.writeLoop()
}

// stop lets the writer finish what is queued and waits for it.
func (w *writer) stop() {
	w.mu.Lock()
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
	<-w.stopped
}

func (w *writer) enqueue(r *request) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return kv.Errorf(kv.Unavailable, "Commit", nil, "the store is closed")
	}
	w.queue = append(w.queue, r)
	w.cond.Signal()
	return nil
}

// next waits for commits and takes the next transaction's share: in
// arrival order, at most maxBatch commits and maxBatchBytes of values
// (at least one), leaving out commits abandoned meanwhile. open is false
// once the writer is stopped and the queue is empty.
func (w *writer) next() (batch []*request, open bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.queue) == 0 && !w.closed {
		w.cond.Wait()
	}
	if len(w.queue) == 0 {
		return nil, false
	}
	n, size := 0, 0
	for n < len(w.queue) && len(batch) < w.maxBatch {
		r := w.queue[n]
		if len(batch) > 0 && size+r.bytes > maxBatchBytes {
			break
		}
		n++
		if r.state.CompareAndSwap(queued, taken) {
			batch = append(batch, r)
			size += r.bytes
		}
	}
	clear(w.queue[:n])
	w.queue = w.queue[n:]
	if len(w.queue) == 0 {
		w.queue = nil
	}
	return batch, true
}

func (d *Driver) writeLoop() {
	defer close(d.w.stopped)
	for {
		batch, open := d.w.next()
		if !open {
			return
		}
		if len(batch) > 0 {
			d.write(batch)
		}
	}
}

// Commit implements kv.Driver. See the package documentation for how
// concurrent commits share a transaction.
func (d *Driver) Commit(ctx context.Context, ops ...kv.Op) error {
	if err := kv.ContextError(ctx, "Commit"); err != nil {
		return err
	}
	if err := kv.CheckCommit(ops); err != nil {
		return err
	}
	r := &request{ops: make([]prepared, len(ops)), done: make(chan struct{})}
	for i := range ops {
		op := &ops[i]
		p := prepared{kind: op.Kind, key: op.Item.Key, bkey: itemKey(op.Item.Key), cond: op.If}
		if op.Kind == kv.OpPut {
			p.value = encodeValue(&op.Item)
			r.bytes += len(p.value)
		}
		r.erase = r.erase || op.Erase
		r.ops[i] = p
	}
	if err := d.w.enqueue(r); err != nil {
		return err
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(queued, abandoned) {
			return kv.Errorf(kv.Unavailable, "Commit", ctx.Err(), "the request ended before the commit was written; nothing was written")
		}
		return kv.Errorf(kv.Unavailable, "Commit", ctx.Err(), "the request ended while the commit was being written; it may have been applied")
	}
}

// write runs one transaction for batch and answers each commit: the ones
// without an Erase as soon as the transaction is durable, the others after
// the scrub.
func (d *Driver) write(batch []*request) {
	err := d.update("Commit", func(tx *bbolt.Tx) error {
		b, err := kvBucket(tx)
		if err != nil {
			return err
		}
		b.FillPercent = fillPercent
		for _, r := range batch {
			var fatal error
			r.err, fatal = apply(b, r)
			if fatal != nil {
				return fatal
			}
		}
		if d.w.hook != nil {
			return d.w.hook(len(batch))
		}
		return nil
	})
	d.w.txs.Add(1)
	scrub := d.scrubPending.Swap(false)
	var erasers []*request
	for _, r := range batch {
		r.err = d.classify("Commit", r.err)
		if err != nil {
			r.err = err
		}
		if r.err == nil && r.erase {
			erasers = append(erasers, r)
			scrub = true
			continue
		}
		close(r.done)
	}
	if scrub {
		d.scrubAfterErase()
	}
	for _, r := range erasers {
		close(r.done)
	}
}

// apply checks every condition of r against b, then, if all hold, applies
// r's operations. result is r's own outcome; fatal is a failure of the
// transaction, after which nothing of it may be committed.
func apply(b *bbolt.Bucket, r *request) (result, fatal error) {
	for i := range r.ops {
		p := &r.ops[i]
		if p.cond.IsNone() {
			continue
		}
		var stored *kv.Item
		if v := b.Get(p.bkey); v != nil {
			rev, exp, _, err := decodeHeader(v)
			if err != nil {
				return err, nil
			}
			stored = &kv.Item{Key: p.key, Rev: rev, Expires: exp}
		}
		if !p.cond.Holds(stored) {
			return &kv.ConditionError{Index: i, Key: p.key}, nil
		}
	}
	for i := range r.ops {
		p := &r.ops[i]
		var err error
		switch p.kind {
		case kv.OpPut:
			err = b.Put(p.bkey, p.value)
		case kv.OpDelete:
			err = b.Delete(p.bkey)
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// update runs fn in a write transaction, committed (and synced) if fn
// returns nil.
func (d *Driver) update(op string, fn func(tx *bbolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer d.guard(op, &err)
	return d.classify(op, d.db.Update(fn))
}
