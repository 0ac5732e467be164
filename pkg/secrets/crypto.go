package secrets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/mobius-secrets/mobius/pkg/envelope"
	"github.com/mobius-secrets/mobius/pkg/kv"
)

// EncryptionContext is what binds a version's data key (KMS
// EncryptionContext, or the local wrapper's associated data) to its place:
// project, immutable secret ID and version number. Never the name, which
// can change, and nothing sensitive: it is logged by KMS.
func EncryptionContext(project, secretID string, n int) map[string]string {
	return map[string]string{"project": project, "secret_id": secretID, "version": strconv.Itoa(n)}
}

// AssociatedData binds a version's ciphertext to project, secret ID and
// version number.
func AssociatedData(project, secretID string, n int) []byte {
	b := make([]byte, 0, 16+len(project)+len(secretID))
	b = append(b, "mobius/v1\x00"...)
	b = append(b, project...)
	b = append(b, 0)
	b = append(b, secretID...)
	b = append(b, 0)
	return strconv.AppendInt(b, int64(n), 10)
}

func (s *Service) seal(ctx context.Context, project, secretID string, n int, plain []byte) ([]byte, error) {
	if err := s.ensureKey(ctx); err != nil {
		return nil, err
	}
	dek, wrapped, err := s.keys.GenerateDataKey(ctx, EncryptionContext(project, secretID, n))
	if err != nil {
		return nil, keyError(err)
	}
	defer clear(dek)
	ct, err := envelope.Seal(s.rand, dek, wrapped, AssociatedData(project, secretID, n), plain)
	if err != nil {
		return nil, WrapError(Internal, err, "sealing version")
	}
	return ct, nil
}

// open decrypts the ciphertext of the version that sits in slot n of secret
// sec, using the data-key cache. The binding (associated data and key
// context) comes from the slot that was asked for, never from the fields of
// the stored record, so a record copied into another slot (an old version
// replayed as the current one, or a version moved between secrets or
// projects) fails authentication.
func (s *Service) open(ctx context.Context, sec *Secret, n int, v *Version) ([]byte, error) {
	if v.Project != sec.Project || v.SecretID != sec.ID || v.Number != n {
		return nil, s.integrity(v, errors.New("stored version record is not in its own slot"))
	}
	if err := s.ensureKey(ctx); err != nil {
		return nil, err
	}
	env, err := envelope.Parse(v.Ciphertext)
	if err != nil {
		return nil, s.integrity(v, err)
	}
	ec := EncryptionContext(sec.Project, sec.ID, n)
	ad := AssociatedData(sec.Project, sec.ID, n)
	sum := sha256.Sum256(append(ad, env.WrappedKey...))
	ck := string(sum[:])
	// A cached key comes out as a copy: the cache zeroes its own when the
	// entry expires or is evicted, which may happen while this one is used.
	dek, ok := s.dekc.getWith(ck, bytes.Clone)
	if !ok {
		dek, err = s.keys.UnwrapDataKey(ctx, env.WrappedKey, ec)
		if err != nil {
			if ErrorCode(err) == Integrity {
				return nil, s.integrity(v, err)
			}
			return nil, keyError(err)
		}
		s.dekc.put(ck, bytes.Clone(dek)) // the cache owns (and eventually zeroes) its copy
	}
	defer clear(dek)
	pt, err := env.Open(dek, ad)
	if err != nil {
		return nil, s.integrity(v, err)
	}
	return pt, nil
}

func (s *Service) integrity(v *Version, err error) error {
	s.log.Error("INTEGRITY FAILURE: stored ciphertext failed authentication; refusing to decrypt",
		"project", v.Project, "secret_id", v.SecretID, "version", v.Number, "err", err.Error())
	return WrapError(Integrity, err, "stored ciphertext of version %d failed its integrity check", v.Number)
}

// keyError classifies a key wrapper failure: its own *Error passes through;
// anything else means the key service is unavailable.
func keyError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return WrapError(Unavailable, err, "the key service is unavailable")
}

