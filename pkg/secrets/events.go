package secrets

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// The change feed. Every change to a project's secrets and API keys writes
// an event item in the same kv.Commit as the change itself, so a change
// never lands without its event, nor an event without its change. An event
// names what changed (the secret, version, digest, state or API key) and
// never holds a value.
//
// Events live in the partition E#<project>, sorted by their ID, a ULID
// taken right before the commit, and are kept EventRetention. A per-project
// counter would order them exactly, but would also make every write of a
// project contend on one item; instead the feed serves only settled events,
// those whose ID time is at least EventSettle old, and every commit that
// carries events runs with a deadline of EventSettle/2 from its ID time: a
// commit slower than that fails (nothing is written) rather than landing
// behind a reader's cursor. The other half of EventSettle covers a request
// still in flight in the store when its deadline passes. A reader that
// pages with after=<the last ID it saw> therefore sees every event once,
// in ID order, at most a few seconds late. The rule assumes the clocks of
// the processes that write and serve a project agree to well within that
// margin (NTP-synchronised hosts, Lambda); one process's IDs increase
// strictly, even within a millisecond.

// EventType names a kind of change.
type EventType string

// The event types. Each change writes exactly one event of its kind; an
// update that changes several things at once (a rename with new values)
// writes one event per thing changed, in one commit.
const (
	EventSecretCreated  EventType = "secret.created"        // a new secret with version 1 ENABLED
	EventSecretRotated  EventType = "secret.rotated"        // new values, a new ENABLED version
	EventVersionStaged  EventType = "version.staged"        // new values, a new PENDING version
	EventVersionPromote EventType = "version.promoted"      // a PENDING version became ENABLED
	EventSecretRenamed  EventType = "secret.renamed"        // a new name (Name is the new one)
	EventLabelsChanged  EventType = "secret.labels_changed" // labels replaced by others
	EventSecretUpdated  EventType = "secret.updated"        // description, settings, dates, an alias ended
	EventVersionEnabled EventType = "version.enabled"
	EventVersionDisable EventType = "version.disabled"
	EventVersionDestroy EventType = "version.destroyed"
	EventSecretDeleted  EventType = "secret.deleted"  // moved to the trash
	EventSecretRestored EventType = "secret.restored" // back from the trash (Name is the name it got)
	EventSecretPurged   EventType = "secret.purged"   // gone for good, from the trash or at once
	EventAPIKeyCreated  EventType = "api_key.created"
	EventAPIKeyRevoked  EventType = "api_key.revoked"
	EventExpiring       EventType = "secret.expiring"     // a reminder: expires_at is near
	EventRotationDue    EventType = "secret.rotation_due" // a reminder: rotate_by is near
)

// EventTypes lists every type, in a stable order.
var EventTypes = []EventType{
	EventSecretCreated, EventSecretRotated, EventVersionStaged, EventVersionPromote, EventSecretRenamed,
	EventLabelsChanged, EventSecretUpdated, EventVersionEnabled, EventVersionDisable, EventVersionDestroy,
	EventSecretDeleted, EventSecretRestored, EventSecretPurged, EventAPIKeyCreated, EventAPIKeyRevoked,
	EventExpiring, EventRotationDue,
}

// Timing of the feed.
const (
	// EventSettle is how old an event's ID time must be before the feed
	// serves it; a commit that carries events must finish within half of
	// it.
	EventSettle = 2 * time.Second
	// EventRetention is how long an event is kept (DynamoDB's time to live
	// deletes it after; the Sweep does on the embedded store).
	EventRetention = 30 * 24 * time.Hour
	// MaxEventWait bounds a long poll (WaitEvents).
	MaxEventWait = 30 * time.Second
	// EventPollInterval is how often a long poll reads the store while it
	// waits; it wakes earlier when this process commits an event of the
	// project.
	EventPollInterval = time.Second
)

// Event is one change. It never holds a value.
type Event struct {
	ID       string // "evt_" + a ULID; ID order is the feed's order
	Type     EventType
	Project  string
	SecretID string // "" for API key events
	Name     string // the secret's name as of the event
	Version  int    // the version the event is about, 0 if none
	SHA256   string // that version's digest
	State    State  // that version's state after the event
	// KeyID is the API key the event is about (api_key.*), or the one that
	// made the change, when it came through the API; "" for the service's
	// own changes (reminders, purges by the Sweep).
	KeyID string
	At    time.Time // the event's ID time
}

// IsEventID reports whether s has the form of an event ID.
func IsEventID(s string) bool { return hasULID(s, "evt_") }

type actorKey struct{}

// WithActor returns a context whose writes record keyID (an API key ID) as
// the key that made them, in their events.
func WithActor(ctx context.Context, keyID string) context.Context {
	return context.WithValue(ctx, actorKey{}, keyID)
}

func actorOf(ctx context.Context) string {
	id, _ := ctx.Value(actorKey{}).(string)
	return id
}

