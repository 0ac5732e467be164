package secrets

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"math/big"
	"strconv"
	"sync/atomic"
	"time"
)

// Options tune a Service. The zero value is usable.
type Options struct {
	Now    func() time.Time // clock; time.Now if nil
	Rand   io.Reader        // randomness for IDs, keys and nonces; crypto/rand if nil
	Logger *slog.Logger     // slog.Default() if nil
	// MaxAttempts bounds how often a write that lost a race is retried.
	MaxAttempts int // 200 if zero
	// AuthCacheTTL is how long a verified API key is trusted without reading
	// the store again: a key revoked on another server stops working within
	// this time. 30s if zero; negative disables the cache.
	AuthCacheTTL time.Duration
	// DataKeyCacheTTL and DataKeyCacheSize bound the cache of unwrapped data
	// keys used by Reveal (keys are zeroed on eviction). 5 minutes and 1024
	// if zero; a negative size disables the cache.
	DataKeyCacheTTL  time.Duration
	DataKeyCacheSize int
}

// Service enforces the rules of the domain over a Store and a KeyWrapper. It
// is safe for concurrent use.
type Service struct {
	store Store
	keys  KeyWrapper
	now   func() time.Time
	rand  io.Reader
	log   *slog.Logger
	tries int
	auth  *ttlCache[*APIKey]
	dekc  *ttlCache[[]byte]
	// revocations counts the keys revoked through this Service, so that an
	// authentication that read a key before its revocation does not cache it.
	revocations atomic.Uint64
}

// NewService returns a Service over store and keys.
func NewService(store Store, keys KeyWrapper, o Options) *Service {
	s := &Service{store: store, keys: keys, now: o.Now, rand: o.Rand, log: o.Logger, tries: o.MaxAttempts}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.tries <= 0 {
		s.tries = 200
	}
	authTTL := o.AuthCacheTTL
	if authTTL == 0 {
		authTTL = 30 * time.Second
	}
	if authTTL > 0 {
		s.auth = newTTLCache[*APIKey](4096, authTTL, s.now, nil)
	}
	dekTTL, dekSize := o.DataKeyCacheTTL, o.DataKeyCacheSize
	if dekTTL <= 0 || dekTTL > 5*time.Minute {
		dekTTL = 5 * time.Minute
	}
	if dekSize == 0 {
		dekSize = 1024
	}
	if dekSize > 0 {
		s.dekc = newTTLCache[[]byte](dekSize, dekTTL, s.now, func(b []byte) { clear(b) })
	}
	return s
}

// Store returns the service's store.
func (s *Service) Store() Store { return s.store }

// Now returns the service clock's time, in UTC, truncated to milliseconds.
func (s *Service) Now() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// CreateSecretInput is the body of a create.
type CreateSecretInput struct {
	Name        string
	Description string
	Values      map[string]string
}

// CreateSecret creates a secret whose version 1 holds in.Values, ENABLED.
// Invalid or TooLarge for bad input; Conflict if the name is taken.
func (s *Service) CreateSecret(ctx context.Context, project string, in CreateSecretInput) (*Secret, error) {
	if err := validateName("name", in.Name); err != nil {
		return nil, err
	}
	if err := validateDescription(in.Description); err != nil {
		return nil, err
	}
	plain, err := ValidateValues(in.Values)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	now := s.Now()
	sec := &Secret{
		ID: "sec_" + NewULID(now, s.rand), Project: project, Name: in.Name, Description: in.Description,
		CurrentVersion: 1, LatestVersion: 1, CreatedAt: now, UpdatedAt: now, Revision: 1,
	}
	v, err := s.newVersion(ctx, sec, 1, plain, in.Values, now)
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateSecret(ctx, sec, v); err != nil {
		if ErrorCode(err) == Conflict {
			return nil, FieldErrorf(Conflict, "name", "secret %q already exists in project %q", in.Name, project)
		}
		return nil, err
	}
	return sec, nil
}

func (s *Service) newVersion(ctx context.Context, sec *Secret, n int, plain []byte, values map[string]string, now time.Time) (*Version, error) {
	ct, err := s.seal(ctx, sec.Project, sec.ID, n, plain)
	if err != nil {
		return nil, err
	}
	return &Version{
		Project: sec.Project, SecretID: sec.ID, Number: n, State: Enabled,
		SHA256: digestBytes(plain), Keys: sortedKeys(values),
		CreatedAt: now, StateChangedAt: now, Ciphertext: ct,
	}, nil
}

