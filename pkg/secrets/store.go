package secrets

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// The Service reaches storage only through a kv.Driver (pkg/kv): every key,
// record and rule is the domain's (layout.go, records.go), and every driver
// error is translated here, once, so every backend fails alike.

// storeError translates a driver error into a domain error. A failed
// condition is not an error of the store: callers classify it first (see
// conditionFailed); one that reaches here means a write lost a race.
func storeError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var ce *kv.ConditionError
	if errors.As(err, &ce) {
		return WrapError(Aborted, err, "a concurrent write won")
	}
	switch kv.ErrorCode(err) {
	case kv.Contention:
		return WrapError(Aborted, err, "a concurrent write won")
	case kv.Misconfigured:
		var ke *kv.Error
		errors.As(err, &ke)
		return WrapError(Misconfigured, err, "the store refuses the service: %s", ke.Msg)
	case kv.Corrupt:
		return WrapError(Internal, err, "the store's data is damaged; run `mobius admin check`")
	case kv.Invalid:
		return WrapError(Internal, err, "the store refused a request")
	}
	if ctx.Err() != nil {
		return WrapError(Unavailable, err, "the request was cancelled or ran out of time before the store answered")
	}
	return WrapError(Unavailable, err, "the store is unavailable")
}

// conditionFailed returns the index of the op whose condition failed, or
// -1 if err is not a failed condition.
func conditionFailed(err error) int {
	var ce *kv.ConditionError
	if errors.As(err, &ce) {
		return ce.Index
	}
	return -1
}

// get reads one item; (nil, nil) only inside the domain, never returned
// from a Service method: callers turn it into NotFound.
func (s *Service) get(ctx context.Context, k kv.Key) (*kv.Item, error) {
	items, err := s.kv.Get(ctx, k)
	if err != nil {
		return nil, storeError(ctx, err)
	}
	if len(items) == 0 {
		return nil, nil
	}
	return &items[0], nil
}

func (s *Service) getMany(ctx context.Context, keys []kv.Key) (map[kv.Key]*kv.Item, error) {
	out := make(map[kv.Key]*kv.Item, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	items, err := s.kv.Get(ctx, keys...)
	if err != nil {
		return nil, storeError(ctx, err)
	}
	for i := range items {
		out[items[i].Key] = &items[i]
	}
	return out, nil
}

func (s *Service) query(ctx context.Context, q kv.Query) ([]kv.Item, error) {
	items, err := s.kv.Query(ctx, q)
	return items, storeError(ctx, err)
}

// Guard is committed together with a write it guards: its operations are
// added to the write's Commit, so they are stored all or nothing with it.
// The HTTP layer's Idempotency-Key records are guards, so a write and the
// record of its response can never be apart.
type Guard interface {
	// Ops returns the operations to add to the commit of a write whose
	// outcome is out. It may be called once per attempt.
	Ops(out *Outcome) ([]kv.Op, error)
	// Committed is called once the commit that held Ops succeeded.
	Committed()
}

// Outcome is what a guarded write did, as its caller will see it.
type Outcome struct {
	Secret  *Secret
	Version *Version
	APIKey  *APIKey
	Grant   *Grant
}

type guardKey struct{}

// WithGuard returns a context whose next write through the Service commits
// g's operations with it.
func WithGuard(ctx context.Context, g Guard) context.Context {
	return context.WithValue(ctx, guardKey{}, g)
}

// ErrGuardLost reports that a guard's condition failed: whatever it guards
// (an Idempotency-Key claim) was taken over before the write committed, and
// nothing was written.
var ErrGuardLost = errors.New("the guard of this write was lost")

// commit applies ops and the events of the change they make, with the
// context's guard (if any) for outcome out. Every write that changes a
// secret or an API key passes its events (events.go): they are stored in
// the same kv.Commit, so neither lands without the other. Their IDs are
// taken here, right before the commit, which then runs with a deadline of
// EventSettle/2 (see the feed's ordering rule).
//
// A failed condition of one of ops is returned as a *kv.ConditionError for
// the caller to classify (conditionFailed); one of the guard's is
// ErrGuardLost, wrapped in Conflict.
func (s *Service) commit(ctx context.Context, out *Outcome, evs []*Event, ops ...kv.Op) error {
	// Nothing is written before the store's key is checked: only an empty
	// store may get the key check of a new key.
	if err := s.ensureKey(ctx); err != nil {
		return err
	}
	g, _ := ctx.Value(guardKey{}).(Guard)
	n := len(ops)
	if len(evs) > 0 {
		ops = slices.Grow(ops, len(evs))
		ops = append(ops, make([]kv.Op, len(evs))...) // filled in once the IDs are taken
	}
	if g != nil && out != nil {
		extra, err := g.Ops(out)
		if err != nil {
			return err
		}
		ops = append(ops, extra...)
	}
	if len(evs) > 0 {
		s.stampEvents(ctx, evs)
		for i, ev := range evs {
			ops[n+i] = kv.Put(eventItem(ev), kv.IfAbsent(time.Time{}))
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, EventSettle/2)
		defer cancel()
	}
	err := s.kv.Commit(ctx, ops...)
	if err == nil {
		if g != nil && out != nil {
			g.Committed()
		}
		if len(evs) > 0 {
			s.feed.notify(evs[0].Project)
		}
		return nil
	}
	switch i := conditionFailed(err); {
	case i >= n+len(evs):
		return WrapError(Conflict, ErrGuardLost, "the claim on this request's Idempotency-Key expired before it finished; nothing was written: retry it")
	case i >= n:
		return WrapError(Internal, err, "a new event's ID is taken")
	case i >= 0:
		return err
	}
	return storeError(ctx, err)
}

// KeyWrapper protects data keys: a local key file or a KMS key.
type KeyWrapper interface {
	// GenerateDataKey returns a fresh 256-bit data key and that key wrapped
	// under the wrapper's key, bound to context. The caller zeroes plaintext.
	// Unavailable when the key service cannot be reached; Misconfigured
	// when it refuses for a reason an operator must fix.
	GenerateDataKey(ctx context.Context, context map[string]string) (plaintext, wrapped []byte, err error)
	// UnwrapDataKey returns the data key inside wrapped. Integrity if wrapped
	// was altered, or was made under another key or another context;
	// Unavailable when the key service cannot be reached; Misconfigured
	// when it refuses for a reason an operator must fix.
	UnwrapDataKey(ctx context.Context, wrapped []byte, context map[string]string) ([]byte, error)
}
