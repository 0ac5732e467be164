// Package kv is the storage port of Mobius Secrets: a transactional,
// conditional, ordered key-value store. The domain (pkg/secrets) decides
// every key, every record's bytes and every rule (ordering by choosing
// keys, limits, expiry, retention, placement and integrity checks); a
// driver only persists items and evaluates the few conditions below,
// atomically. Adding a backend means writing a Driver and passing
// pkg/kv/kvtest and the domain's suites, nothing else.
//
// An item lives under a Key (a partition and a sort key). Items of one
// partition are read in byte order of their sort keys by Query; Get reads
// items by key. Commit applies up to MaxOps operations all or nothing, each
// guarded by an optional condition on the item it touches.
//
// Every driver enforces the same limits (MaxOps, MaxKeyBytes,
// MaxValueBytes, MaxCommitBytes), so code that works on one backend works
// on all: the limits are DynamoDB's, rounded down.
//
// It imports only the standard library.
package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Limits every driver enforces identically. A request over them fails with
// an Invalid *Error before anything is written.
const (
	// MaxOps bounds the operations of one Commit (DynamoDB's
	// TransactWriteItems takes 100).
	MaxOps = 100
	// MaxKeyBytes bounds a partition or a sort key (DynamoDB: 2048 and
	// 1024 bytes).
	MaxKeyBytes = 1024
	// MaxValueBytes bounds an item's value (a DynamoDB item is at most
	// 400 KB, attribute names and keys included).
	MaxValueBytes = 350 << 10
	// MaxCommitBytes bounds the values of one Commit together. DynamoDB
	// takes 4 MB per transaction, keys and attribute names counted with
	// the values (its MB is 2^20 bytes); MaxOps items with keys of
	// MaxKeyBytes take less than the 256 KiB left.
	MaxCommitBytes = 4<<20 - 256<<10
)

// Key names an item: a partition and a sort key within it. Both are
// non-empty valid UTF-8 without 0 bytes, at most MaxKeyBytes each.
type Key struct {
	Partition string
	Sort      string
}

func (k Key) String() string { return k.Partition + " / " + k.Sort }

// Item is a stored value with its key.
type Item struct {
	Key
	// Value is opaque to the driver. It may be empty (nil), never absent.
	Value []byte
	// Rev is the caller's revision of the item, stored as given and compared
	// by IfRev. Drivers never change it.
	Rev int64
	// Expires, if not zero, is when the item stops counting as present to
	// IfAbsent; a driver may delete it any time after (DynamoDB's time to
	// live does, within days). Readers see expired items until they are
	// deleted: whether an expired item counts is the caller's rule. Stored
	// truncated to the millisecond, and read back in UTC.
	Expires time.Time
}

// ExpiredAt reports whether it has an expiry that is not after t.
func (it *Item) ExpiredAt(t time.Time) bool {
	return !it.Expires.IsZero() && !it.Expires.After(t)
}

// Cond is the condition of one operation on the item it names. The zero
// Cond always holds.
type Cond struct {
	kind condKind
	rev  int64
	at   time.Time
}

type condKind uint8

const (
	condNone condKind = iota
	condAbsent
	condExists
	condRev
)

// IfAbsent holds when no item has the key, or the item there has expired
// at t (Item.ExpiredAt(t)). With the zero t, only a missing item counts.
// Like Expires, t counts truncated to the millisecond.
func IfAbsent(t time.Time) Cond { return Cond{kind: condAbsent, at: t.Truncate(time.Millisecond)} }

// IfExists holds when an item has the key, expired or not.
func IfExists() Cond { return Cond{kind: condExists} }

// IfRev holds when an item has the key and its Rev is rev, expired or not.
func IfRev(rev int64) Cond { return Cond{kind: condRev, rev: rev} }

// Holds evaluates c against the stored item (nil: none). Drivers that
// evaluate conditions themselves (not DynamoDB, which evaluates them in the
// service) call it, so every driver agrees.
func (c Cond) Holds(stored *Item) bool {
	switch c.kind {
	case condAbsent:
		return stored == nil || stored.ExpiredAt(c.at)
	case condExists:
		return stored != nil
	case condRev:
		return stored != nil && stored.Rev == c.rev
	}
	return true
}

// IsAbsent, IsExists and IsRev let a driver translate c: which condition it
// is, and its operand.
func (c Cond) IsAbsent() (at time.Time, ok bool) { return c.at, c.kind == condAbsent }
func (c Cond) IsExists() bool                    { return c.kind == condExists }
func (c Cond) IsRev() (rev int64, ok bool)       { return c.rev, c.kind == condRev }
func (c Cond) IsNone() bool                      { return c.kind == condNone }

