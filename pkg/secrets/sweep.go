package secrets

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// The Sweep does the service's work that is due by the clock rather than
// by a request: reminders of expiry and rotation dates, purges of trash
// whose retention ended, and, on a store that keeps expired items until
// someone deletes them (the embedded store; DynamoDB's time to live does it
// there), the deletion of expired items. Each piece of work is an item of
// a queue partition (layout.go) deleted in the very commit that does the
// work, on the condition that it still exists, so it is done exactly once
// however many processes sweep at the same time. One call does a bounded
// amount of work; call it every minute or so (`mobius serve` does; on AWS
// a scheduled function does).

// ReminderLeads are how long before a secret's expires_at (rotate_by) its
// secret.expiring (secret.rotation_due) reminders fire, longest first. A
// date set closer than a lead gets that reminder at once, unless a
// shorter lead has passed too: a date set 3 days ahead reminds at once and
// a day before; one set 12 hours ahead reminds once, at once.
var ReminderLeads = []time.Duration{7 * 24 * time.Hour, 24 * time.Hour}

// Bounds of one Sweep.
const (
	sweepReminderBatch = 100
	sweepPurgeBatch    = 10
	sweepExpiredBatch  = 1000 // items read per family of partitions
)

// Reminder kinds, as the queue's keys name them.
const (
	remindExpires = "expires"
	remindRotate  = "rotate"
)

type reminderRec struct {
	Project  string `json:"p" cbor:"0,keyasint"`
	SecretID string `json:"s" cbor:"1,keyasint"`
	Kind     string `json:"k" cbor:"2,keyasint"`
	Lead     int64  `json:"l" cbor:"3,keyasint"` // seconds
	Date     stamp  `json:"d" cbor:"4,keyasint"`
}

func (r *reminderRec) leadName() string {
	return strings.TrimSuffix(time.Duration(r.Lead*int64(time.Second)).String(), "0m0s")
}

func (r *reminderRec) key() kv.Key {
	lead := time.Duration(r.Lead) * time.Second
	return reminderKey(r.Date.Add(-lead), r.Project, r.SecretID, r.Kind+"-"+r.leadName())
}

func dateOf(sec *Secret, kind string) time.Time {
	if sec == nil {
		return time.Time{}
	}
	if kind == remindExpires {
		return sec.ExpiresAt
	}
	return sec.RotateBy
}

// reminderOps returns the writes that move the reminder queue from the
// dates of cur to those of next (either nil: a secret made, or gone): the
// reminders of a date that changed are deleted, and those of the new date
// written, each due its lead before the date. With immediate, a lead that
// has already passed is due at once (see ReminderLeads); without (a
// restore), it is dropped.
func reminderOps(cur, next *Secret, now time.Time, immediate bool) []kv.Op {
	var ops []kv.Op
	for _, kind := range []string{remindExpires, remindRotate} {
		old, nw := dateOf(cur, kind), dateOf(next, kind)
		if cur != nil && next != nil && old.Equal(nw) {
			continue
		}
		if !old.IsZero() {
			for _, lead := range ReminderLeads {
				r := reminderRec{Project: cur.Project, SecretID: cur.ID, Kind: kind, Lead: int64(lead / time.Second), Date: at(old)}
				ops = append(ops, kv.Delete(r.key(), kv.Cond{}))
			}
		}
		if nw.IsZero() || !nw.After(now) {
			continue
		}
		for i, lead := range ReminderLeads {
			passed := !nw.Add(-lead).After(now)
			if passed && (!immediate || i+1 < len(ReminderLeads) && !nw.Add(-ReminderLeads[i+1]).After(now)) {
				continue
			}
			r := &reminderRec{Project: next.Project, SecretID: next.ID, Kind: kind, Lead: int64(lead / time.Second), Date: at(nw)}
			ops = append(ops, kv.Put(kv.Item{Key: r.key(), Value: encode(r)}, kv.Cond{}))
		}
	}
	return ops
}

// SweepReport counts what one Sweep did.
type SweepReport struct {
	Reminders int // reminder events emitted
	Purged    int // trashed secrets purged
	Expired   int // expired items deleted
}

// Sweep does the work due at now: it emits the reminders due, purges the
// trash whose retention ended, and deletes expired items (on drivers that
// implement PartitionLister), each in a bounded batch. It is safe to run
// on many processes at once: each reminder fires once, each purge emits
// one event. An error stops only the part it met; the others still run.
func (s *Service) Sweep(ctx context.Context, now time.Time) (SweepReport, error) {
	var rep SweepReport
	var errs []error
	var err error
	if rep.Reminders, err = s.sweepReminders(ctx, now); err != nil {
		errs = append(errs, err)
	}
	if rep.Purged, err = s.sweepPurges(ctx, now); err != nil {
		errs = append(errs, err)
	}
	if rep.Expired, err = s.sweepExpired(ctx, now); err != nil {
		errs = append(errs, err)
	}
	return rep, errors.Join(errs...)
}

