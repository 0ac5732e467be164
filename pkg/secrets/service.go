package secrets

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
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
	// CiphertextCacheSize bounds the cache of sealed version ciphertext
	// that Reveal reads (immutable while the version exists, so it needs no
	// expiry for correctness): 256 if zero; negative disables it.
	CiphertextCacheSize int
	// KeyCheck, if not KeyCheckOff, makes the Service run CheckKey in that
	// mode before it first seals or opens a version.
	KeyCheck KeyCheckMode
	// TrashRetention is how long a deleted secret stays in the trash, to
	// be restored, before the Sweep purges it: DefaultTrashRetention if
	// zero or less.
	TrashRetention time.Duration
	// ListScan bounds how many names one filtered list call reads
	// (ListSecretsPage): MaxListScan if zero or less.
	ListScan int
}

// Service enforces the rules of the domain over a kv.Driver and a
// KeyWrapper. It is safe for concurrent use.
type Service struct {
	kv    kv.Driver
	keys  KeyWrapper
	now   func() time.Time
	rand  io.Reader
	log   *slog.Logger
	tries int
	auth  *ttlCache[*APIKey]
	// grants caches whether a grant (and the key that minted it) is live.
	grants *ttlCache[bool]
	// verified holds the grant strings whose MAC this process checked,
	// with what each says; whether it is live and unexpired is checked on
	// every use.
	verified *ttlCache[*Grant]
	dekc     *ttlCache[[]byte]
	// decoded holds secret records as last decoded, by item, with the
	// bytes they were decoded from (secretRecFrom).
	decoded *decodedSecrets
	// ctc caches sealed ciphertext by version: immutable while it exists,
	// so a warm resolve reads only the secret's small record.
	ctc   *ttlCache[[]byte]
	skeys serviceKeys
	// lastUse remembers the versions whose last use this process recorded
	// within LastUsedInterval.
	lastUse *ttlCache[bool]
	// keyCheck is Options.KeyCheck; keyChecked is set once it passed.
	keyCheck   KeyCheckMode
	keyChecked atomic.Bool
	// revocations counts the keys revoked through this Service, so that an
	// authentication that read a key before its revocation does not cache it.
	revocations atomic.Uint64
	// feed wakes long polls of the change feed (events.go).
	feed feed
	// trashFor is Options.TrashRetention; listScan is Options.ListScan.
	trashFor time.Duration
	listScan int
	// sweep is the state of the Sweep on this process (sweep.go).
	sweep sweeper
}

// NewService returns a Service over the store driver d and keys.
func NewService(d kv.Driver, keys KeyWrapper, o Options) *Service {
	s := &Service{kv: d, keys: keys, now: o.Now, rand: o.Rand, log: o.Logger, tries: o.MaxAttempts, keyCheck: o.KeyCheck, trashFor: o.TrashRetention}
	if s.trashFor <= 0 {
		s.trashFor = DefaultTrashRetention
	}
	if s.listScan = o.ListScan; s.listScan <= 0 {
		s.listScan = MaxListScan
	}
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
		s.grants = newTTLCache[bool](4096, authTTL, s.now, nil)
		s.verified = newTTLCache[*Grant](4096, 10*time.Minute, s.now, nil)
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
	s.lastUse = newTTLCache[bool](4096, LastUsedInterval, s.now, nil)
	s.decoded = newDecodedSecrets(4096)
	ctSize := o.CiphertextCacheSize
	if ctSize == 0 {
		ctSize = 256
	}
	if ctSize > 0 {
		s.ctc = newTTLCache[[]byte](ctSize, 10*time.Minute, s.now, nil)
	}
	return s
}

// Driver returns the service's store driver, for adapters that keep
// records of their own beside the domain's (the HTTP layer's idempotency).
func (s *Service) Driver() kv.Driver { return s.kv }

// Now returns the service clock's time, in UTC, truncated to milliseconds.
func (s *Service) Now() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Limits and defaults of rotation settings.
const (
	MaxPreviousGrace = 7 * 24 * time.Hour
	DefaultAliasTTL  = 7 * 24 * time.Hour
	MaxAliasTTL      = 30 * 24 * time.Hour
)