func (c Cond) String() string {
	switch c.kind {
	case condAbsent:
		return fmt.Sprintf("absent at %s", c.at.Format(time.RFC3339Nano))
	case condExists:
		return "exists"
	case condRev:
		return fmt.Sprintf("rev %d", c.rev)
	}
	return "always"
}

// OpKind is what an Op does.
type OpKind uint8

const (
	OpPut    OpKind = iota + 1 // store Item under its key, replacing any item there
	OpDelete                   // remove the item under Item.Key, if any
	OpCheck                    // write nothing; only the condition counts
)

// Op is one operation of a Commit.
type Op struct {
	Kind OpKind
	// Item is the item to put; for delete and check only its Key counts.
	Item Item
	If   Cond
	// Erase, on a delete, asks that the removed value not linger in the
	// store's free space: the embedded store overwrites the pages that held
	// it before Commit returns. (DynamoDB keeps no free space; its
	// point-in-time recovery keeps its own copies for its window.)
	Erase bool
}

// Put returns the operation that stores it on condition c.
func Put(it Item, c Cond) Op { return Op{Kind: OpPut, Item: it, If: c} }

// Delete returns the operation that removes the item at k on condition c.
func Delete(k Key, c Cond) Op { return Op{Kind: OpDelete, Item: Item{Key: k}, If: c} }

// Erase is Delete with Erase set: for values (ciphertext) that must leave
// no trace in free space.
func Erase(k Key, c Cond) Op { return Op{Kind: OpDelete, Item: Item{Key: k}, If: c, Erase: true} }

// Check returns the operation that writes nothing and holds only if c does.
func Check(k Key, c Cond) Op { return Op{Kind: OpCheck, Item: Item{Key: k}, If: c} }

// Query selects items of one partition by sort key.
type Query struct {
	Partition string
	// Prefix, if set, keeps only sort keys that start with it.
	Prefix string
	// After, if set, keeps only sort keys strictly after it in the order of
	// the query: greater when ascending, smaller when Reverse. It need not
	// start with Prefix, nor name an item.
	After string
	// Reverse reads in descending order of sort key.
	Reverse bool
	// Limit is the most items returned; it must be at least 1.
	Limit int
}

// Driver is a store. Implementations are safe for concurrent use.
//
// Errors: a failed condition is a *ConditionError; anything else is an
// *Error (use ErrorCode); a context that ends makes the call return an
// *Error of code Unavailable wrapping ctx.Err(), and a call on a context
// that had ended before it began does nothing.
type Driver interface {
	// Get returns the items that exist under keys, in the order of keys,
	// missing ones left out (expired ones included). Each item is read
	// strongly consistently, but the set is not a snapshot: another Commit
	// may land between two of them. Repeated keys are read once; no keys,
	// no items.
	Get(ctx context.Context, keys ...Key) ([]Item, error)

	// Query returns at most q.Limit items of q.Partition in byte order of
	// sort key (descending with q.Reverse), strongly consistently. Expired
	// items are included.
	Query(ctx context.Context, q Query) ([]Item, error)

	// Commit applies ops all or nothing. Each op's condition is evaluated
	// against the item as it is before the Commit. If a condition fails,
	// nothing is written and the error is a *ConditionError naming the
	// first such op. Two ops on one key, more than MaxOps ops, or any limit
	// exceeded is Invalid. Contention means a concurrent commit on the same
	// items got in the way (the driver already retried): nothing was
	// written, and the caller may read again and retry.
	Commit(ctx context.Context, ops ...Op) error
}

// ConditionError reports that the condition of Ops[Index] did not hold;
// nothing was written.
type ConditionError struct {
	Index int
	Key   Key
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("kv: the condition of operation %d (%s) does not hold", e.Index, e.Key)
}

// Code classifies an *Error.
type Code string

const (
	// Unavailable: the store could not be reached, timed out, throttled or
	// failed transiently, or the context ended. For a Commit, whether it
	// was applied is unknown.
	Unavailable Code = "Unavailable"
	// Contention: a concurrent commit on the same items won; nothing was
	// written; retrying after a fresh read may succeed.
	Contention Code = "Contention"
	// Misconfigured: the store refuses the caller for a reason only an
	// operator can fix (no such table, access denied).
	Misconfigured Code = "Misconfigured"
	// Corrupt: the store's own data is damaged (an unreadable page).
	Corrupt Code = "Corrupt"
	// Invalid: the request breaks a limit or rule of this package: a bug
	// of the caller.
	Invalid Code = "Invalid"
)