// GetSecret returns a secret by name or ID. NotFound if absent.
func (s *Service) GetSecret(ctx context.Context, project, ref string) (*Secret, error) {
	sec, err := s.lookup(ctx, project, ref)
	return sec, err
}

func (s *Service) lookup(ctx context.Context, project, ref string) (*Secret, error) {
	var sec *Secret
	var err error
	switch {
	case IsSecretID(ref):
		sec, err = s.store.GetSecret(ctx, project, ref)
	case ValidName(ref):
		sec, err = s.store.GetSecretByName(ctx, project, ref)
	default:
		err = Errorf(NotFound, "not found")
	}
	if ErrorCode(err) == NotFound {
		return nil, Errorf(NotFound, "secret %q not found in project %q", truncate(ref, 140), project)
	}
	return sec, err
}

// ListSecrets returns a page of the project's secrets in name order, and
// whether more follow.
func (s *Service) ListSecrets(ctx context.Context, project string, q ListQuery) ([]*Secret, bool, error) {
	if err := checkLimit(q.Limit); err != nil {
		return nil, false, err
	}
	if q.Limit <= 0 {
		q.Limit = DefaultPageSize
	}
	lim := q.Limit
	q.Limit++
	list, err := s.store.ListSecrets(ctx, project, q)
	if err != nil {
		return nil, false, err
	}
	if len(list) > lim {
		return list[:lim], true, nil
	}
	return list, false, nil
}

// UpdateSecretInput is a partial update; nil fields are left as they are.
type UpdateSecretInput struct {
	Name        *string
	Description *string
	Values      map[string]string // non-nil: rotate to a new version
	// IfRevision, if set, makes the update conditional on the secret's
	// revision (If-Match): PreconditionFailed when it has moved on.
	IfRevision *int64
}

// UpdateSecret renames, re-describes and/or rotates a secret. A rotation
// writes version latest+1 ENABLED and moves the previous ENABLED version to
// DISABLED in the same transaction. Concurrent updates each succeed in turn
// unless IfRevision is given.
func (s *Service) UpdateSecret(ctx context.Context, project, ref string, in UpdateSecretInput) (*Secret, error) {
	if in.Name == nil && in.Description == nil && in.Values == nil {
		return nil, Errorf(Invalid, "give at least one of name, description, values")
	}
	if in.Name != nil {
		if err := validateName("name", *in.Name); err != nil {
			return nil, err
		}
	}
	if in.Description != nil {
		if err := validateDescription(*in.Description); err != nil {
			return nil, err
		}
	}
	var plain []byte
	if in.Values != nil {
		var err error
		if plain, err = ValidateValues(in.Values); err != nil {
			return nil, err
		}
		defer clear(plain)
	}
	var out *Secret
	var sealed *Version // reused across retries while the number stays the same
	err := s.retry(ctx, project, ref, in.IfRevision, func(cur *Secret) error {
		next := *cur
		now := s.Now()
		u := &Update{Secret: &next, PrevRevision: cur.Revision}
		if in.Name != nil && *in.Name != cur.Name {
			next.Name = *in.Name
			u.OldName = cur.Name
		}
		if in.Description != nil {
			next.Description = *in.Description
		}
		if in.Values != nil {
			n := cur.LatestVersion + 1
			if sealed == nil || sealed.Number != n {
				v, err := s.newVersion(ctx, cur, n, plain, in.Values, now)
				if err != nil {
					return err
				}
				sealed = v
			}
			v := *sealed
			v.CreatedAt, v.StateChangedAt = now, now
			u.Put = &v
			if cur.CurrentVersion != 0 {
				u.Changes = []StateChange{{Number: cur.CurrentVersion, From: Enabled, To: Disabled, At: now}}
			}
			next.LatestVersion, next.CurrentVersion = n, n
		}
		next.UpdatedAt = now
		next.Revision = cur.Revision + 1
		if err := s.store.UpdateSecret(ctx, u); err != nil {
			if ErrorCode(err) == Conflict {
				return FieldErrorf(Conflict, "name", "secret %q already exists in project %q", next.Name, project)
			}
			return err
		}
		out = &next
		return nil
	})
	return out, err
}