// due reports whether a queue item's sort key is due at now.
func due(sort string, now time.Time) bool {
	d := dueSort(now)
	return len(sort) >= len(d) && sort[:len(d)] <= d
}

func (s *Service) sweepReminders(ctx context.Context, now time.Time) (int, error) {
	items, err := s.query(ctx, kv.Query{Partition: reminderPartition, Limit: sweepReminderBatch})
	if err != nil {
		return 0, err
	}
	fired := 0
	for i := range items {
		it := &items[i]
		if !due(it.Sort, now) {
			break
		}
		ok, err := s.fireReminder(ctx, it, now)
		if err != nil {
			return fired, err
		}
		if ok {
			fired++
		}
	}
	return fired, nil
}

// fireReminder emits the reminder of queue item it and deletes the item,
// in one commit, conditional on the item still being there (another
// sweeper may have fired it) and the secret not having changed since it
// was read. A reminder whose secret is gone, or whose date changed or has
// passed, is dropped without an event.
func (s *Service) fireReminder(ctx context.Context, it *kv.Item, now time.Time) (bool, error) {
	var r reminderRec
	drop := func() (bool, error) {
		err := s.commit(ctx, nil, nil, kv.Delete(it.Key, kv.IfRev(it.Rev)))
		if conditionFailed(err) >= 0 {
			err = nil
		}
		return false, err
	}
	if s.decode(it, &r) != nil || r.key() != it.Key {
		s.log.Error("a reminder queue item is damaged or misplaced; dropping it", "sort", it.Sort)
		return drop()
	}
	for range 3 {
		sit, err := s.get(ctx, secretKey(r.Project, r.SecretID))
		if err != nil {
			return false, err
		}
		if sit == nil {
			return drop()
		}
		sec, err := s.secretFrom(sit, r.Project)
		if err != nil {
			return false, err
		}
		if date := dateOf(sec, r.Kind); !date.Equal(r.Date.Time) || !date.After(now) {
			return drop()
		}
		typ := EventExpiring
		if r.Kind == remindRotate {
			typ = EventRotationDue
		}
		err = s.commit(ctx, nil, []*Event{secretEvent(typ, sec)},
			kv.Delete(it.Key, kv.IfExists()),
			kv.Check(secretKey(r.Project, r.SecretID), kv.IfRev(sec.Revision)),
		)
		switch conditionFailed(err) {
		case -1:
			return err == nil, err
		case 0:
			return false, nil // another sweeper fired it
		}
		// The secret changed since it was read: read it again.
	}
	return false, Errorf(Unavailable, "too much contention firing a reminder of secret %s", r.SecretID)
}

func (s *Service) sweepPurges(ctx context.Context, now time.Time) (int, error) {
	items, err := s.query(ctx, kv.Query{Partition: purgePartition, Limit: sweepPurgeBatch})
	if err != nil {
		return 0, err
	}
	purged := 0
	for i := range items {
		it := &items[i]
		if !due(it.Sort, now) {
			break
		}
		var r purgeRec
		if s.decode(it, &r) != nil || !ValidProject(r.Project) || !IsSecretID(r.SecretID) {
			s.log.Error("a purge queue item is damaged; dropping it", "sort", it.Sort)
			if err := s.commit(ctx, nil, nil, kv.Delete(it.Key, kv.IfRev(it.Rev))); err != nil && conditionFailed(err) < 0 {
				return purged, err
			}
			continue
		}
		tit, err := s.get(ctx, trashKey(r.Project, r.SecretID))
		if err != nil {
			return purged, err
		}
		var t *TrashedSecret
		if tit != nil {
			if t, err = s.trashFrom(tit, r.Project); err != nil {
				return purged, err
			}
		}
		if t == nil || purgeKey(t.PurgeAt, r.Project, r.SecretID) != it.Key {
			// Restored, or purged, since the item was queued.
			if err := s.commit(ctx, nil, nil, kv.Delete(it.Key, kv.IfRev(it.Rev))); err != nil && conditionFailed(err) < 0 {
				return purged, err
			}
			continue
		}
		marked, err := s.purge(ctx, t)
		if marked {
			purged++
		}
		if err != nil && ErrorCode(err) != NotFound { // NotFound: restored meanwhile
			return purged, err
		}
	}
	return purged, nil
}

// PartitionLister is implemented by drivers that keep expired items until
// someone deletes them (the embedded store), so that the Sweep can find
// them. Drivers that delete expired items themselves (DynamoDB's time to
// live) need not implement it.
type PartitionLister interface {
	// Partitions returns up to limit names of partitions that hold items
	// and start with prefix, in byte order, after the name after.
	Partitions(ctx context.Context, prefix, after string, limit int) ([]string, error)
}