func digestBytes(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// Selector picks which version of a secret a reference reads.
type Selector struct {
	Kind   SelectorKind
	Number int // for SelectNumber
}

// SelectorKind is the kind of a Selector.
type SelectorKind uint8

const (
	SelectCurrent  SelectorKind = iota // the ENABLED version (a plain reference)
	SelectPending                      // @pending: the PENDING version
	SelectPrevious                     // @previous: the version ENABLED before, within the grace
	SelectNumber                       // @N: version N, if it is one of those three
)

// ParseSelector reads what follows "@" in a reference: "pending",
// "previous" or a version number; "" is the current version.
func ParseSelector(s string) (Selector, bool) {
	switch s {
	case "":
		return Selector{}, true
	case "pending":
		return Selector{Kind: SelectPending}, true
	case "previous":
		return Selector{Kind: SelectPrevious}, true
	}
	n, err := ParseVersionRef(s)
	if err != nil || n == 0 {
		return Selector{}, false
	}
	return Selector{Kind: SelectNumber, Number: n}, true
}

// String is the selector as written after "@" ("" for the current one).
func (sel Selector) String() string {
	switch sel.Kind {
	case SelectPending:
		return "pending"
	case SelectPrevious:
		return "previous"
	case SelectNumber:
		return strconv.Itoa(sel.Number)
	}
	return ""
}

// Want is one secret and version a caller wants revealed.
type Want struct {
	Name string
	Sel  Selector
}

// Revealed is the version a Want selects, with its decrypted values. It is
// only ever produced for the resolve function.
type Revealed struct {
	Secret *Secret
	// Alias is set when the name asked for is an old name of Secret, kept
	// as an alias after a rename.
	Alias string
	// Covered is false when the caller's allow refused the secret: then
	// nothing of it was decrypted, and Version and Values are nil.
	Covered bool
	Version *Version // its number and state; nil when nothing resolves
	Values  map[string]string
	// Problem says why nothing resolves (the selected version does not
	// exist or may not be read), for a NotFound; "" when Version is set.
	Problem string
}

// Reveal is RevealAll of the current version of each name, keyed by name.
func (s *Service) Reveal(ctx context.Context, project string, names []string, allow func(*Secret) bool) (map[string]*Revealed, error) {
	wants := make([]Want, len(names))
	for i, n := range names {
		wants[i] = Want{Name: n}
	}
	all, err := s.RevealAll(ctx, project, wants, allow)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Revealed, len(all))
	for w, r := range all {
		out[w.Name] = r
	}
	return out, nil
}