// Error is a driver failure other than a failed condition.
type Error struct {
	Code Code
	Op   string // the call that failed, for logs
	Msg  string // says what failed; never holds a value
	Err  error  // the cause, for logs
}

func (e *Error) Error() string {
	s := "kv: " + e.Op + ": " + string(e.Code) + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error.
func Errorf(code Code, op string, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Op: op, Msg: fmt.Sprintf(format, args...), Err: cause}
}

// ErrorCode returns the Code of the *Error in err's chain, "" for nil or a
// *ConditionError, and Unavailable for any other error: an error a driver
// did not classify is taken as a dependency failure.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var ce *ConditionError
	if errors.As(err, &ce) {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Unavailable
}

// ContextError returns the Unavailable *Error for an ended context, or nil
// if ctx is live: drivers call it before they start work.
func ContextError(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return Errorf(Unavailable, op, err, "the request ended before the store answered")
	}
	return nil
}

// CheckKey validates k against the rules of Key.
func CheckKey(k Key) error {
	for _, part := range [2]string{k.Partition, k.Sort} {
		switch {
		case part == "":
			return Errorf(Invalid, "key", nil, "empty partition or sort key in %q", k.String())
		case len(part) > MaxKeyBytes:
			return Errorf(Invalid, "key", nil, "a key part is %d bytes; the limit is %d", len(part), MaxKeyBytes)
		case !utf8.ValidString(part) || bytes.IndexByte([]byte(part), 0) >= 0:
			return Errorf(Invalid, "key", nil, "a key part is not valid UTF-8 or holds a 0 byte")
		}
	}
	return nil
}

// CheckCommit validates ops against the limits and rules of Commit: at
// least one op and at most MaxOps, valid keys, each key once, known kinds,
// values within MaxValueBytes and MaxCommitBytes together.
func CheckCommit(ops []Op) error {
	if len(ops) == 0 || len(ops) > MaxOps {
		return Errorf(Invalid, "Commit", nil, "a commit takes 1 to %d operations, not %d", MaxOps, len(ops))
	}
	seen := make(map[Key]struct{}, len(ops))
	total := 0
	for i := range ops {
		op := &ops[i]
		if err := CheckKey(op.Item.Key); err != nil {
			return err
		}
		if _, dup := seen[op.Item.Key]; dup {
			return Errorf(Invalid, "Commit", nil, "two operations on %q in one commit", op.Item.Key.String())
		}
		seen[op.Item.Key] = struct{}{}
		switch op.Kind {
		case OpPut:
			if len(op.Item.Value) > MaxValueBytes {
				return Errorf(Invalid, "Commit", nil, "a value is %d bytes; the limit is %d", len(op.Item.Value), MaxValueBytes)
			}
			total += len(op.Item.Value)
		case OpDelete, OpCheck:
		default:
			return Errorf(Invalid, "Commit", nil, "operation %d has no kind", i)
		}
		if op.Erase && op.Kind != OpDelete {
			return Errorf(Invalid, "Commit", nil, "operation %d: only a delete erases", i)
		}
	}
	if total > MaxCommitBytes {
		return Errorf(Invalid, "Commit", nil, "a commit's values are %d bytes; the limit is %d", total, MaxCommitBytes)
	}
	return nil
}

// CheckQuery validates q.
func CheckQuery(q Query) error {
	if q.Limit < 1 {
		return Errorf(Invalid, "Query", nil, "limit must be at least 1, not %d", q.Limit)
	}
	if err := CheckKey(Key{Partition: q.Partition, Sort: "x"}); err != nil {
		return err
	}
	for _, s := range [2]string{q.Prefix, q.After} {
		if len(s) > MaxKeyBytes || !utf8.ValidString(s) || bytes.IndexByte([]byte(s), 0) >= 0 {
			return Errorf(Invalid, "Query", nil, "a prefix or bound is not a valid sort key")
		}
	}
	return nil
}

// InRange reports whether sort key sk is selected by q's Prefix and After:
// drivers that filter themselves use it, so every driver agrees.
func (q Query) InRange(sk string) bool {
	if len(sk) < len(q.Prefix) || sk[:len(q.Prefix)] != q.Prefix {
		return false
	}
	if q.After == "" {
		return true
	}
	if q.Reverse {
		return sk < q.After
	}
	return sk > q.After
}