// The families of partitions whose expired items the Sweep deletes: the
// feed, the audit (with last use) and the resolve grants.
var expiringFamilies = []family{{"E#", ""}, {"A#", ""}, {"P#", "G#"}}

type family struct{ partPrefix, sortPrefix string }

// sweeper is the Sweep's state on this process: where its pass over each
// family of partitions stands, and the families adapters added.
type sweeper struct {
	mu     sync.Mutex
	extra  []family
	cursor map[family]sweepCursor
}

type sweepCursor struct {
	done  string // partitions up to this one are done, in this pass
	part  string // the partition under way, "" for none
	after string // its sort keys up to this one are done
}

// SweepExpiredIn makes the Sweep delete, as it does its own, the expired
// items of every partition whose name starts with prefix: for records an
// adapter keeps beside the domain's (the HTTP layer's Idempotency-Key
// records). Adding a prefix twice adds it once.
func (s *Service) SweepExpiredIn(prefix string) {
	s.sweep.mu.Lock()
	defer s.sweep.mu.Unlock()
	f := family{partPrefix: prefix}
	for _, e := range s.sweep.extra {
		if e == f {
			return
		}
	}
	s.sweep.extra = append(s.sweep.extra, f)
}

func (s *Service) sweepExpired(ctx context.Context, now time.Time) (int, error) {
	lister, ok := s.kv.(PartitionLister)
	if !ok {
		return 0, nil
	}
	s.sweep.mu.Lock()
	fams := append(append([]family(nil), expiringFamilies...), s.sweep.extra...)
	s.sweep.mu.Unlock()
	total := 0
	for _, f := range fams {
		n, err := s.sweepFamily(ctx, lister, f, now)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// sweepFamily reads at most sweepExpiredBatch items of f, from where the
// last call stopped, and deletes those expired at now.
func (s *Service) sweepFamily(ctx context.Context, lister PartitionLister, f family, now time.Time) (int, error) {
	s.sweep.mu.Lock()
	c := s.sweep.cursor[f]
	s.sweep.mu.Unlock()
	defer func() {
		s.sweep.mu.Lock()
		if s.sweep.cursor == nil {
			s.sweep.cursor = map[family]sweepCursor{}
		}
		s.sweep.cursor[f] = c
		s.sweep.mu.Unlock()
	}()
	read, deleted := 0, 0
	for read < sweepExpiredBatch {
		if c.part == "" {
			parts, err := lister.Partitions(ctx, f.partPrefix, c.done, 1)
			if err != nil {
				return deleted, storeError(ctx, err)
			}
			if len(parts) == 0 {
				c = sweepCursor{} // the pass is over; the next call starts another
				return deleted, nil
			}
			c.part, c.after = parts[0], ""
			if f.partPrefix == "P#" && strings.Count(c.part, "#") > 1 {
				// A secret's versions, which hold nothing that expires.
				c.done, c.part = c.part[:2+strings.IndexByte(c.part[2:], '#')]+"#\U0010FFFF", ""
				continue
			}
		}
		q := kv.Query{Partition: c.part, Prefix: f.sortPrefix, After: c.after, Limit: min(kv.MaxOps, sweepExpiredBatch-read)}
		items, err := s.query(ctx, q)
		if err != nil {
			return deleted, err
		}
		read += len(items)
		var expired []kv.Item
		for _, it := range items {
			if it.ExpiredAt(now) {
				expired = append(expired, it)
			}
		}
		n, err := s.deleteExpired(ctx, expired)
		deleted += n
		if err != nil {
			return deleted, err
		}
		if len(items) < q.Limit {
			c.done, c.part = c.part, ""
			if f.partPrefix == "P#" {
				// A project's partition is followed by those of its
				// secrets' versions, which hold nothing that expires.
				c.done += "#\U0010FFFF"
			}
			continue
		}
		c.after = items[len(items)-1].Sort
	}
	return deleted, nil
}

// deleteExpired deletes items, each on the condition that it is still the
// item that was read (its Rev); one that was written again since is left.
func (s *Service) deleteExpired(ctx context.Context, items []kv.Item) (int, error) {
	ops := make([]kv.Op, 0, len(items))
	for _, it := range items {
		ops = append(ops, kv.Delete(it.Key, kv.IfRev(it.Rev)))
	}
	for len(ops) > 0 {
		err := s.commit(ctx, nil, nil, ops...)
		i := conditionFailed(err)
		if i < 0 {
			if err != nil {
				return 0, err
			}
			return len(ops), nil
		}
		ops = append(ops[:i], ops[i+1:]...)
	}
	return 0, nil
}