// RevealAll decrypts the version each Want selects: the ENABLED one; the
// PENDING one (@pending); the one ENABLED before the last rotation, while
// its grace lasts (@previous); or version N only if it is one of those
// (@N). A name that is an alias (an old name, after a rename) reads its
// secret. Names that exist nowhere are absent from the result; a Want whose
// version does not resolve has a nil Version and a Problem, and so does a
// secret past its ExpiresAt (nothing of it is decrypted) and a name whose
// secret is in the trash (its Secret holds only ID, Project and Name).
// Integrity if a ciphertext fails its check. Every other read path of the
// service returns metadata only.
//
// It reads the secrets' records strongly consistently (batched) and the
// ciphertext from a cache, which is sound because ciphertext never changes
// while it exists: a record read now names the versions that resolve now.
//
// allow, if not nil, decides which secrets may be decrypted (a grant's
// coverage); the others are returned with Covered false and nothing read
// beyond their record.
func (s *Service) RevealAll(ctx context.Context, project string, wants []Want, allow func(*Secret) bool) (map[Want]*Revealed, error) {
	out := make(map[Want]*Revealed, len(wants))
	if !ValidProject(project) {
		return out, nil
	}
	todo := make([]Want, 0, len(wants))
	for _, w := range wants {
		if ValidName(w.Name) && !slices.Contains(todo, w) {
			todo = append(todo, w)
		}
	}
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt > 0 {
			if attempt >= 8 {
				return nil, Errorf(Unavailable, "too much contention reading current versions; try again")
			}
			if err := s.backoff(ctx, attempt); err != nil {
				return nil, err
			}
		}
		secs, aliases, trashed, err := s.readNames(ctx, project, todo)
		if err != nil {
			return nil, err
		}
		now := s.Now()
		type pick struct {
			r *Revealed
			n int
		}
		picks := make(map[Want]pick, len(todo))
		var stateKeys []kv.Key
		for _, w := range todo {
			if t := trashed[w.Name]; t != nil {
				// A tombstone: the name's secret is in the trash.
				sec := &Secret{ID: t.AliasOf, Project: project, Name: w.Name}
				r := &Revealed{Secret: sec, Covered: allow == nil || allow(sec)}
				if r.Covered {
					r.Problem = trashProblem(w.Name, t)
				}
				picks[w] = pick{r: r}
				continue
			}
			sec := secs[w.Name]
			if sec == nil {
				continue
			}
			r := &Revealed{Secret: sec, Alias: aliases[w.Name], Covered: allow == nil || allow(sec)}
			p := pick{r: r}
			if problem := expiryProblem(sec, now); r.Covered && problem != "" {
				r.Problem = problem
			} else if r.Covered {
				p.n, r.Problem = selectVersion(sec, w.Sel, now)
				if p.n == 0 && r.Problem == "" { // a number to name the state of
					stateKeys = append(stateKeys, versionKey(project, sec.ID, w.Sel.Number))
				}
			}
			picks[w] = p
		}
		states, err := s.getMany(ctx, stateKeys)
		if err != nil {
			return nil, err
		}
		var missing []kv.Key
		cts := map[kv.Key][]byte{}
		for w, p := range picks {
			if p.n == 0 && p.r.Covered && p.r.Problem == "" {
				p.r.Problem = s.pinProblem(states[versionKey(project, p.r.Secret.ID, w.Sel.Number)], p.r.Secret, w.Sel.Number)
				continue
			}
			if p.n == 0 {
				continue
			}
			ck := ciphertextKey(project, p.r.Secret.ID, p.n)
			if ct, ok := s.ctc.get(ck.String()); ok {
				cts[ck] = ct
			} else if !slices.Contains(missing, ck) {
				missing = append(missing, ck)
			}
		}
		if len(missing) > 0 {
			got, err := s.getMany(ctx, missing)
			if err != nil {
				return nil, err
			}
			for k, it := range got {
				cts[k] = it.Value
				s.ctc.put(k.String(), it.Value)
			}
		}
		var again []Want
		for _, w := range todo {
			p, ok := picks[w]
			if !ok {
				continue
			}
			if p.n != 0 {
				sec := p.r.Secret
				ct, ok := cts[ciphertextKey(project, sec.ID, p.n)]
				if !ok {
					// Destroyed or replaced between the reads: read the
					// record again.
					again = append(again, w)
					continue
				}
				v := &Version{Project: project, SecretID: sec.ID, Number: p.n, State: stateOf(sec, p.n), Ciphertext: ct}
				pt, err := s.open(ctx, sec, p.n, v)
				if err != nil {
					return nil, err
				}
				if err := json.Unmarshal(pt, &p.r.Values); err != nil {
					clear(pt)
					return nil, s.integrity(v, err)
				}
				clear(pt)
				v.Ciphertext = nil
				p.r.Version = v
			}
			out[w] = p.r
		}
		todo = again
	}
	return out, nil
}