// CreateSecretInput is the body of a create.
type CreateSecretInput struct {
	Name        string
	Description string
	Values      map[string]string
	// PreviousGrace and AliasTTL, if set, are the secret's settings
	// (Secret.PreviousGrace, Secret.AliasTTL); 0 and DefaultAliasTTL if nil.
	PreviousGrace *time.Duration
	AliasTTL      *time.Duration
	// Labels, ExpiresAt and RotateBy are the secret's labels and dates
	// (Secret.Labels, Secret.ExpiresAt, Secret.RotateBy); none if zero.
	Labels    map[string]string
	ExpiresAt time.Time
	RotateBy  time.Time
}

func validateSettings(grace, alias *time.Duration) error {
	if grace != nil && (*grace < 0 || *grace > MaxPreviousGrace || *grace%time.Second != 0) {
		return FieldErrorf(Invalid, "previous_grace_seconds", "previous_grace_seconds must be a whole number from 0 to %d", int(MaxPreviousGrace/time.Second))
	}
	if alias != nil && (*alias < 0 || *alias > MaxAliasTTL || *alias%time.Second != 0) {
		return FieldErrorf(Invalid, "rename_alias_seconds", "rename_alias_seconds must be a whole number from 0 to %d", int(MaxAliasTTL/time.Second))
	}
	return nil
}

// CreateSecret creates a secret whose version 1 holds in.Values, ENABLED.
// Invalid or TooLarge for bad input; Conflict if the name is taken (by a
// secret, or by a live alias of a renamed one).
func (s *Service) CreateSecret(ctx context.Context, project string, in CreateSecretInput) (*Secret, error) {
	if err := validateName("name", in.Name); err != nil {
		return nil, err
	}
	if err := validateDescription(in.Description); err != nil {
		return nil, err
	}
	if err := validateSettings(in.PreviousGrace, in.AliasTTL); err != nil {
		return nil, err
	}
	if err := ValidateLabels(in.Labels); err != nil {
		return nil, err
	}
	expires, err := validateDate("expires_at", &in.ExpiresAt)
	if err != nil {
		return nil, err
	}
	rotateBy, err := validateDate("rotate_by", &in.RotateBy)
	if err != nil {
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
		CurrentVersion: 1, LatestVersion: 1, AliasTTL: DefaultAliasTTL, Labels: cloneLabels(in.Labels),
		ExpiresAt: *expires, RotateBy: *rotateBy, CreatedAt: now, UpdatedAt: now, Revision: 1,
	}
	if in.PreviousGrace != nil {
		sec.PreviousGrace = *in.PreviousGrace
	}
	if in.AliasTTL != nil {
		sec.AliasTTL = *in.AliasTTL
	}
	v, err := s.newVersion(ctx, sec, 1, plain, in.Values, now)
	if err != nil {
		return nil, err
	}
	ops := []kv.Op{
		kv.Put(secretItem(nameKey(project, sec.Name), sec), kv.IfAbsent(now)),
		kv.Put(secretItem(secretKey(project, sec.ID), sec), kv.IfAbsent(time.Time{})),
		kv.Put(versionItem(v), kv.IfAbsent(time.Time{})),
		kv.Put(ciphertextItem(v), kv.IfAbsent(time.Time{})),
	}
	ops = append(ops, reminderOps(nil, sec, now, true)...)
	err = s.commit(ctx, &Outcome{Secret: sec, Version: v}, []*Event{versionEvent(EventSecretCreated, sec, v)}, ops...)
	switch conditionFailed(err) {
	case -1:
		if err != nil {
			return nil, err
		}
	case 0:
		return nil, s.nameTaken(ctx, project, in.Name)
	default:
		return nil, WrapError(Internal, err, "a new secret's ID or version is taken")
	}
	return sec, nil
}

// nameTaken is the Conflict of a name that a secret or a live alias holds.
func (s *Service) nameTaken(ctx context.Context, project, name string) error {
	if it, err := s.get(ctx, nameKey(project, name)); err == nil && it != nil && !it.ExpiredAt(s.Now()) {
		if _, a, err := s.nameFrom(it, project); err == nil && a != nil {
			return FieldErrorf(Conflict, "name", "%q is an alias of secret %s until %s, since it was renamed: references to the old name still resolve; end the alias (DELETE …/secrets/%s/aliases/%s) to reuse the name now",
				name, a.AliasOf, a.Until.Format(time.RFC3339), a.AliasOf, name)
		}
	}
	return FieldErrorf(Conflict, "name", "secret %q already exists in project %q", name, project)
}

