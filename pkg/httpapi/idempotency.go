package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// Idempotency-Key records belong to the HTTP layer: they hold statuses,
// headers and bodies, which the domain knows nothing of. They live in the
// same store as the domain's records, beside them:
//
//	partition I#<project>   sort key: hex SHA-256 of the Idempotency-Key
//
// A request claims its key with a short lease (a pending record whose Rev
// is a random claim token); its write then commits the completed record in
// the same transaction as the write itself (a secrets.Guard, conditional
// on the claim token), so "written but not recorded" cannot happen. A
// request that fails releases its claim; one that dies (a crash, a killed
// Lambda) leaves a pending record that expires with its lease, after which
// a retry claims the key afresh and, since nothing was written, writes once.
// A write that outlives its lease still commits, unless a retry took the
// key over meanwhile: then its commit fails on the claim token and nothing
// is written twice.

// IdempotencyTTL is how long a completed request's answer is replayed.
const IdempotencyTTL = 24 * time.Hour

// DefaultIdempotencyLease is how long a claim holds a key while its
// request runs, when the request has no deadline of its own.
const DefaultIdempotencyLease = 15 * time.Second

// idempotencyStore is what the HTTP layer needs of the store for its
// records: the store driver's own three calls.
type idempotencyStore interface {
	Get(ctx context.Context, keys ...kv.Key) ([]kv.Item, error)
	Commit(ctx context.Context, ops ...kv.Op) error
}

// idemRec is an Idempotency-Key record.
type idemRec struct {
	Project     string            `json:"p"`
	RequestHash string            `json:"rh"`
	Done        bool              `json:"done,omitempty"`
	Status      int               `json:"st,omitempty"`
	Header      map[string]string `json:"hd,omitempty"`
	Body        []byte            `json:"b,omitempty"`
	Created     time.Time         `json:"ca"`
}

// idemPrefix starts the partitions of Idempotency-Key records.
const idemPrefix = "I#"

func idemKey(project, key string) kv.Key {
	sum := sha256.Sum256([]byte(key))
	return kv.Key{Partition: idemPrefix + project, Sort: hex.EncodeToString(sum[:])}
}

func newClaimToken() int64 {
	var b [8]byte
	rand.Read(b[:])
	return int64(binary.BigEndian.Uint64(b[:]) >> 1)
}

// claim is a held Idempotency-Key: a secrets.Guard that completes the
// record in the commit of the write it guards.
type claim struct {
	s       *server
	key     kv.Key
	token   int64
	project string
	hash    string
	render  func(*secrets.Outcome) reply
	// redact: the answer holds a credential, which the record must not.
	redact bool
	// stored is set once the completed record has been committed, by the
	// guarded write or by complete.
	stored bool
}

func (c *claim) record(a answer) (kv.Item, error) {
	if c.redact {
		a.body = redactKey(a.body)
	}
	now := c.s.svc.Now()
	rec := idemRec{Project: c.project, RequestHash: c.hash, Done: true, Status: a.status, Header: a.header(), Body: a.body, Created: now}
	v, err := json.Marshal(rec)
	if err != nil {
		return kv.Item{}, err
	}
	return kv.Item{Key: c.key, Value: v, Rev: c.token, Expires: now.Add(IdempotencyTTL)}, nil
}

// Ops implements secrets.Guard: the completed record, on the condition that
// the claim is still this request's.
func (c *claim) Ops(out *secrets.Outcome) ([]kv.Op, error) {
	if c.render == nil {
		return nil, errors.New("httpapi: an idempotent route without a renderer")
	}
	it, err := c.record(encodeReply(c.render(out)))
	if err != nil {
		return nil, err
	}
	return []kv.Op{kv.Put(it, kv.IfRev(c.token))}, nil
}

// Committed implements secrets.Guard.
func (c *claim) Committed() { c.stored = true }

// begin claims key for a request hashing to hash, or returns the record to
// replay. Conflict when the key was used with another request, or its
// first request is still in flight.
func (s *server) begin(ctx context.Context, project, key, hash string) (*claim, *idemRec, error) {
	if key == "" || len(key) > 255 {
		return nil, nil, secrets.FieldErrorf(secrets.Invalid, "Idempotency-Key", "Idempotency-Key must be 1-255 characters")
	}
	k := idemKey(project, key)
	for range 3 {
		now := s.svc.Now()
		items, err := s.idem.Get(ctx, k)
		if err != nil {
			return nil, nil, storeFailure(ctx, err)
		}
		if len(items) > 0 && !items[0].ExpiredAt(now) {
			var rec idemRec
			if err := json.Unmarshal(items[0].Value, &rec); err != nil || rec.Project != project {
				return nil, nil, secrets.Errorf(secrets.Internal, "a damaged Idempotency-Key record")
			}
			if rec.RequestHash != hash {
				return nil, nil, secrets.FieldErrorf(secrets.Conflict, "Idempotency-Key", "Idempotency-Key was already used with a different request")
			}
			if !rec.Done {
				left := max(items[0].Expires.Sub(now), 0)
				secs := int64((left + time.Second - 1) / time.Second) // rounded up
				return nil, nil, &leaseHeldError{
					err: secrets.FieldErrorf(secrets.Conflict, "Idempotency-Key",
						"a request with this Idempotency-Key is still in progress; if it was interrupted, retry after %ds", max(secs, 1)),
					retryAfter: max(secs, 1),
				}
			}
			return nil, &rec, nil
		}
		c := &claim{s: s, key: k, token: newClaimToken(), project: project, hash: hash}
		pending, _ := json.Marshal(idemRec{Project: project, RequestHash: hash, Created: now})
		err = s.idem.Commit(ctx, kv.Put(kv.Item{Key: k, Value: pending, Rev: c.token, Expires: now.Add(s.lease(ctx))}, kv.IfAbsent(now)))
		var ce *kv.ConditionError
		if errors.As(err, &ce) {
			continue // another request claimed it meanwhile: read it
		}
		if err != nil {
			return nil, nil, storeFailure(ctx, err)
		}
		return c, nil, nil
	}
	return nil, nil, secrets.Errorf(secrets.Unavailable, "could not claim the Idempotency-Key; try again")
}