// readNames reads the records that hold the names of wants, following
// aliases to their secrets: one batched read of the names, and one of the
// secrets that live aliases point at. Names whose secret is in the trash
// come back in trashed, with their tombstone.
func (s *Service) readNames(ctx context.Context, project string, wants []Want) (map[string]*Secret, map[string]string, map[string]*aliasRec, error) {
	var keys []kv.Key
	for _, w := range wants {
		if k := nameKey(project, w.Name); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	items, err := s.getMany(ctx, keys)
	if err != nil {
		return nil, nil, nil, err
	}
	now := s.Now()
	secs, aliases, trashed := map[string]*Secret{}, map[string]string{}, map[string]*aliasRec{}
	via := map[string][]string{} // secret ID -> alias names
	var idKeys []kv.Key
	for _, k := range keys {
		it := items[k]
		if it == nil {
			continue
		}
		sec, a, err := s.nameFrom(it, project)
		if err != nil {
			return nil, nil, nil, err
		}
		if a != nil {
			if !a.Trashed.IsZero() {
				trashed[a.Name] = a
				continue
			}
			if it.ExpiredAt(now) {
				continue
			}
			via[a.AliasOf] = append(via[a.AliasOf], a.Name)
			idKeys = append(idKeys, secretKey(project, a.AliasOf))
			continue
		}
		secs[sec.Name] = sec
	}
	if len(idKeys) > 0 {
		got, err := s.getMany(ctx, idKeys)
		if err != nil {
			return nil, nil, nil, err
		}
		for _, it := range got {
			sec, err := s.secretFrom(it, project)
			if err != nil {
				return nil, nil, nil, err
			}
			for _, name := range via[sec.ID] {
				secs[name], aliases[name] = sec, name
			}
		}
	}
	return secs, aliases, trashed, nil
}

// trashProblem is why a name whose secret is in the trash resolves
// nothing.
func trashProblem(name string, t *aliasRec) string {
	return fmt.Sprintf("secret %q is in the trash since %s", name, t.Trashed.Format(time.RFC3339))
}

// expiryProblem is why sec resolves nothing at now, past its ExpiresAt; ""
// before it.
func expiryProblem(sec *Secret, now time.Time) string {
	if sec.ExpiresAt.IsZero() || now.Before(sec.ExpiresAt) {
		return ""
	}
	return fmt.Sprintf("secret %q expired at %s", sec.Name, sec.ExpiresAt.Format(time.RFC3339))
}

// selectVersion applies sel to sec at now: the version number to read, or
// a Problem. (0, "") means sel names a number that resolves only if it is
// current, pending or previous, which it is not: the caller reads its state
// to say so.
func selectVersion(sec *Secret, sel Selector, now time.Time) (int, string) {
	graced := sec.PreviousVersion != 0 && now.Before(sec.PreviousUntil)
	switch sel.Kind {
	case SelectCurrent:
		if sec.CurrentVersion == 0 {
			return 0, fmt.Sprintf("secret %q has no ENABLED version", sec.Name)
		}
		return sec.CurrentVersion, ""
	case SelectPending:
		if sec.PendingVersion == 0 {
			return 0, fmt.Sprintf("secret %q has no PENDING version", sec.Name)
		}
		return sec.PendingVersion, ""
	case SelectPrevious:
		switch {
		case graced:
			return sec.PreviousVersion, ""
		case sec.PreviousVersion == 0:
			return 0, fmt.Sprintf("secret %q has no previous version", sec.Name)
		case sec.PreviousUntil.IsZero():
			return 0, fmt.Sprintf("the previous version (%d) of secret %q is DISABLED, and the secret keeps no grace for it (previous_grace_seconds is 0)", sec.PreviousVersion, sec.Name)
		default:
			return 0, fmt.Sprintf("the previous version (%d) of secret %q is DISABLED: its grace ended at %s", sec.PreviousVersion, sec.Name, sec.PreviousUntil.Format(time.RFC3339))
		}
	}
	n := sel.Number
	switch {
	case n > sec.LatestVersion:
		return 0, fmt.Sprintf("version %d of secret %q not found", n, sec.Name)
	case n == sec.CurrentVersion, n == sec.PendingVersion, n == sec.PreviousVersion && graced:
		return n, ""
	}
	return 0, ""
}

// pinProblem says why a pinned version (it, read from its place) does not
// resolve.
func (s *Service) pinProblem(it *kv.Item, sec *Secret, n int) string {
	state := "missing"
	if it != nil {
		if v, err := s.versionFrom(it, sec.Project, sec.ID); err == nil {
			state = string(v.State)
		}
	}
	if n == sec.PreviousVersion {
		return fmt.Sprintf("version %d of secret %q is %s, and its grace as the previous version has ended", n, sec.Name, state)
	}
	return fmt.Sprintf("version %d of secret %q is %s: a pinned reference resolves only the ENABLED, the PENDING, or the previous version within its grace", n, sec.Name, state)
}

// stateOf is the state of version n of sec, as its record's pointers say,
// for a version that resolves.
func stateOf(sec *Secret, n int) State {
	switch n {
	case sec.CurrentVersion:
		return Enabled
	case sec.PendingVersion:
		return Pending
	}
	return Disabled
}