func ciphertextItem(v *Version) kv.Item {
	return kv.Item{Key: ciphertextKey(v.Project, v.SecretID, v.Number), Value: v.Ciphertext}
}

func (s *Service) newVersion(ctx context.Context, sec *Secret, n int, plain []byte, values map[string]string, now time.Time) (*Version, error) {
	if n > maxVersion {
		return nil, Errorf(Conflict, "secret %q has used every version number", sec.Name)
	}
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

// GetSecret returns a secret by name or ID. NotFound if absent; an old
// name that is now an alias is NotFound too (aliases serve references
// only), with a message that says so.
func (s *Service) GetSecret(ctx context.Context, project, ref string) (*Secret, error) {
	return s.lookup(ctx, project, ref)
}

func (s *Service) lookup(ctx context.Context, project, ref string) (*Secret, error) {
	var k kv.Key
	switch {
	case !ValidProject(project):
		return nil, notFoundSecret(ref, project)
	case IsSecretID(ref):
		k = secretKey(project, ref)
	case ValidName(ref):
		k = nameKey(project, ref)
	default:
		return nil, notFoundSecret(ref, project)
	}
	it, err := s.get(ctx, k)
	if err != nil {
		return nil, err
	}
	if it == nil {
		if IsSecretID(ref) {
			return nil, s.notFoundByID(ctx, project, ref)
		}
		return nil, notFoundSecret(ref, project)
	}
	sec, a, err := s.nameFrom(it, project)
	if err != nil {
		return nil, err
	}
	if a != nil {
		if !a.Trashed.IsZero() {
			return nil, Errorf(NotFound, "secret %q not found in project %q: it is in the trash (secret %s) since %s; restore it with POST /v1/projects/%s/trash/%s/restore",
				ref, project, a.AliasOf, a.Trashed.Format(time.RFC3339), project, a.AliasOf)
		}
		if it.ExpiredAt(s.Now()) {
			return nil, notFoundSecret(ref, project)
		}
		return nil, Errorf(NotFound, "secret %q not found in project %q: it was renamed (secret %s), and the old name resolves references only, until %s",
			ref, project, a.AliasOf, a.Until.Format(time.RFC3339))
	}
	s.liveAliases(sec)
	return sec, nil
}

// notFoundByID is the NotFound of a secret ID with no record: it says so
// when the secret is in the trash.
func (s *Service) notFoundByID(ctx context.Context, project, id string) error {
	if it, err := s.get(ctx, trashKey(project, id)); err == nil && it != nil {
		if t, err := s.trashFrom(it, project); err == nil && !t.purging {
			return Errorf(NotFound, "secret %s not found in project %q: it is in the trash since %s, until %s; restore it with POST /v1/projects/%s/trash/%s/restore",
				id, project, t.TrashedAt.Format(time.RFC3339), t.PurgeAt.Format(time.RFC3339), project, id)
		}
	}
	return notFoundSecret(id, project)
}

// liveAliases drops the expired aliases from sec's list.
func (s *Service) liveAliases(sec *Secret) {
	now := s.Now()
	sec.Aliases = slices.DeleteFunc(sec.Aliases, func(a Alias) bool { return !a.Until.After(now) })
}

func notFoundSecret(ref, project string) error {
	return Errorf(NotFound, "secret %q not found in project %q", Shorten(ref, 140), Shorten(project, MaxProjectLen))
}

// ListSecrets returns a page of the project's secrets in byte order of
// name, and whether more follow. Aliases are not listed. With filters
// (labels, dates), use ListSecretsPage, whose cursor can run ahead of the
// last secret returned.
func (s *Service) ListSecrets(ctx context.Context, project string, q ListQuery) ([]*Secret, bool, error) {
	p, err := s.ListSecretsPage(ctx, project, q)
	if err != nil {
		return nil, false, err
	}
	return p.Secrets, p.Next != "", nil
}

// SecretPage is a page of secrets.
type SecretPage struct {
	Secrets []*Secret
	// Next is the name to list on after (ListQuery.After), "" when no more
	// follow. With filters it may be past the last secret of the page: one
	// call reads at most MaxListScan names (Options.ListScan), so a page
	// may hold fewer secrets than asked for, or none, and still have a
	// Next.
	Next string
}

// ListSecretsPage returns a page of the project's secrets in byte order of
// name that match q's filters. Aliases are not listed.
func (s *Service) ListSecretsPage(ctx context.Context, project string, q ListQuery) (*SecretPage, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		q.Limit = DefaultPageSize
	}
	page := &SecretPage{Secrets: make([]*Secret, 0, min(q.Limit+1, 64))}
	if !ValidProject(project) {
		return page, nil
	}
	kq := kv.Query{Partition: projectPart(project), Prefix: "N#" + q.Prefix, Limit: q.Limit + 1}
	if q.filtered() {
		kq.Limit = max(kq.Limit, 100)
	}
	if q.After != "" {
		kq.After = "N#" + q.After
	}
	bound := max(s.listScan, q.Limit+1)
	scanned := 0
	var size pageBytes
	for {
		kq.Limit = min(kq.Limit, bound-scanned)
		items, err := s.query(ctx, kq)
		if err != nil {
			return nil, err
		}
		for i := range items {
			scanned++
			sec, a, err := s.nameFrom(&items[i], project)
			if err != nil {
				return nil, err
			}
			if a != nil || !q.matches(sec) {
				continue
			}
			if len(page.Secrets) == q.Limit || size.full(len(items[i].Value), len(page.Secrets)) {
				page.Next = page.Secrets[len(page.Secrets)-1].Name
				return page, nil
			}
			s.liveAliases(sec)
			page.Secrets = append(page.Secrets, sec)
		}
		if len(items) < kq.Limit {
			return page, nil
		}
		last := items[len(items)-1].Sort
		if scanned >= bound {
			page.Next = strings.TrimPrefix(last, "N#")
			return page, nil
		}
		kq.After = last
	}
}

