package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// waitQueued waits until n commits wait for a leader.
func waitQueued(t *testing.T, d *bolt.Driver, n int) {
	t.Helper()
	for bolt.Queued(d) < n {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// gate makes the first transaction wait inside until release is closed,
// so that the commits that follow queue behind it.
type gate struct {
	entered chan struct{}
	release chan struct{}
	sizes   chan int // the number of commits of each later transaction
	fail    error    // the error of every later transaction
}

func newGate(d *bolt.Driver) *gate {
	g := &gate{entered: make(chan struct{}), release: make(chan struct{}), sizes: make(chan int, 100)}
	first := true
	bolt.SetTxHook(d, func(n int) error {
		if first {
			first = false
			close(g.entered)
			<-g.release
			return nil
		}
		g.sizes <- n
		return g.fail
	})
	return g
}

// start runs commit in a goroutine and returns its result's channel.
func start(d *bolt.Driver, c context.Context, ops ...kv.Op) chan error {
	ch := make(chan error, 1)
	go func() { ch <- d.Commit(c, ops...) }()
	return ch
}

func put(p, s, v string, c kv.Cond) kv.Op {
	return kv.Put(kv.Item{Key: key(p, s), Value: []byte(v)}, c)
}

var absent = kv.IfAbsent(time.Time{})

// Commits that arrive while a transaction is written share the next one,
// in arrival order; each is applied only if its own conditions hold, and
// a failing one does not affect the others.
func TestQueuedCommitsShareATransaction(t *testing.T) {
	d := MustOpen(t)
	g := newGate(d)
	first := start(d, ctx, put("p", "first", "0", kv.Cond{}))
	<-g.entered

	var results []chan error
	for _, ops := range [][]kv.Op{
		{put("p", "a", "A", absent)},
		{kv.Check(key("p", "missing"), kv.IfExists()), put("p", "b", "B", kv.Cond{})}, // fails: nothing of it lands
		{put("p", "c", "C", absent)},
		{put("p", "a", "A2", absent)}, // fails: "a" came first in this transaction
		{put("p", "d", "D", kv.IfRev(0)), kv.Delete(key("p", "first"), kv.IfExists())}, // "d" is absent: fails
		{kv.Delete(key("p", "first"), kv.IfExists()), put("p", "e", "E", absent)},
	} {
		results = append(results, start(d, ctx, ops...))
		waitQueued(t, d, len(results))
	}
	// An invalid commit never queues.
	if err := d.Commit(ctx, put("p", "", "x", kv.Cond{})); kv.ErrorCode(err) != kv.Invalid {
		t.Fatalf("an invalid commit: %v, want Invalid", err)
	}
	close(g.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wantFail := map[int]int{1: 0, 3: 0, 4: 0} // commit → failing op
	for i, ch := range results {
		err := <-ch
		var ce *kv.ConditionError
		if op, fails := wantFail[i]; fails {
			if !errors.As(err, &ce) || ce.Index != op {
				t.Errorf("commit %d: %v, want the condition of op %d to fail", i, err, op)
			}
		} else if err != nil {
			t.Errorf("commit %d: %v", i, err)
		}
	}
	if n := <-g.sizes; n != len(results) {
		t.Errorf("the second transaction took %d commits, want all %d", n, len(results))
	}
	if n := bolt.Transactions(d); n != 2 {
		t.Errorf("%d transactions, want 2", n)
	}
	got := map[string]string{}
	for _, it := range all(t, d, "p") {
		got[it.Sort] = string(it.Value)
	}
	if want := map[string]string{"a": "A", "c": "C", "e": "E"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the batch: %v, want %v", got, want)
	}
}

// A transaction that fails as a whole fails each of its commits with
// Unavailable, and writes none of them; the next one works.
func TestAFailedTransactionFailsEachCommit(t *testing.T) {
	d := MustOpen(t)
	g := newGate(d)
	g.fail = errors.New("the disk is full")
	first := start(d, ctx, put("p", "first", "0", kv.Cond{}))
	<-g.entered
	var results []chan error
	for i := range 3 {
		results = append(results, start(d, ctx, put("p", fmt.Sprint(i), "v", absent)))
		waitQueued(t, d, i+1)
	}
	close(g.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, ch := range results {
		if err := <-ch; kv.ErrorCode(err) != kv.Unavailable {
			t.Errorf("commit %d of a failed transaction: %v, want Unavailable", i, err)
		}
	}
	if got := all(t, d, "p"); len(got) != 1 {
		t.Fatalf("a failed transaction wrote: %v", got)
	}
	g.fail = nil
	if err := d.Commit(ctx, put("p", "0", "v", absent)); err != nil {
		t.Fatalf("a commit after the failed transaction: %v", err)
	}
}

// A commit whose context ends while it waits is withdrawn: it returns
// Unavailable and is never written.
func TestAnAbandonedCommitIsNotWritten(t *testing.T) {
	d := MustOpen(t)
	g := newGate(d)
	first := start(d, ctx, put("p", "first", "0", kv.Cond{}))
	<-g.entered
	c, cancel := context.WithCancel(ctx)
	abandoned := start(d, c, put("p", "abandoned", "v", kv.Cond{}))
	waitQueued(t, d, 1)
	kept := start(d, ctx, put("p", "kept", "v", kv.Cond{}))
	waitQueued(t, d, 2)
	cancel()
	if err := <-abandoned; kv.ErrorCode(err) != kv.Unavailable || !errors.Is(err, context.Canceled) {
		t.Fatalf("the abandoned commit: %v, want Unavailable wrapping context.Canceled", err)
	}
	close(g.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-kept; err != nil {
		t.Fatal(err)
	}
	if n := <-g.sizes; n != 1 {
		t.Errorf("the second transaction took %d commits, want 1 (the abandoned one left)", n)
	}
	if items, _ := d.Get(ctx, key("p", "abandoned"), key("p", "kept")); len(items) != 1 || items[0].Sort != "kept" {
		t.Fatalf("after the batch: %v, want only kept", items)
	}
}

// Many writers at once: every commit that returned nil is in the file
// after reopening, read-modify-write under IfRev loses no update, and
// racing IfAbsent commits on one key have exactly one winner.
func TestConcurrentCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mobius.db")
	d := mustOpenAt(t, path)
	const writers, each = 32, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	winners := make(chan int, writers)
	startLine := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			<-startLine
			// The race on one key.
			err := d.Commit(ctx, put("race", "k", fmt.Sprint(w), absent))
			var ce *kv.ConditionError
			switch {
			case err == nil:
				winners <- w
			case !errors.As(err, &ce):
				errs <- fmt.Errorf("racing IfAbsent: %w", err)
			}
			for i := range each {
				if err := d.Commit(ctx, put(fmt.Sprint("w", w), fmt.Sprint(i), "v", absent)); err != nil {
					errs <- err
				}
				// Increment the shared counter.
				for {
					items, err := d.Get(ctx, key("counter", "n"))
					if err != nil {
						errs <- err
						return
					}
					var rev int64
					c := absent
					if len(items) == 1 {
						rev, c = items[0].Rev, kv.IfRev(items[0].Rev)
					}
					err = d.Commit(ctx, kv.Put(kv.Item{Key: key("counter", "n"), Rev: rev + 1}, c))
					if errors.As(err, new(*kv.ConditionError)) {
						continue
					}
					if err != nil {
						errs <- err
					}
					break
				}
			}
		})
	}
	close(startLine)
	wg.Wait()
	close(errs)
	close(winners)
	for err := range errs {
		t.Error(err)
	}
	var won []int
	for w := range winners {
		won = append(won, w)
	}
	if len(won) != 1 {
		t.Fatalf("racing IfAbsent: %d winners, want 1", len(won))
	}
	t.Logf("%d transactions for at least %d commits", bolt.Transactions(d), writers*(1+2*each))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = mustOpenAt(t, path)
	if got := all(t, d, "race"); len(got) != 1 || string(got[0].Value) != fmt.Sprint(won[0]) {
		t.Errorf("the raced key holds %v, want the winner %d's value", got, won[0])
	}
	if got := all(t, d, "counter"); len(got) != 1 || got[0].Rev != writers*each {
		t.Errorf("the counter is %v, want rev %d", got, writers*each)
	}
	for w := range writers {
		if got := all(t, d, fmt.Sprint("w", w)); len(got) != each {
			t.Errorf("writer %d: %d items after reopening, want %d", w, len(got), each)
		}
	}
}

// A commit that finds nobody writing is written by its caller's goroutine,
// with no hand-off to another goroutine and back; concurrent commits still
// share transactions (TestQueuedCommitsShareATransaction).
func TestALoneCommitIsWrittenByItsCaller(t *testing.T) {
	d := MustOpen(t)
	var stacks []string
	bolt.SetTxHook(d, func(int) error {
		buf := make([]byte, 64<<10)
		stacks = append(stacks, string(buf[:runtime.Stack(buf, false)]))
		return nil
	})
	for i := range 3 {
		mustCommit(t, d, put("p", fmt.Sprint(i), "v", absent))
	}
	if len(stacks) != 3 {
		t.Fatalf("%d transactions for 3 lone commits, want 3", len(stacks))
	}
	for i, s := range stacks {
		if !strings.Contains(s, "TestALoneCommitIsWrittenByItsCaller") {
			t.Errorf("lone commit %d was written by another goroutine:\n%s", i, s)
		}
	}
}

// When a transaction is answered, the first commit still queued leads the
// next one, which takes every commit queued meanwhile; commits abandoned
// at the head of the queue are passed over, and once the queue is empty
// the next commit leads again by itself.
func TestLeadershipPassesToTheNextQueuedCommit(t *testing.T) {
	d := MustOpen(t)
	g := newGate(d)
	first := start(d, ctx, put("p", "first", "0", kv.Cond{}))
	<-g.entered
	c, cancel := context.WithCancel(ctx)
	gone := start(d, c, put("p", "gone", "v", kv.Cond{}))
	waitQueued(t, d, 1)
	var results []chan error
	for i := range 3 {
		results = append(results, start(d, ctx, put("p", fmt.Sprint(i), "v", absent)))
		waitQueued(t, d, i+2)
	}
	cancel()
	if err := <-gone; kv.ErrorCode(err) != kv.Unavailable {
		t.Fatalf("the abandoned commit: %v, want Unavailable", err)
	}
	close(g.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, ch := range results {
		if err := <-ch; err != nil {
			t.Errorf("commit %d: %v", i, err)
		}
	}
	if n := <-g.sizes; n != 3 {
		t.Errorf("the second transaction took %d commits, want 3", n)
	}
	mustCommit(t, d, put("p", "last", "v", absent))
	if n := <-g.sizes; n != 1 {
		t.Errorf("the last transaction took %d commits, want 1", n)
	}
	if n := bolt.Transactions(d); n != 3 {
		t.Errorf("%d transactions, want 3", n)
	}
	if items, _ := d.Get(ctx, key("p", "gone")); len(items) != 0 {
		t.Errorf("the abandoned commit was written: %v", items)
	}
}

// heldContext ends when end is called; its Done blocks until then, and
// entered is closed when Done is first called.
type heldContext struct {
	context.Context
	entered, ended chan struct{}
	once           sync.Once
	err            atomic.Bool
}

func newHeldContext() *heldContext {
	return &heldContext{Context: ctx, entered: make(chan struct{}), ended: make(chan struct{})}
}

func (c *heldContext) Done() <-chan struct{} {
	c.once.Do(func() { close(c.entered) })
	<-c.ended
	return c.ended
}

func (c *heldContext) Err() error {
	if c.err.Load() {
		return context.Canceled
	}
	return nil
}

func (c *heldContext) end() { c.err.Store(true); close(c.ended) }

// A commit whose context ends when it is told to lead either leads (and
// is written) or withdraws and passes the lead on: either way the commit
// queued behind it is written and the store takes commits after. (Its
// Commit waits for the select over its result, the lead and its context
// until both the lead and the end are there; the select picks one at
// random, so the rounds take both ways.)
func TestAnHeirThatEndsPassesTheLeadOn(t *testing.T) {
	written, withdrawn := 0, 0
	for i := range 40 {
		d := MustOpen(t)
		g := newGate(d)
		first := start(d, ctx, put("p", "first", "0", kv.Cond{}))
		<-g.entered
		hc := newHeldContext()
		heir := start(d, hc, put("p", "heir", "v", kv.Cond{}))
		<-hc.entered
		behind := start(d, ctx, put("p", "behind", "v", kv.Cond{}))
		waitQueued(t, d, 2)
		close(g.release)
		if err := <-first; err != nil { // the lead is handed to heir
			t.Fatal(err)
		}
		hc.end()
		herr := <-heir
		if err := <-behind; err != nil {
			t.Fatalf("round %d: the commit behind the heir: %v", i, err)
		}
		mustCommit(t, d, put("p", "after", "v", absent))
		items, err := d.Get(ctx, key("p", "heir"))
		switch {
		case err != nil:
			t.Fatal(err)
		case herr == nil && len(items) == 1:
			written++
		case kv.ErrorCode(herr) == kv.Unavailable && len(items) == 0 && strings.Contains(herr.Error(), "nothing was written"):
			withdrawn++
		default:
			t.Fatalf("round %d: the heir returned %v and left %d items", i, herr, len(items))
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("the heir was written %d times, withdrawn %d", written, withdrawn)
	if written == 0 || withdrawn == 0 {
		t.Errorf("the heir was written %d times and withdrawn %d: want both ways taken", written, withdrawn)
	}
}

// Close waits for the commits queued behind a transaction being written:
// they are written, and commits after Close fail.
func TestCloseWaitsForQueuedCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mobius.db")
	d := mustOpenAt(t, path)
	g := newGate(d)
	first := start(d, ctx, put("p", "first", "0", kv.Cond{}))
	<-g.entered
	var results []chan error
	for i := range 3 {
		results = append(results, start(d, ctx, put("p", fmt.Sprint(i), "v", absent)))
		waitQueued(t, d, i+1)
	}
	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	close(g.release)
	for i, ch := range append(results, first) {
		if err := <-ch; err != nil {
			t.Errorf("commit %d: %v", i, err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx, put("p", "late", "v", kv.Cond{})); kv.ErrorCode(err) != kv.Unavailable {
		t.Fatalf("a commit after Close: %v, want Unavailable", err)
	}
	d = mustOpenAt(t, path)
	if got := all(t, d, "p"); len(got) != 4 {
		t.Fatalf("after reopening: %d items, want 4", len(got))
	}
}
