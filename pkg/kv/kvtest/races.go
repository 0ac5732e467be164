package kvtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

var raceCases = []testCase{
	// A driver that checks a condition and writes in two steps (a read, then a put) lets two creators win.
	{"IfAbsentOneWinner", testRaceIfAbsent},
	// Read-modify-write under IfRev loses no update: conditions are evaluated atomically with the write.
	{"Counter", testRaceCounter},
	// A two-item transaction keeps the sum, and a commit of checks validates a read of both items.
	{"Transfer", testRaceTransfer},
}

// maxAttempts bounds the retries of one racing update.
const maxAttempts = 1000

// race runs f(i) for i in [0, n) on n goroutines released together.
func race(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

func testRaceIfAbsent(t *testing.T, d kv.Driver) {
	const racers, rounds = 8, 4
	for round := range rounds {
		k := key("race", fmt.Sprintf("once-%d", round))
		errs := make([]error, racers)
		race(racers, func(i int) {
			it := kv.Item{Key: k, Value: []byte{byte(i)}, Rev: int64(i)}
			errs[i] = d.Commit(t.Context(), kv.Put(it, kv.IfAbsent(time.Time{})))
		})
		winner := -1
		for i, err := range errs {
			if err == nil {
				if winner >= 0 {
					t.Fatalf("round %d: racers %d and %d both created %s", round, winner, i, k)
				}
				winner = i
				continue
			}
			var ce *kv.ConditionError
			if !errors.As(err, &ce) || ce.Index != 0 || ce.Key != k {
				t.Fatalf("round %d: racer %d: %v, want a *kv.ConditionError on operation 0", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no racer created %s", round, k)
		}
		wantStored(t, d, fmt.Sprintf("round %d: the winner's item", round), k, &kv.Item{Key: k, Value: []byte{byte(winner)}, Rev: int64(winner)})
	}
}

// increment adds one to the counter at k, whose value is its rev in
// decimal, under IfRev.
func increment(ctx context.Context, d kv.Driver, k kv.Key) error {
	for range maxAttempts {
		got, err := d.Get(ctx, k)
		if err != nil {
			return err
		}
		if len(got) != 1 {
			return fmt.Errorf("the counter is gone")
		}
		cur := got[0]
		if n, err := strconv.ParseInt(string(cur.Value), 10, 64); err != nil || n != cur.Rev {
			return fmt.Errorf("the counter reads value %q at rev %d: a torn write", cur.Value, cur.Rev)
		}
		next := kv.Item{Key: k, Value: []byte(strconv.FormatInt(cur.Rev+1, 10)), Rev: cur.Rev + 1}
		err = d.Commit(ctx, kv.Put(next, kv.IfRev(cur.Rev)))
		if err == nil {
			return nil
		}
		if !retryable(err) {
			return err
		}
	}
	return fmt.Errorf("no increment in %d attempts", maxAttempts)
}

func testRaceCounter(t *testing.T, d kv.Driver) {
	const workers, increments = 4, 10
	k := key("race", "counter")
	store(t, d, kv.Item{Key: k, Value: []byte("0")})
	race(workers, func(w int) {
		for i := range increments {
			if err := increment(t.Context(), d, k); err != nil {
				t.Errorf("worker %d, increment %d: %v", w, i, err)
				return
			}
		}
	})
	const n = workers * increments
	wantStored(t, d, fmt.Sprintf("the counter after %d increments", n), k, &kv.Item{Key: k, Value: []byte(strconv.Itoa(n)), Rev: n})
}

// balances reads the balances and revs of accounts a and b.
func balances(ctx context.Context, d kv.Driver, a, b kv.Key) (ba, bb int64, items []kv.Item, err error) {
	items, err = d.Get(ctx, a, b)
	if err != nil {
		return 0, 0, nil, err
	}
	if len(items) != 2 || items[0].Key != a || items[1].Key != b {
		return 0, 0, nil, fmt.Errorf("Get of both accounts returned %d items", len(items))
	}
	ba, err1 := strconv.ParseInt(string(items[0].Value), 10, 64)
	bb, err2 := strconv.ParseInt(string(items[1].Value), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, nil, err
	}
	return ba, bb, items, nil
}

// transfer moves amount from a to b in one commit conditioned on both revs.
func transfer(ctx context.Context, d kv.Driver, a, b kv.Key, amount int64) error {
	for range maxAttempts {
		ba, bb, items, err := balances(ctx, d, a, b)
		if err != nil {
			return err
		}
		err = d.Commit(ctx,
			kv.Put(kv.Item{Key: a, Value: []byte(strconv.FormatInt(ba-amount, 10)), Rev: items[0].Rev + 1}, kv.IfRev(items[0].Rev)),
			kv.Put(kv.Item{Key: b, Value: []byte(strconv.FormatInt(bb+amount, 10)), Rev: items[1].Rev + 1}, kv.IfRev(items[1].Rev)))
		if err == nil {
			return nil
		}
		if !retryable(err) {
			return err
		}
	}
	return fmt.Errorf("no transfer in %d attempts", maxAttempts)
}

// audit reads both balances and validates the read with a commit of two
// checks; it reports the sum of a read that validated.
func audit(ctx context.Context, d kv.Driver, a, b kv.Key) (sum int64, ok bool, err error) {
	ba, bb, items, err := balances(ctx, d, a, b)
	if err != nil {
		return 0, false, err
	}
	err = d.Commit(ctx, kv.Check(a, kv.IfRev(items[0].Rev)), kv.Check(b, kv.IfRev(items[1].Rev)))
	if err == nil {
		return ba + bb, true, nil
	}
	if retryable(err) {
		return 0, false, nil
	}
	return 0, false, err
}

func testRaceTransfer(t *testing.T, d kv.Driver) {
	const workers, transfers, total = 4, 8, 200
	a, b := key("race", "balance-a"), key("race", "balance-b")
	store(t, d, kv.Item{Key: a, Value: []byte("100")}, kv.Item{Key: b, Value: []byte("100")})
	var mu sync.Mutex
	audited := 0
	race(workers, func(w int) {
		for i := range transfers {
			from, to := a, b
			if (w+i)%2 == 1 {
				from, to = b, a
			}
			if err := transfer(t.Context(), d, from, to, int64(1+(w+i)%5)); err != nil {
				t.Errorf("worker %d, transfer %d: %v", w, i, err)
				return
			}
			sum, ok, err := audit(t.Context(), d, a, b)
			if err != nil {
				t.Errorf("worker %d, audit %d: %v", w, i, err)
				return
			}
			if ok {
				mu.Lock()
				audited++
				mu.Unlock()
				if sum != total {
					t.Errorf("worker %d: a validated read of both balances sums to %d, want %d", w, sum, total)
				}
			}
		}
	})
	ba, bb, items, err := balances(t.Context(), d, a, b)
	if err != nil {
		t.Fatal(err)
	}
	const n = workers * transfers
	if ba+bb != total || items[0].Rev != n || items[1].Rev != n {
		t.Fatalf("after %d transfers: balances %d + %d = %d at revs %d and %d, want a sum of %d at revs %d",
			n, ba, bb, ba+bb, items[0].Rev, items[1].Rev, total, n)
	}
	t.Logf("%d transfers, %d of %d audits validated", n, audited, n)
}