type eventRec struct {
	ID       string    `json:"id" cbor:"0,keyasint"`
	Type     EventType `json:"t" cbor:"1,keyasint"`
	Project  string    `json:"p" cbor:"2,keyasint"`
	SecretID string    `json:"s,omitempty" cbor:"3,keyasint,omitempty"`
	Name     string    `json:"n,omitempty" cbor:"4,keyasint,omitempty"`
	Version  int       `json:"v,omitempty" cbor:"5,keyasint,omitempty"`
	SHA256   digest    `json:"h,omitempty" cbor:"6,keyasint,omitzero"`
	State    State     `json:"st,omitempty" cbor:"7,keyasint,omitempty"`
	KeyID    string    `json:"k,omitempty" cbor:"8,keyasint,omitempty"`
	At       stamp     `json:"at" cbor:"9,keyasint"`
}

func eventItem(ev *Event) kv.Item {
	rec := &eventRec{ID: ev.ID, Type: ev.Type, Project: ev.Project, SecretID: ev.SecretID, Name: ev.Name,
		Version: ev.Version, SHA256: digest(ev.SHA256), State: ev.State, KeyID: ev.KeyID, At: at(ev.At)}
	return kv.Item{Key: eventKey(ev.Project, ev.ID), Value: encode(rec), Expires: ev.At.Add(EventRetention)}
}

func (s *Service) eventFrom(it *kv.Item, project string) (*Event, error) {
	var r eventRec
	if err := s.decode(it, &r); err != nil {
		return nil, err
	}
	if r.Project != project || it.Key != eventKey(project, r.ID) || !IsEventID(r.ID) {
		return nil, s.misplaced(it, "event")
	}
	return &Event{ID: r.ID, Type: r.Type, Project: r.Project, SecretID: r.SecretID, Name: r.Name,
		Version: r.Version, SHA256: string(r.SHA256), State: r.State, KeyID: r.KeyID, At: r.At.UTC()}, nil
}

// DecodeEventItem reads the event an item of the feed holds, for readers of
// the store's own change stream (a publisher of events to a bus): the
// record format stays the domain's. Invalid if it is not an event item, or
// is damaged.
func DecodeEventItem(it kv.Item) (*Event, error) {
	project, ok := strings.CutPrefix(it.Partition, "E#")
	var r eventRec
	if !ok || decodeRecord(it.Value, &r) != nil || r.Project != project || it.Key != eventKey(project, r.ID) || !IsEventID(r.ID) {
		return nil, Errorf(Invalid, "the item %s is not an event of the feed", Shorten(it.Key.String(), 200))
	}
	return &Event{ID: r.ID, Type: r.Type, Project: r.Project, SecretID: r.SecretID, Name: r.Name,
		Version: r.Version, SHA256: string(r.SHA256), State: r.State, KeyID: r.KeyID, At: r.At.UTC()}, nil
}

// secretEvent is an event of typ about sec as it now is.
func secretEvent(typ EventType, sec *Secret) *Event {
	return &Event{Type: typ, Project: sec.Project, SecretID: sec.ID, Name: sec.Name}
}

// versionEvent is an event of typ about version v of sec, as both now are.
func versionEvent(typ EventType, sec *Secret, v *Version) *Event {
	ev := secretEvent(typ, sec)
	ev.Version, ev.SHA256, ev.State = v.Number, v.SHA256, v.State
	return ev
}

// stampEvents gives evs their IDs, in their order, at the service's now,
// and the actor of ctx where an event names none. IDs this process takes
// increase strictly, even within one millisecond, so that the events of
// two commits made one after the other are in the feed in that order. It
// returns the ID time.
func (s *Service) stampEvents(ctx context.Context, evs []*Event) time.Time {
	now := s.Now()
	ids := make([]string, len(evs))
	for i := range ids {
		ids[i] = NewULID(now, s.rand)
	}
	slices.Sort(ids)
	s.feed.mu.Lock()
	for i := range ids {
		if ids[i] <= s.feed.last {
			ids[i] = ulidSucc(s.feed.last)
		}
		s.feed.last = ids[i]
		ids[i] = "evt_" + ids[i]
	}
	s.feed.mu.Unlock()
	actor := actorOf(ctx)
	for i, ev := range evs {
		ev.ID, ev.At = ids[i], now
		if ev.KeyID == "" && !strings.HasPrefix(string(ev.Type), "api_key.") {
			ev.KeyID = actor
		}
	}
	return now
}

// EventTime is the ID time of event id (the time of the ULID it ends
// with): the time the feed orders and settles it by.
func EventTime(id string) time.Time { return ulidTime(id) }

// ulidTime is the time of the ULID that ends id.
func ulidTime(id string) time.Time {
	if len(id) < 26 {
		return time.Time{}
	}
	var ms uint64
	for _, c := range []byte(id[len(id)-26 : len(id)-16]) {
		ms = ms<<5 | uint64(strings.IndexByte(crockford, c))
	}
	return time.UnixMilli(int64(ms)).UTC()
}

