package secrets

import (
	"context"
	"time"
)

// IdempotencyTTL is how long a request's Idempotency-Key is remembered.
const IdempotencyTTL = 24 * time.Hour

// BeginIdempotent claims an Idempotency-Key for a request whose method, path
// and body hash to requestHash. It returns:
//   - (nil, nil): the key is now claimed; run the request, then call
//     CompleteIdempotent (success) or AbortIdempotent (failure);
//   - (rec, nil) with rec.Done: replay rec's response, write nothing;
//   - Conflict: the key was used with another request, or the first
//     request with it is still in flight.
func (s *Service) BeginIdempotent(ctx context.Context, project, key, requestHash string) (*IdempotencyRecord, error) {
	if key == "" || len(key) > 255 {
		return nil, FieldErrorf(Invalid, "Idempotency-Key", "Idempotency-Key must be 1-255 characters")
	}
	now := s.Now()
	for i := 0; i < 3; i++ {
		rec := &IdempotencyRecord{Project: project, Key: key, RequestHash: requestHash, CreatedAt: now, ExpiresAt: now.Add(IdempotencyTTL)}
		err := s.store.CreateIdempotency(ctx, rec)
		if err == nil {
			return nil, nil
		}
		if ErrorCode(err) != Conflict {
			return nil, err
		}
		old, err := s.store.GetIdempotency(ctx, project, key, now)
		if ErrorCode(err) == NotFound {
			continue // expired or aborted in between: claim again
		}
		if err != nil {
			return nil, err
		}
		if old.RequestHash != requestHash {
			return nil, FieldErrorf(Conflict, "Idempotency-Key", "Idempotency-Key was already used with a different request")
		}
		if !old.Done {
			return nil, FieldErrorf(Conflict, "Idempotency-Key", "a request with this Idempotency-Key is still in progress")
		}
		return old, nil
	}
	return nil, WrapError(Unavailable, nil, "could not claim the Idempotency-Key; try again")
}

// CompleteIdempotent stores the response to replay for the claimed key.
func (s *Service) CompleteIdempotent(ctx context.Context, project, key, requestHash string, status int, header map[string]string, body []byte) error {
	now := s.Now()
	return s.store.CompleteIdempotency(ctx, &IdempotencyRecord{
		Project: project, Key: key, RequestHash: requestHash, Done: true,
		Status: status, Header: header, Body: body, CreatedAt: now, ExpiresAt: now.Add(IdempotencyTTL),
	})
}

// AbortIdempotent releases a claimed key after a failed request, so that a
// retry runs it afresh.
func (s *Service) AbortIdempotent(ctx context.Context, project, key string) error {
	return s.store.DeleteIdempotency(ctx, project, key)
}
