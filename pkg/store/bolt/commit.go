package bolt

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/mobius-secrets/mobius/pkg/kv"
	bbolt "go.etcd.io/bbolt"
)

// A request is one Commit waiting to be written.
type request struct {
	ops   []prepared
	erase bool // it holds an Erase
	bytes int  // of its encoded values
	// state moves from queued to taken (by a leader) or to abandoned
	// (by a caller whose context ended first), once.
	state atomic.Int32
	err   error
	done  chan struct{}
	// lead receives once if this request is made the next leader while it
	// waits (writer.heir).
	lead chan struct{}
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

// writer is the queue of commits and who writes them. There is no writer
// goroutine: the commit that finds nobody writing becomes the leader and
// writes, in its own goroutine, a transaction of the commits queued at
// that moment (itself first). Commits that arrive while a leader writes
// queue; when its transaction is durable and answered, the leader makes
// the first commit still queued the next leader (its heir) and returns.
// So a lone commit costs no hand-off to another goroutine and back, and
// concurrent ones still share transactions. At most one leader writes at
// a time: busy is set from when a commit starts leading until a leader
// finds the queue empty, including while leadership passes to an heir.
type writer struct {
	mu       sync.Mutex
	queue    []*request
	busy     bool
	heir     *request // told to lead, not leading yet
	closed   bool
	idle     *sync.Cond // broadcast when busy becomes false
	maxBatch int
	// hook, if set (by tests), runs inside each transaction after its
	// commits are applied, with their number; an error fails the
	// transaction.
	hook func(n int) error
	// txs counts transactions written, for tests.
	txs atomic.Int64
}

// initWriter sets up the commit queue; commits lead their own
// transactions, so nothing is started.
func (d *Driver) initWriter(maxBatch int) {
	d.w.idle = sync.NewCond(&d.w.mu)
	d.w.maxBatch = maxBatch
}

// stop refuses new commits, lets the leaders write what is queued and
// waits for them.
func (w *writer) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for w.busy {
		w.idle.Wait()
	}
}

// enqueue queues r; lead reports whether r must lead (nobody writes).
func (w *writer) enqueue(r *request) (lead bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false, kv.Errorf(kv.Unavailable, "Commit", nil, "the store is closed")
	}
	w.queue = append(w.queue, r)
	if w.busy {
		return false, nil
	}
	w.busy = true
	return true, nil
}

// next takes the leader's transaction's share of the queue: in arrival
// order, at most maxBatch commits and maxBatchBytes of values (at least
// one, unless all were abandoned), leaving out commits abandoned
// meanwhile. Called by the leader, with mu held.
func (w *writer) next() (batch []*request) {
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
	return batch
}

// handOff ends the current leader's turn, with mu held: it tells the first
// commit still queued to lead, or, if none is, clears busy. Commits
// abandoned at the head of the queue are dropped.
func (w *writer) handOff() {
	for len(w.queue) > 0 && w.queue[0].state.Load() == abandoned {
		w.queue[0] = nil
		w.queue = w.queue[1:]
	}
	if len(w.queue) == 0 {
		w.queue = nil
		w.heir = nil
		w.busy = false
		w.idle.Broadcast()
		return
	}
	w.heir = w.queue[0]
	w.heir.lead <- struct{}{}
}

// lead writes transactions as the leader until this goroutine's own
// request r is answered, then hands leadership on. A leader's request is
// the first one queued and not abandoned (a commit that starts leading
// found the queue empty; an heir is the head of the queue), so the first
// transaction takes it; the loop is only a guard.
func (d *Driver) lead(r *request) {
	for {
		d.w.mu.Lock()
		d.w.heir = nil
		batch := d.w.next()
		d.w.mu.Unlock()
		if len(batch) > 0 {
			d.write(batch)
		}
		select {
		case <-r.done:
			d.w.mu.Lock()
			d.w.handOff()
			d.w.mu.Unlock()
			return
		default:
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
	r := &request{ops: make([]prepared, len(ops)), done: make(chan struct{}), lead: make(chan struct{}, 1)}
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
	lead, err := d.w.enqueue(r)
	if err != nil {
		return err
	}
	if lead {
		d.lead(r)
		return r.err
	}
	select {
	case <-r.done:
		return r.err
	case <-r.lead:
		d.lead(r)
		return r.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(queued, abandoned) {
			// Told to lead meanwhile: pass it on, unwritten.
			d.w.mu.Lock()
			if d.w.heir == r {
				d.w.handOff()
			}
			d.w.mu.Unlock()
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
