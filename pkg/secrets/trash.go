package secrets

import (
	"context"
	"fmt"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// The trash. Deleting a secret moves its record to P#<project> / T#<ID>
// for the trash retention (DefaultTrashRetention, Options.TrashRetention)
// and frees its name and aliases at once; its versions and their
// ciphertext stay where they are, untouched, so that a restore brings back
// every version in its state. Each freed name holds a tombstone (an alias
// record with Trashed set, expired from the start: anyone may take the
// name) that lets a reference to it say where the secret went. A purge,
// due when the retention ends (Q#purges, run by the Sweep) or asked for,
// first marks the trash record as purging, in the commit that holds its
// secret.purged event (from then on it cannot be restored), then erases
// the versions and their ciphertext (kv.Erase: the embedded store scrubs
// the pages), then removes the record. A purge that a failure interrupts
// is finished by the next Sweep. The resolution audit stays, for
// AuditRetention.

// DefaultTrashRetention is how long a deleted secret stays in the trash.
const DefaultTrashRetention = 7 * 24 * time.Hour

// TrashedSecret is a secret in the trash.
type TrashedSecret struct {
	Secret    *Secret // as it was when deleted
	TrashedAt time.Time
	PurgeAt   time.Time // when the Sweep purges it
	purging   bool
	rev       int64
	names     []string // the names that got its tombstones
}

type trashRec struct {
	Secret  secretRec `json:"s" cbor:"0,keyasint"`
	Trashed stamp     `json:"ta" cbor:"1,keyasint"`
	PurgeAt stamp     `json:"pa" cbor:"2,keyasint"`
	Purging bool      `json:"pg,omitempty" cbor:"3,keyasint,omitempty"`
	Names   []string  `json:"tn,omitempty" cbor:"4,keyasint,omitempty"`
}

func (s *Service) trashFrom(it *kv.Item, project string) (*TrashedSecret, error) {
	var r trashRec
	if err := s.decode(it, &r); err != nil {
		return nil, err
	}
	if r.Secret.Project != project || it.Key != trashKey(project, r.Secret.ID) {
		return nil, s.misplaced(it, "trashed secret")
	}
	return &TrashedSecret{Secret: r.Secret.secret(), TrashedAt: r.Trashed.UTC(), PurgeAt: r.PurgeAt.UTC(),
		purging: r.Purging, rev: it.Rev, names: r.Names}, nil
}

func trashItem(t *TrashedSecret) kv.Item {
	rec := &trashRec{Secret: *secretToRec(t.Secret), Trashed: at(t.TrashedAt), PurgeAt: at(t.PurgeAt), Purging: t.purging, Names: t.names}
	return kv.Item{Key: trashKey(t.Secret.Project, t.Secret.ID), Value: encode(rec), Rev: t.rev}
}

// purgeRec is an item of the purge queue.
type purgeRec struct {
	Project  string `json:"p" cbor:"0,keyasint"`
	SecretID string `json:"s" cbor:"1,keyasint"`
}

func purgeItem(t *TrashedSecret) kv.Item {
	p, id := t.Secret.Project, t.Secret.ID
	return kv.Item{Key: purgeKey(t.PurgeAt, p, id), Value: encode(&purgeRec{Project: p, SecretID: id})}
}

func tombstoneItem(project, id, name string, now time.Time, rev int64) kv.Item {
	rec := &aliasRec{AliasOf: id, Project: project, Name: name, Until: at(now), Trashed: at(now)}
	return kv.Item{Key: nameKey(project, name), Value: encode(rec), Rev: rev, Expires: now}
}

// DeleteOptions qualify a delete.
type DeleteOptions struct {
	// IfRevision, if set, makes the delete conditional on the secret's
	// revision (If-Match).
	IfRevision *int64
	// Purge skips the trash: the secret is purged at once.
	Purge bool
}

// DeleteSecret moves the secret to the trash (DeleteSecretWith without
// Purge).
func (s *Service) DeleteSecret(ctx context.Context, project, ref string, ifRevision *int64) error {
	return s.DeleteSecretWith(ctx, project, ref, DeleteOptions{IfRevision: ifRevision})
}

// DeleteSecretWith moves the secret to the trash, keyed by its ID, for the
// trash retention: its name and aliases are free at once, references to it
// fail NotFound, and RestoreSecret brings it back with every version in its
// state. With Purge it skips the trash: the secret is purged at once (its
// versions' ciphertext erased), irreversibly. NotFound if absent;
// PreconditionFailed for a stale IfRevision.
func (s *Service) DeleteSecretWith(ctx context.Context, project, ref string, o DeleteOptions) error {
	var moved *TrashedSecret
	err := s.retry(ctx, project, ref, o.IfRevision, func(cur *Secret) error {
		now := s.Now()
		t := &TrashedSecret{Secret: cur, TrashedAt: now, PurgeAt: now.Add(s.trashFor), rev: cur.Revision + 1, purging: o.Purge}
		if o.Purge {
			t.PurgeAt = now
		}
		p := cur.Project
		// The record as deleted: its own revision moves on, as with every
		// change, and its aliases end with the delete.
		rec := *cur
		rec.Revision, rec.UpdatedAt, rec.Aliases = t.rev, now, nil
		t.Secret = &rec
		t.names = []string{cur.Name}
		ops := []kv.Op{
			kv.Delete(secretKey(p, cur.ID), kv.IfRev(cur.Revision)),
			kv.Put(tombstoneItem(p, cur.ID, cur.Name, now, t.rev), kv.IfRev(cur.Revision)),
		}
		for _, a := range cur.Aliases {
			ops = append(ops, kv.Put(tombstoneItem(p, cur.ID, a.Name, now, t.rev), kv.IfRev(a.rev)))
			t.names = append(t.names, a.Name)
		}
		ops = append(ops,
			kv.Put(trashItem(t), kv.IfAbsent(time.Time{})),
			kv.Put(purgeItem(t), kv.Cond{}),
		)
		ops = append(ops, reminderOps(cur, nil, now, false)...)
		typ := EventSecretDeleted
		if o.Purge {
			typ = EventSecretPurged
		}
		err := s.commit(ctx, nil, []*Event{secretEvent(typ, cur)}, ops...)
		if conditionFailed(err) >= 0 {
			return WrapError(Aborted, err, "the secret changed concurrently")
		}
		moved = t
		return err
	})
	if err != nil || !o.Purge {
		return err
	}
	if err := s.erase(ctx, moved); err != nil {
		s.log.WarnContext(ctx, "erasing a purged secret's versions failed; the next sweep finishes it",
			"project", project, "secret_id", moved.Secret.ID, "err", err.Error())
	}
	return nil
}

// trashed reads the trash record of secret id: NotFound if there is none,
// or it is being purged.
func (s *Service) trashed(ctx context.Context, project, id string) (*TrashedSecret, error) {
	notFound := Errorf(NotFound, "secret %q not found in the trash of project %q", Shorten(id, 40), Shorten(project, MaxProjectLen))
	if !ValidProject(project) || !IsSecretID(id) {
		return nil, notFound
	}
	it, err := s.get(ctx, trashKey(project, id))
	if err != nil {
		return nil, err
	}
	if it == nil {
		return nil, notFound
	}
	t, err := s.trashFrom(it, project)
	if err != nil {
		return nil, err
	}
	if t.purging {
		return t, notFound
	}
	return t, nil
}

// ListTrash returns a page of the project's trash in ID order (the order
// secrets were created), after the secret ID after, and whether more
// follow. Secrets being purged are not listed.
func (s *Service) ListTrash(ctx context.Context, project, after string, limit int) ([]*TrashedSecret, bool, error) {
	if err := checkLimit(limit); err != nil {
		return nil, false, err
	}
	if limit <= 0 {
		limit = DefaultPageSize
	}
	out := []*TrashedSecret{}
	if !ValidProject(project) {
		return out, false, nil
	}
	q := kv.Query{Partition: projectPart(project), Prefix: "T#", Limit: limit + 1}
	var size pageBytes
	if after != "" {
		q.After = "T#" + after
	}
	for len(out) <= limit {
		items, err := s.query(ctx, q)
		if err != nil {
			return nil, false, err
		}
		for i := range items {
			t, err := s.trashFrom(&items[i], project)
			if err != nil {
				return nil, false, err
			}
			if t.purging {
				continue
			}
			if size.full(len(items[i].Value), len(out)) {
				return out, true, nil
			}
			out = append(out, t)
		}
		if len(items) < q.Limit {
			break
		}
		q.After = items[len(items)-1].Sort
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// RestoreSecret brings secret id back from the trash with every version
// in the state it had, under its name, or under name if that is not "".
// Its aliases do not come back (they ended with the delete), nor do the
// reminders that came due meanwhile. NotFound if it is not in the trash
// (or is being purged); Conflict (field name) if the name was taken
// meanwhile, naming the way out.
func (s *Service) RestoreSecret(ctx context.Context, project, id, name string) (*Secret, error) {
	if name != "" {
		if err := validateName("name", name); err != nil {
			return nil, err
		}
	}
	for i := 0; ; i++ {
		t, err := s.trashed(ctx, project, id)
		if err != nil {
			return nil, err
		}
		sec, err := s.restoreOnce(ctx, t, name)
		if ErrorCode(err) != Aborted {
			return sec, err
		}
		if i+1 >= s.tries {
			return nil, WrapError(Unavailable, err, "too much contention restoring secret %s; try again", id)
		}
		if err := s.backoff(ctx, i); err != nil {
			return nil, err
		}
	}
}

func (s *Service) restoreOnce(ctx context.Context, t *TrashedSecret, name string) (*Secret, error) {
	now := s.Now()
	p, id := t.Secret.Project, t.Secret.ID
	next := *t.Secret
	if name != "" {
		next.Name = name
	}
	next.Aliases = nil
	next.Revision, next.UpdatedAt = t.rev+1, now
	ops := []kv.Op{
		kv.Delete(trashKey(p, id), kv.IfRev(t.rev)),
		kv.Put(secretItem(secretKey(p, id), &next), kv.IfAbsent(time.Time{})),
		kv.Put(secretItem(nameKey(p, next.Name), &next), kv.IfAbsent(now)),
		kv.Delete(purgeKey(t.PurgeAt, p, id), kv.Cond{}),
	}
	const claimAt = 2
	// The other names' tombstones go, where they are still this secret's.
	dropOps, err := s.tombstoneDrops(ctx, t, next.Name)
	if err != nil {
		return nil, err
	}
	ops = append(ops, dropOps...)
	ops = append(ops, reminderOps(nil, &next, now, false)...)
	err = s.commit(ctx, &Outcome{Secret: &next}, []*Event{secretEvent(EventSecretRestored, &next)}, ops...)
	switch i := conditionFailed(err); {
	case i == claimAt && name == "":
		return nil, FieldErrorf(Conflict, "name", "the name %q was taken while secret %s was in the trash: restore it under another name (give \"name\")", next.Name, id)
	case i == claimAt:
		return nil, s.nameTaken(ctx, p, next.Name)
	case i >= 0:
		return nil, WrapError(Aborted, err, "the trashed secret changed concurrently")
	case err != nil:
		return nil, err
	}
	return &next, nil
}

// tombstoneDrops returns the deletes of the tombstones of t that still
// hold (the names nobody took since), except the one of name keep, each on
// the condition that it is still the tombstone read.
func (s *Service) tombstoneDrops(ctx context.Context, t *TrashedSecret, keep string) ([]kv.Op, error) {
	p, id := t.Secret.Project, t.Secret.ID
	var keys []kv.Key
	for _, n := range t.names {
		if n != keep {
			keys = append(keys, nameKey(p, n))
		}
	}
	items, err := s.getMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	var ops []kv.Op
	for _, k := range keys {
		it := items[k]
		if it == nil {
			continue
		}
		if _, a, err := s.nameFrom(it, p); err == nil && a != nil && a.AliasOf == id && !a.Trashed.IsZero() {
			ops = append(ops, kv.Delete(k, kv.IfRev(it.Rev)))
		}
	}
	return ops, nil
}

// PurgeTrash purges secret id from the trash at once: irreversible.
// NotFound if it is not in the trash. A purge already under way is
// finished.
func (s *Service) PurgeTrash(ctx context.Context, project, id string) error {
	t, err := s.trashed(ctx, project, id)
	if t == nil {
		return err
	}
	_, err = s.purge(ctx, t)
	return err
}

// purge marks t as purging, in the commit of its secret.purged event,
// unless it already is, then erases it. It reports whether this call
// marked it.
func (s *Service) purge(ctx context.Context, t *TrashedSecret) (bool, error) {
	marked := false
	for i := 0; !t.purging; i++ {
		now := s.Now()
		m := *t
		m.purging, m.rev, m.PurgeAt = true, t.rev+1, now
		// Its queue item moves to now: an erase that fails is finished by
		// the next Sweep.
		ops := []kv.Op{kv.Put(trashItem(&m), kv.IfRev(t.rev))}
		if !t.PurgeAt.Equal(now) {
			ops = append(ops, kv.Delete(purgeKey(t.PurgeAt, t.Secret.Project, t.Secret.ID), kv.Cond{}), kv.Put(purgeItem(&m), kv.Cond{}))
		}
		err := s.commit(ctx, nil, []*Event{secretEvent(EventSecretPurged, t.Secret)}, ops...)
		if conditionFailed(err) < 0 {
			if err != nil {
				return false, err
			}
			t, marked = &m, true
			break
		}
		// Restored, or marked by another purge, meanwhile: read it again.
		if i+1 >= s.tries {
			return false, Errorf(Unavailable, "too much contention purging secret %s; try again", t.Secret.ID)
		}
		it, err := s.get(ctx, trashKey(t.Secret.Project, t.Secret.ID))
		if err != nil {
			return false, err
		}
		if it == nil {
			return false, Errorf(NotFound, "secret %q not found in the trash of project %q", t.Secret.ID, t.Secret.Project)
		}
		if t, err = s.trashFrom(it, t.Secret.Project); err != nil {
			return false, err
		}
	}
	return marked, s.erase(ctx, t)
}

// erase removes every item of t, a secret being purged: its versions and
// their ciphertext, a commit at a time, then its tombstones that still
// hold, its trash record and its purge queue item. Running it twice, or
// on two processes at once, is harmless.
func (s *Service) erase(ctx context.Context, t *TrashedSecret) error {
	p, id := t.Secret.Project, t.Secret.ID
	if !t.purging {
		return fmt.Errorf("secrets: erase of a secret not marked as purging")
	}
	for {
		items, err := s.query(ctx, kv.Query{Partition: secretPart(p, id), Limit: kv.MaxOps})
		if err != nil {
			return err
		}
		if len(items) == 0 {
			break
		}
		ops := make([]kv.Op, len(items))
		for i, it := range items {
			ops[i] = kv.Erase(it.Key, kv.Cond{})
			s.ctc.remove(it.Key.String())
		}
		if err := s.commit(ctx, nil, nil, ops...); err != nil {
			return err
		}
	}
	for range 3 {
		ops, err := s.tombstoneDrops(ctx, t, "")
		if err != nil {
			return err
		}
		ops = append(ops, kv.Delete(trashKey(p, id), kv.IfRev(t.rev)), kv.Delete(purgeKey(t.PurgeAt, p, id), kv.Cond{}))
		err = s.commit(ctx, nil, nil, ops...)
		if i := conditionFailed(err); i < 0 {
			return err
		} else if i == len(ops)-2 {
			return nil // another purge finished it
		}
		// A name was taken meanwhile: read the tombstones again.
	}
	return Errorf(Unavailable, "too much contention finishing the purge of secret %s", id)
}