// UpdateSecretInput is a partial update; nil fields are left as they are.
type UpdateSecretInput struct {
	Name        *string
	Description *string
	Values      map[string]string // non-nil: a new version
	// Stage PENDING writes the new version PENDING, not ENABLED: plain
	// references do not see it until it is promoted. "" or ENABLED: a
	// rotation.
	Stage State
	// ReplacePending lets a new version (staged or not) replace a PENDING
	// one, which becomes DISABLED; without it, that is Conflict.
	ReplacePending bool
	PreviousGrace  *time.Duration
	AliasTTL       *time.Duration
	// Labels, if not nil, replaces the secret's labels as a whole (an empty
	// map removes them all).
	Labels map[string]string
	// ExpiresAt and RotateBy, if not nil, set the secret's dates; the zero
	// time clears one.
	ExpiresAt *time.Time
	RotateBy  *time.Time
	// IfRevision, if set, makes the update conditional on the secret's
	// revision (If-Match): PreconditionFailed when it has moved on.
	IfRevision *int64
}

// UpdateSecret renames, re-describes, re-configures and/or writes a new
// version of a secret. A rotation writes version latest+1 ENABLED and moves
// the previous ENABLED version to DISABLED in the same transaction (it
// stays resolvable as @previous for the secret's grace); a staged write
// makes it PENDING instead. Concurrent updates each succeed in turn unless
// IfRevision is given.
func (s *Service) UpdateSecret(ctx context.Context, project, ref string, in UpdateSecretInput) (*Secret, error) {
	if in.Name == nil && in.Description == nil && in.Values == nil && in.PreviousGrace == nil && in.AliasTTL == nil &&
		in.Labels == nil && in.ExpiresAt == nil && in.RotateBy == nil {
		return nil, Errorf(Invalid, "give at least one of name, description, values, labels, expires_at, rotate_by, previous_grace_seconds, rename_alias_seconds")
	}
	if err := ValidateLabels(in.Labels); err != nil {
		return nil, err
	}
	expires, err := validateDate("expires_at", in.ExpiresAt)
	if err != nil {
		return nil, err
	}
	rotateBy, err := validateDate("rotate_by", in.RotateBy)
	if err != nil {
		return nil, err
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
	if err := validateSettings(in.PreviousGrace, in.AliasTTL); err != nil {
		return nil, err
	}
	switch in.Stage {
	case "", Enabled, Pending:
	default:
		return nil, FieldErrorf(Invalid, "stage", "stage must be PENDING (or ENABLED, the default)")
	}
	if in.Values == nil && (in.Stage != "" || in.ReplacePending) {
		return nil, FieldErrorf(Invalid, "stage", "stage and replace_pending apply to a new version: give values")
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
	err = s.retry(ctx, project, ref, in.IfRevision, func(cur *Secret) error {
		next := *cur
		now := s.Now()
		if in.Name != nil {
			next.Name = *in.Name
		}
		if in.Description != nil {
			next.Description = *in.Description
		}
		if in.PreviousGrace != nil {
			next.PreviousGrace = *in.PreviousGrace
		}
		if in.AliasTTL != nil {
			next.AliasTTL = *in.AliasTTL
		}
		if in.Labels != nil {
			next.Labels = cloneLabels(in.Labels)
		}
		if expires != nil {
			next.ExpiresAt = *expires
		}
		if rotateBy != nil {
			next.RotateBy = *rotateBy
		}
		next.UpdatedAt = now
		next.Revision = cur.Revision + 1
		var ops []kv.Op
		var put *Version
		if in.Values != nil {
			if cur.PendingVersion != 0 && !in.ReplacePending {
				return FieldErrorf(Conflict, "replace_pending", "version %d of secret %q is PENDING: promote it, or set replace_pending to replace it (it becomes DISABLED)", cur.PendingVersion, cur.Name)
			}
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
			if cur.PendingVersion != 0 {
				op, err := s.stateChange(ctx, cur, cur.PendingVersion, Pending, Disabled, now)
				if err != nil {
					return err
				}
				ops = append(ops, op)
				next.PendingVersion = 0
			}
			if in.Stage == Pending {
				v.State = Pending
				next.PendingVersion = n
			} else {
				if cur.CurrentVersion != 0 {
					op, err := s.stateChange(ctx, cur, cur.CurrentVersion, Enabled, Disabled, now)
					if err != nil {
						return err
					}
					ops = append(ops, op)
				}
				s.retire(&next, cur.CurrentVersion, now)
				next.CurrentVersion = n
			}
			put = &v
			ops = append(ops, kv.Put(versionItem(&v), kv.IfAbsent(time.Time{})), kv.Put(ciphertextItem(&v), kv.IfAbsent(time.Time{})))
			next.LatestVersion = n
		}
		ops, nameAt := s.secretOps(cur, &next, now, ops)
		ops = append(ops, reminderOps(cur, &next, now, true)...)
		err := s.commit(ctx, &Outcome{Secret: &next, Version: put}, updateEvents(cur, &next, put), ops...)
		switch i := conditionFailed(err); {
		case i >= 0 && i == nameAt:
			return s.nameTaken(ctx, project, next.Name)
		case i >= 0:
			return WrapError(Aborted, err, "the secret changed concurrently")
		case err != nil:
			return err
		}
		out = &next
		return nil
	})
	return out, err
}

// updateEvents are the events of an update from cur to next that wrote
// version put (nil if none): one per thing changed, and secret.updated for
// an update that changed nothing else (it still rewrote the record).
func updateEvents(cur, next *Secret, put *Version) []*Event {
	var evs []*Event
	if next.Name != cur.Name {
		evs = append(evs, secretEvent(EventSecretRenamed, next))
	}
	if !sameLabels(cur.Labels, next.Labels) {
		evs = append(evs, secretEvent(EventLabelsChanged, next))
	}
	if next.Description != cur.Description || next.PreviousGrace != cur.PreviousGrace || next.AliasTTL != cur.AliasTTL ||
		!next.ExpiresAt.Equal(cur.ExpiresAt) || !next.RotateBy.Equal(cur.RotateBy) {
		evs = append(evs, secretEvent(EventSecretUpdated, next))
	}
	switch {
	case put != nil && put.State == Pending:
		evs = append(evs, versionEvent(EventVersionStaged, next, put))
	case put != nil:
		evs = append(evs, versionEvent(EventSecretRotated, next, put))
	}
	if len(evs) == 0 {
		evs = append(evs, secretEvent(EventSecretUpdated, next))
	}
	return evs
}

// retire records that version old stops being the ENABLED one at now: it
// is the previous version, resolvable as @previous for the secret's grace.
func (s *Service) retire(next *Secret, old int, now time.Time) {
	if old == 0 {
		return
	}
	next.PreviousVersion = old
	next.PreviousUntil = time.Time{}
	if next.PreviousGrace > 0 {
		next.PreviousUntil = now.Add(next.PreviousGrace)
	}
}

// secretOps appends to ops the writes of a secret's record moving from
// cur to next: its ID item and its name item on the condition of cur's
// revision. A rename turns the old name into an alias for the secret's
// AliasTTL (or frees it, with 0), and claims the new name on the condition
// that no live item holds it (or, when it is an alias of this very secret,
// that the alias is still the one listed). It returns the index of the
// claim (-1 if no rename), whose failure means the name is taken.
func (s *Service) secretOps(cur, next *Secret, now time.Time, ops []kv.Op) ([]kv.Op, int) {
	p := cur.Project
	next.Aliases = slices.DeleteFunc(slices.Clone(cur.Aliases), func(a Alias) bool { return !a.Until.After(now) })
	claimAt := -1
	if next.Name != cur.Name {
		claim := kv.IfAbsent(now)
		if i := slices.IndexFunc(next.Aliases, func(a Alias) bool { return a.Name == next.Name }); i >= 0 {
			claim = kv.IfRev(next.Aliases[i].rev) // taking back an old name of its own
			next.Aliases = slices.Delete(next.Aliases, i, i+1)
		}
		if next.AliasTTL > 0 {
			a := Alias{Name: cur.Name, Until: now.Add(next.AliasTTL), rev: next.Revision}
			next.Aliases = append(next.Aliases, a)
			rec := &aliasRec{AliasOf: cur.ID, Project: p, Name: cur.Name, Until: at(a.Until)}
			ops = append(ops, kv.Put(kv.Item{Key: nameKey(p, cur.Name), Value: encode(rec), Rev: a.rev, Expires: a.Until}, kv.IfRev(cur.Revision)))
		} else {
			ops = append(ops, kv.Delete(nameKey(p, cur.Name), kv.IfRev(cur.Revision)))
		}
		claimAt = len(ops)
		ops = append(ops, kv.Put(secretItem(nameKey(p, next.Name), next), claim))
	} else {
		ops = append(ops, kv.Put(secretItem(nameKey(p, cur.Name), next), kv.IfRev(cur.Revision)))
	}
	return append(ops, kv.Put(secretItem(secretKey(p, cur.ID), next), kv.IfRev(cur.Revision))), claimAt
}

// stateChange reads version n of sec, which must be in state from, and
// returns the write that moves it to state to at now. A version that is not
// in the state the secret's record says means the record moved on since it
// was read: Aborted.
func (s *Service) stateChange(ctx context.Context, sec *Secret, n int, from, to State, now time.Time) (kv.Op, error) {
	v, err := s.version(ctx, sec, n)
	if err != nil {
		return kv.Op{}, WrapError(Aborted, err, "version %d moved on", n)
	}
	if v.State != from {
		return kv.Op{}, Errorf(Aborted, "version %d of secret %q is %s, not %s", n, sec.Name, v.State, from)
	}
	v.State, v.StateChangedAt = to, now
	return kv.Put(versionItem(v), kv.Cond{}), nil
}

// DeleteAlias ends an alias of a secret before its time: the old name
// stops resolving and is free. NotFound if the secret has no such live
// alias.
func (s *Service) DeleteAlias(ctx context.Context, project, ref, name string) (*Secret, error) {
	var out *Secret
	err := s.retry(ctx, project, ref, nil, func(cur *Secret) error {
		i := slices.IndexFunc(cur.Aliases, func(a Alias) bool { return a.Name == name })
		if i < 0 {
			return Errorf(NotFound, "secret %q has no alias %q", cur.Name, Shorten(name, 140))
		}
		now := s.Now()
		next := *cur
		next.UpdatedAt, next.Revision = now, cur.Revision+1
		ops := []kv.Op{kv.Delete(nameKey(project, name), kv.IfRev(cur.Aliases[i].rev))}
		ops, _ = s.secretOps(cur, &next, now, ops)
		next.Aliases = slices.DeleteFunc(next.Aliases, func(a Alias) bool { return a.Name == name })
		// secretOps encoded next before the alias left its list: encode
		// again, now that it has.
		ops[len(ops)-2] = kv.Put(secretItem(nameKey(project, cur.Name), &next), kv.IfRev(cur.Revision))
		ops[len(ops)-1] = kv.Put(secretItem(secretKey(project, cur.ID), &next), kv.IfRev(cur.Revision))
		if err := s.commit(ctx, &Outcome{Secret: &next}, []*Event{secretEvent(EventSecretUpdated, &next)}, ops...); err != nil {
			if conditionFailed(err) >= 0 {
				return WrapError(Aborted, err, "the secret changed concurrently")
			}
			return err
		}
		out = &next
		return nil
	})
	return out, err
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
		} else if cur, err = s.lookup(ctx, project, id); ErrorCode(err) == NotFound {
			err = notFoundSecret(ref, project)
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
		return WrapError(Unavailable, ctx.Err(), "the request was cancelled or ran out of time")
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
	q := kv.Query{Partition: secretPart(sec.Project, sec.ID), Prefix: "V#", Reverse: true, Limit: limit + 1}
	if before > 0 {
		q.After = versionSort("V#", min(before, maxVersion+1))
	}
	items, err := s.query(ctx, q)
	if err != nil {
		return nil, false, err
	}
	last, err := s.lastResolved(ctx, sec)
	if err != nil {
		return nil, false, err
	}
	list := make([]*Version, 0, len(items))
	for i := range items {
		v, err := s.versionFrom(&items[i], sec.Project, sec.ID)
		if err != nil {
			return nil, false, err
		}
		v.LastResolvedAt = last[v.Number]
		list = append(list, v)
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
	last, err := s.lastResolved(ctx, sec)
	if err != nil {
		return nil, nil, err
	}
	v.LastResolvedAt = last[v.Number]
	return v, sec, nil
}

// version reads the metadata of version n of sec (0: the ENABLED one).
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
	it, err := s.get(ctx, versionKey(sec.Project, sec.ID, n))
	if err != nil {
		return nil, err
	}
	if it == nil {
		return nil, Errorf(NotFound, "version %d of secret %q not found", n, sec.Name)
	}
	return s.versionFrom(it, sec.Project, sec.ID)
}

// Version actions.
const (
	ActionEnable  = "enable"
	ActionDisable = "disable"
	ActionDestroy = "destroy"
	ActionPromote = "promote"
)

// RecentUse is how recently a version must have been resolved for
// disabling or destroying it to need Force.
const RecentUse = time.Hour

// ActionOptions qualify a version action.
type ActionOptions struct {
	// IfRevision, if set, makes the action conditional on the secret's
	// revision (If-Match).
	IfRevision *int64
	// Force disables or destroys a version even though it was resolved
	// within RecentUse.
	Force bool
}

// ChangeVersionState is ChangeVersionStateWith without Force.
func (s *Service) ChangeVersionState(ctx context.Context, project, ref, vref, action string, ifRevision *int64) (*Version, *Secret, error) {
	return s.ChangeVersionStateWith(ctx, project, ref, vref, action, ActionOptions{IfRevision: ifRevision})
}

// ChangeVersionStateWith applies enable, disable, destroy or promote to one
// version and returns it as it now is, with the secret. Enabling (or
// promoting a PENDING version) moves the previous ENABLED version to
// DISABLED, where it stays resolvable as @previous for the secret's grace;
// destroying erases the ciphertext for good. Repeating an action that
// already holds is a no-op. Conflict for a change out of DESTROYED, a
// promote of a version that is not PENDING, or disabling or destroying a
// version resolved within RecentUse without Force (naming its last
// consumer).
func (s *Service) ChangeVersionStateWith(ctx context.Context, project, ref, vref, action string, o ActionOptions) (*Version, *Secret, error) {
	n, err := ParseVersionRef(vref)
	if err != nil {
		return nil, nil, err
	}
	var target State
	switch action {
	case ActionEnable, ActionPromote:
		target = Enabled
	case ActionDisable:
		target = Disabled
	case ActionDestroy:
		target = Destroyed
	default:
		return nil, nil, Errorf(NotFound, "unknown version action %q", Shorten(action, 40))
	}
	var outV *Version
	var outS *Secret
	err = s.retry(ctx, project, ref, o.IfRevision, func(cur *Secret) error {
		v, err := s.version(ctx, cur, n)
		if err != nil {
			return err
		}
		if v.State == target {
			outV, outS = v, cur
			return nil
		}
		if v.State == Destroyed {
			return Errorf(Conflict, "version %d of secret %q is DESTROYED and cannot be %s", v.Number, cur.Name, pastTense(action))
		}
		if action == ActionPromote && v.State != Pending {
			return Errorf(Conflict, "version %d of secret %q is %s: only a PENDING version can be promoted", v.Number, cur.Name, v.State)
		}
		if (v.State == Enabled) != (cur.CurrentVersion == v.Number) || (v.State == Pending) != (cur.PendingVersion == v.Number) {
			return Errorf(Aborted, "version %d of secret %q moved on", v.Number, cur.Name)
		}
		if (target == Disabled || target == Destroyed) && !o.Force {
			if err := s.refuseIfInUse(ctx, cur, v, action); err != nil {
				return err
			}
		}
		now := s.Now()
		next := *cur
		next.UpdatedAt = now
		next.Revision = cur.Revision + 1
		var ops []kv.Op
		if target == Enabled && cur.CurrentVersion != 0 {
			op, err := s.stateChange(ctx, cur, cur.CurrentVersion, Enabled, Disabled, now)
			if err != nil {
				return err
			}
			ops = append(ops, op)
			s.retire(&next, cur.CurrentVersion, now)
		}
		nv := *v
		nv.State, nv.StateChangedAt = target, now
		ops = append(ops, kv.Put(versionItem(&nv), kv.Cond{}))
		if target == Destroyed {
			ops = append(ops, kv.Erase(ciphertextKey(project, cur.ID, v.Number), kv.Cond{}))
			if next.PreviousVersion == v.Number {
				next.PreviousVersion, next.PreviousUntil = 0, time.Time{}
			}
		}
		switch {
		case target == Enabled:
			next.CurrentVersion = v.Number
		case v.State == Enabled:
			next.CurrentVersion = 0
		}
		if v.State == Pending {
			next.PendingVersion = 0
		}
		ops, _ = s.secretOps(cur, &next, now, ops)
		ev := versionEvent(actionEvents[action], &next, &nv)
		if err := s.commit(ctx, &Outcome{Secret: &next, Version: &nv}, []*Event{ev}, ops...); err != nil {
			if conditionFailed(err) >= 0 {
				return WrapError(Aborted, err, "the secret changed concurrently")
			}
			return err
		}
		if target == Destroyed {
			s.ctc.remove(ciphertextKey(project, cur.ID, v.Number).String())
		}
		outV, outS = &nv, &next
		return nil
	})
	return outV, outS, err
}

// actionEvents is the event type of each version action.
var actionEvents = map[string]EventType{
	ActionEnable: EventVersionEnabled, ActionDisable: EventVersionDisable,
	ActionDestroy: EventVersionDestroy, ActionPromote: EventVersionPromote,
}

func pastTense(action string) string {
	switch action {
	case ActionEnable:
		return "enabled"
	case ActionDisable:
		return "disabled"
	case ActionDestroy:
		return "destroyed"
	case ActionPromote:
		return "promoted"
	}
	return action + "d"
}

// refuseIfInUse is Conflict when version v was resolved within RecentUse,
// naming its last consumer.
func (s *Service) refuseIfInUse(ctx context.Context, sec *Secret, v *Version, action string) error {
	last, err := s.lastResolved(ctx, sec)
	if err != nil {
		return err
	}
	at, ok := last[v.Number]
	if !ok || s.Now().Sub(at) >= RecentUse {
		return nil
	}
	who := "a loop runner"
	if r, err := s.lastConsumer(ctx, sec, v.Number); err == nil && r != nil {
		who = fmt.Sprintf("grant %s", r.GrantID)
		if len(r.Run) > 0 {
			who += " (run " + string(r.Run) + ")"
		}
		if len(r.Step) > 0 {
			who += ", step " + string(r.Step)
		}
	}
	return FieldErrorf(Conflict, "force", "version %d of secret %q was resolved %s ago, last by %s: it is still in use; pass force=true to %s it anyway",
		v.Number, sec.Name, s.Now().Sub(at).Round(time.Second), who, action)
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
	return s.ListResolutionsOf(ctx, sec.Project, sec.ID, beforeID, limit)
}