// leaseHeldError is the Conflict of a key whose first request still holds
// its lease; the answer carries Retry-After with the seconds left.
type leaseHeldError struct {
	err        *secrets.Error
	retryAfter int64
}

func (e *leaseHeldError) Error() string { return e.err.Error() }
func (e *leaseHeldError) Unwrap() error { return e.err }

// lease is how long a claim holds its key: to the request's own deadline
// (a Lambda invocation's) when it has one, else DefaultIdempotencyLease.
func (s *server) lease(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d)+time.Second, time.Second)
	}
	return s.leaseFor
}

// complete stores a for a claim whose request wrote nothing (a no-op
// answer), so that a retry replays it.
func (c *claim) complete(ctx context.Context, a answer) error {
	it, err := c.record(a)
	if err != nil {
		return err
	}
	if err := c.s.idem.Commit(ctx, kv.Put(it, kv.IfRev(c.token))); err != nil {
		return err
	}
	c.stored = true
	return nil
}

// release gives the key up after a failed request, so that a retry runs it
// afresh.
func (c *claim) release(ctx context.Context) error {
	err := c.s.idem.Commit(ctx, kv.Delete(c.key, kv.IfRev(c.token)))
	var ce *kv.ConditionError
	if errors.As(err, &ce) {
		return nil // taken over after our lease ended: not ours to release
	}
	return err
}

// storeFailure is the domain's reading of a store error met by the HTTP
// layer's own records.
func storeFailure(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return secrets.WrapError(secrets.Unavailable, err, "the request was cancelled or ran out of time before the store answered")
	}
	if kv.ErrorCode(err) == kv.Misconfigured {
		return secrets.WrapError(secrets.Misconfigured, err, "the store refuses the service")
	}
	return secrets.WrapError(secrets.Unavailable, err, "the store is unavailable")
}

// serveIdempotent runs a request that carries an Idempotency-Key: the first
// time, it runs it and records a successful answer in the same commit as
// its write; a retry with the same method, path and body gets that answer
// again, marked Idempotent-Replayed, and writes nothing. A failed request
// releases the key. Keys are scoped to the caller's project.
func (s *server) serveIdempotent(w http.ResponseWriter, r *http.Request, c *call, rt route) {
	ctx := r.Context()
	key := r.Header.Get("Idempotency-Key")
	hash := requestHash(r.Method, r.URL.EscapedPath(), c.body)
	cl, rec, err := s.begin(ctx, c.project, key, hash)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if rec != nil {
		if rt.flags&shownOnce != 0 {
			var first struct {
				ID string `json:"id"`
			}
			json.Unmarshal(rec.Body, &first)
			what := "API key"
			if secrets.IsGrantID(first.ID) {
				what = "resolve grant"
			}
			s.writeError(w, r, secrets.FieldErrorf(secrets.Conflict, "Idempotency-Key",
				"the first request with this Idempotency-Key created %s %q, which is shown only once; revoke it if it was lost, and create another", what, first.ID))
			return
		}
		for k, v := range rec.Header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Idempotent-Replayed", "true")
		writeReply(w, rec.Status, rec.Body)
		return
	}
	cl.render, cl.redact = rt.render, rt.flags&shownOnce != 0
	// The claim is settled even if the client goes away, and released if
	// the handler panics.
	bg := context.WithoutCancel(ctx)
	settled := false
	defer func() {
		if !settled {
			s.releaseClaim(bg, w, cl)
		}
	}()
	rep, err := rt.h(r.WithContext(secrets.WithGuard(ctx, cl)), c)
	settled = true
	if err != nil {
		if !cl.stored {
			s.releaseClaim(bg, w, cl)
		}
		s.writeError(w, r, err)
		return
	}
	a := encodeReply(rep)
	if !cl.stored {
		if a.status >= 200 && a.status < 300 {
			if err := cl.complete(bg, a); err != nil {
				s.log.ErrorContext(ctx, "recording an idempotent response failed",
					"request_id", infoOf(w).id, "err", err.Error())
				s.releaseClaim(bg, w, cl)
			}
		} else {
			s.releaseClaim(bg, w, cl)
		}
	}
	a.write(w)
}

func (s *server) releaseClaim(ctx context.Context, w http.ResponseWriter, cl *claim) {
	if err := cl.release(ctx); err != nil {
		s.log.ErrorContext(ctx, "releasing an Idempotency-Key failed",
			"request_id", infoOf(w).id, "err", err.Error())
	}
}

// redactKey drops the key from a created API key's JSON, so that the
// idempotency record never stores a credential.
func redactKey(body []byte) []byte {
	var k api.APIKeyCreated
	if err := json.Unmarshal(body, &k); err != nil {
		return nil
	}
	k.Key = ""
	b, _ := json.Marshal(k)
	return b
}

// requestHash is the hex SHA-256 of method, path and body, each
// length-prefixed.
func requestHash(method, path string, body []byte) string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(method), []byte(path), body} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}