// EventPage is a page of the feed.
type EventPage struct {
	Events []*Event
	// Next is the cursor to read on from: the ID of the last event read
	// (or skipped as expired), or the cursor given when none was.
	Next string
	// More is true when the page stopped at its limit or at the bound of
	// one call's reading, with more settled events possibly after Next.
	More bool
}

// ListEvents returns the project's settled events after the event ID
// after ("" for the oldest kept), oldest first, at most limit (the default
// page size if zero or less). Invalid for a malformed cursor.
func (s *Service) ListEvents(ctx context.Context, project, after string, limit int) (*EventPage, error) {
	p, _, err := s.listEvents(ctx, project, after, limit)
	return p, err
}

// listEvents is ListEvents, and when the first unsettled event read (if
// any) settles.
func (s *Service) listEvents(ctx context.Context, project, after string, limit int) (*EventPage, time.Time, error) {
	if err := checkLimit(limit); err != nil {
		return nil, time.Time{}, err
	}
	if limit <= 0 {
		limit = DefaultPageSize
	}
	if after != "" && !IsEventID(after) {
		return nil, time.Time{}, FieldErrorf(Invalid, "after", "after must be an event ID (evt_…) from an earlier page")
	}
	page := &EventPage{Events: []*Event{}, Next: after}
	if !ValidProject(project) {
		return page, time.Time{}, nil
	}
	now := s.Now()
	settled := now.Add(-EventSettle)
	q := kv.Query{Partition: eventPart(project), After: after, Limit: min(limit+1, MaxListScan)}
	scanned := 0
	for {
		items, err := s.query(ctx, q)
		if err != nil {
			return nil, time.Time{}, err
		}
		for i := range items {
			it := &items[i]
			if t := ulidTime(it.Sort); t.After(settled) {
				return page, t.Add(EventSettle), nil
			}
			if len(page.Events) == limit {
				page.More = true
				return page, time.Time{}, nil
			}
			scanned++
			page.Next = it.Sort
			if it.ExpiredAt(now) {
				continue
			}
			ev, err := s.eventFrom(it, project)
			if err != nil {
				return nil, time.Time{}, err
			}
			page.Events = append(page.Events, ev)
		}
		if len(items) < q.Limit {
			return page, time.Time{}, nil
		}
		if scanned >= MaxListScan {
			page.More = true
			return page, time.Time{}, nil
		}
		q.After = items[len(items)-1].Sort
	}
}

// WaitEvents is ListEvents that, while no settled event follows after,
// waits for one, up to wait (at most MaxEventWait): it reads the store
// every EventPollInterval, and as soon as an event of the project that
// this process committed has settled. It returns an empty page when wait
// passes without one, and Unavailable when ctx ends first. It starts no
// goroutine: nothing of it outlives the call.
func (s *Service) WaitEvents(ctx context.Context, project, after string, limit int, wait time.Duration) (*EventPage, error) {
	if wait < 0 || wait > MaxEventWait {
		return nil, FieldErrorf(Invalid, "wait", "wait must be from 0 to %s", MaxEventWait)
	}
	if !ValidProject(project) {
		return s.ListEvents(ctx, project, after, limit)
	}
	deadline := time.Now().Add(wait)
	for {
		woken := s.feed.watch(project)
		page, settles, err := s.listEvents(ctx, project, after, limit)
		if err != nil || len(page.Events) > 0 || page.More {
			return page, err
		}
		after = page.Next
		left := time.Until(deadline)
		if left <= 0 {
			return page, nil
		}
		sleep := min(left, EventPollInterval)
		if !settles.IsZero() {
			sleep = min(sleep, max(settles.Sub(s.Now()), time.Millisecond))
		}
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, WrapError(Unavailable, ctx.Err(), "the request ended while it waited for events")
		case <-woken:
			t.Stop()
		case <-t.C:
		}
	}
}

// feed wakes the long polls of a project when this process commits one of
// its events. A waiter takes the project's channel before it reads the
// store; a commit closes it (waking every waiter at once) and the next
// waiter gets a fresh one. Nothing runs in the background.
type feed struct {
	mu   sync.Mutex
	ch   map[string]chan struct{}
	last string // the last event ULID this process took
}

// ulidSucc is the ULID after u (26 Crockford base32 characters). The
// random part of a ULID never runs out in one millisecond, so the time
// part never changes.
func ulidSucc(u string) string {
	b := []byte(u)
	for i := len(b) - 1; i >= 0; i-- {
		d := strings.IndexByte(crockford, b[i])
		if d < 31 {
			b[i] = crockford[d+1]
			return string(b)
		}
		b[i] = crockford[0]
	}
	return string(b)
}

func (f *feed) watch(project string) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ch == nil {
		f.ch = map[string]chan struct{}{}
	}
	c, ok := f.ch[project]
	if !ok {
		c = make(chan struct{})
		f.ch[project] = c
	}
	return c
}

func (f *feed) notify(project string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.ch[project]; ok {
		close(c)
		delete(f.ch, project)
	}
}