// DeleteSecret destroys every version of the secret and frees its name.
func (s *Service) DeleteSecret(ctx context.Context, project, ref string, ifRevision *int64) error {
	return s.retry(ctx, project, ref, ifRevision, func(cur *Secret) error {
		return s.store.DeleteSecret(ctx, project, cur.ID, cur.Revision)
	})
}

// retry runs attempt on a fresh read of the secret until it does not lose a
// race (Aborted), a bounded number of times, with jittered backoff.
func (s *Service) retry(ctx context.Context, project, ref string, ifRevision *int64, attempt func(*Secret) error) error {
	id := ""
	for i := 0; ; i++ {
		var cur *Secret
		var err error
		if id == "" {
			cur, err = s.lookup(ctx, project, ref)
		} else {
			cur, err = s.store.GetSecret(ctx, project, id)
			if ErrorCode(err) == NotFound {
				err = Errorf(NotFound, "secret %q not found in project %q", truncate(ref, 140), project)
			}
		}
		if err != nil {
			return err
		}
		id = cur.ID
		if ifRevision != nil && cur.Revision != *ifRevision {
			return Errorf(PreconditionFailed, "secret %q has changed since the ETag given in If-Match", cur.Name)
		}
		err = attempt(cur)
		if ErrorCode(err) != Aborted {
			return err
		}
		if i+1 >= s.tries {
			return WrapError(Unavailable, err, "too much contention on secret %q; try again", cur.Name)
		}
		if err := s.backoff(ctx, i); err != nil {
			return err
		}
	}
}

func (s *Service) backoff(ctx context.Context, i int) error {
	ceil := int64(time.Millisecond) << min(i, 5) // 1ms .. 32ms
	n, err := rand.Int(rand.Reader, big.NewInt(ceil))
	if err != nil {
		return err
	}
	t := time.NewTimer(time.Duration(n.Int64()))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ListVersions returns a page of the secret's versions, newest first, below
// version before (all if before <= 0), and whether more follow.
func (s *Service) ListVersions(ctx context.Context, project, ref string, before, limit int) ([]*Version, bool, error) {
	if err := checkLimit(limit); err != nil {
		return nil, false, err
	}
	sec, err := s.lookup(ctx, project, ref)
	if err != nil {
		return nil, false, err
	}
	return s.ListVersionsOf(ctx, sec, before, limit)
}

// ListVersionsOf is ListVersions for a secret the caller has already read,
// so a caller that needs the secret too reads it once.
func (s *Service) ListVersionsOf(ctx context.Context, sec *Secret, before, limit int) ([]*Version, bool, error) {
	if err := checkLimit(limit); err != nil {
		return nil, false, err
	}
	if limit <= 0 {
		limit = DefaultPageSize
	}
	list, err := s.store.ListVersions(ctx, sec.Project, sec.ID, before, limit+1)
	if err != nil {
		return nil, false, err
	}
	for _, v := range list {
		v.Ciphertext = nil
	}
	if len(list) > limit {
		return list[:limit], true, nil
	}
	return list, false, nil
}

// checkLimit refuses a page size over MaxPageSize; zero or less means the
// default.
func checkLimit(limit int) error {
	if limit > MaxPageSize {
		return FieldErrorf(Invalid, "limit", "limit must be between 1 and %d", MaxPageSize)
	}
	return nil
}

// ParseVersionRef parses a version reference: a positive number, or
// "current" (returned as 0).
func ParseVersionRef(vref string) (int, error) {
	if vref == "current" {
		return 0, nil
	}
	n, err := strconv.Atoi(vref)
	if err != nil || n < 1 || len(vref) > 10 || vref[0] == '0' || vref[0] == '+' {
		return 0, FieldErrorf(Invalid, "version", "version must be a positive whole number or \"current\"")
	}
	return n, nil
}

// GetVersion returns one version's metadata; vref is a number or "current".
func (s *Service) GetVersion(ctx context.Context, project, ref, vref string) (*Version, *Secret, error) {
	n, err := ParseVersionRef(vref)
	if err != nil {
		return nil, nil, err
	}
	sec, err := s.lookup(ctx, project, ref)
	if err != nil {
		return nil, nil, err
	}
	v, err := s.version(ctx, sec, n)
	if err != nil {
		return nil, nil, err
	}
	v.Ciphertext = nil
	return v, sec, nil
}

func (s *Service) version(ctx context.Context, sec *Secret, n int) (*Version, error) {
	if n == 0 {
		if sec.CurrentVersion == 0 {
			return nil, Errorf(NotFound, "secret %q has no ENABLED version", sec.Name)
		}
		n = sec.CurrentVersion
	}
	if n > sec.LatestVersion {
		return nil, Errorf(NotFound, "version %d of secret %q not found", n, sec.Name)
	}
	v, err := s.store.GetVersion(ctx, sec.Project, sec.ID, n)
	if ErrorCode(err) == NotFound {
		return nil, Errorf(NotFound, "version %d of secret %q not found", n, sec.Name)
	}
	return v, err
}

// Version actions.
const (
	ActionEnable  = "enable"
	ActionDisable = "disable"
	ActionDestroy = "destroy"
)

// ChangeVersionState applies enable, disable or destroy to one version and
// returns it as it now is, with the secret. Enabling moves the previous
// ENABLED version to DISABLED; destroying purges the ciphertext for good.
// Repeating an action that already holds is a no-op. Conflict for a change
// out of DESTROYED.
func (s *Service) ChangeVersionState(ctx context.Context, project, ref, vref, action string, ifRevision *int64) (*Version, *Secret, error) {
	n, err := ParseVersionRef(vref)
	if err != nil {
		return nil, nil, err
	}
	var target State
	switch action {
	case ActionEnable:
		target = Enabled
	case ActionDisable:
		target = Disabled
	case ActionDestroy:
		target = Destroyed
	default:
		return nil, nil, Errorf(NotFound, "unknown version action %q", truncate(action, 40))
	}
	var outV *Version
	var outS *Secret
	err = s.retry(ctx, project, ref, ifRevision, func(cur *Secret) error {
		v, err := s.version(ctx, cur, n)
		if err != nil {
			return err
		}
		v.Ciphertext = nil
		if v.State == target {
			outV, outS = v, cur
			return nil
		}
		if v.State == Destroyed {
			return Errorf(Conflict, "version %d of secret %q is DESTROYED and cannot be %sd", v.Number, cur.Name, action)
		}
		now := s.Now()
		next := *cur
		next.UpdatedAt = now
		next.Revision = cur.Revision + 1
		u := &Update{Secret: &next, PrevRevision: cur.Revision}
		if target == Enabled && cur.CurrentVersion != 0 && cur.CurrentVersion != v.Number {
			u.Changes = append(u.Changes, StateChange{Number: cur.CurrentVersion, From: Enabled, To: Disabled, At: now})
		}
		u.Changes = append(u.Changes, StateChange{Number: v.Number, From: v.State, To: target, At: now})
		switch {
		case target == Enabled:
			next.CurrentVersion = v.Number
		case v.State == Enabled:
			next.CurrentVersion = 0
		}
		if err := s.store.UpdateSecret(ctx, u); err != nil {
			return err
		}
		v.State, v.StateChangedAt = target, now
		outV, outS = v, &next
		return nil
	})
	return outV, outS, err
}

// ListResolutions returns a page of the secret's resolution audit, newest
// first, with IDs before beforeID, and whether more follow.
func (s *Service) ListResolutions(ctx context.Context, project, ref, beforeID string, limit int) ([]*Resolution, bool, error) {
	if err := checkLimit(limit); err != nil {
		return nil, false, err
	}
	sec, err := s.lookup(ctx, project, ref)
	if err != nil {
		return nil, false, err
	}
	return s.ListResolutionsOf(ctx, sec, beforeID, limit)
}

// ListResolutionsOf is ListResolutions for a secret the caller has already
// read.
func (s *Service) ListResolutionsOf(ctx context.Context, sec *Secret, beforeID string, limit int) ([]*Resolution, bool, error) {
	if err := checkLimit(limit); err != nil {
		return nil, false, err
	}
	if limit <= 0 {
		limit = DefaultPageSize
	}
	list, err := s.store.ListResolutions(ctx, sec.Project, sec.ID, beforeID, limit+1)
	if err != nil {
		return nil, false, err
	}
	if len(list) > limit {
		return list[:limit], true, nil
	}
	return list, false, nil
}
