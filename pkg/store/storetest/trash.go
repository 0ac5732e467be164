package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// revealAll returns what every selector reads of name: "version:value" or
// the problem.
func revealAll(t *testing.T, e *Env, svc *secrets.Service, name string) string {
	t.Helper()
	var out []string
	for _, sel := range []secrets.Selector{{}, selPending, selPrevious, selN(1), selN(2), selN(3), selN(4)} {
		r := revealOne(t, e, svc, name, sel)
		switch {
		case r == nil:
			out = append(out, "absent")
		case r.Version == nil:
			out = append(out, "-")
		default:
			out = append(out, fmt.Sprintf("%d:%s", r.Version.Number, r.Values["k"]))
		}
	}
	return strings.Join(out, " ")
}

// testTrashRestore: a delete frees the name and aliases at once and keeps
// everything; a restore brings back every version in its state, under
// another name if its own was taken meanwhile.
func testTrashRestore(t *testing.T, e *Env) {
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	svc := e.clocked(&now)
	grace := 24 * time.Hour
	s, err := svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "old-db", Description: "main", Values: map[string]string{"k": "v1"},
		PreviousGrace: &grace, Labels: map[string]string{"env": "prod"}, ExpiresAt: now.Add(60 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	to := "db"
	if _, err := svc.UpdateSecret(e.Ctx, e.Project, "old-db", secrets.UpdateSecretInput{Name: &to, Values: map[string]string{"k": "v2"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.ChangeVersionStateWith(e.Ctx, e.Project, "db", "1", secrets.ActionDestroy, secrets.ActionOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateSecret(e.Ctx, e.Project, "db", secrets.UpdateSecretInput{Values: map[string]string{"k": "v3"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateSecret(e.Ctx, e.Project, "db", secrets.UpdateSecretInput{Values: map[string]string{"k": "v4"}, Stage: secrets.Pending}); err != nil {
		t.Fatal(err)
	}
	e.audit(s.ID, "db")
	wantStates, wantReveal := e.states("db"), revealAll(t, e, svc, "db")
	if wantStates != "DEDIENPE" || wantReveal != "3:v3 4:v4 2:v2 - 2:v2 3:v3 4:v4" {
		t.Fatalf("before the delete: %s, %s", wantStates, wantReveal)
	}
	before, _ := svc.GetSecret(e.Ctx, e.Project, "db")
	items := len(e.partitionItems(secrets.VersionItemKey(e.Project, s.ID, 1).Partition))

	WantCode(t, "delete", svc.DeleteSecret(e.Ctx, e.Project, "db", nil), "")
	// References fail NotFound, saying where the secret went.
	for _, name := range []string{"db", "old-db"} {
		if r := revealOne(t, e, svc, name, secrets.Selector{}); r == nil || r.Version != nil || !strings.Contains(r.Problem, "trash") || r.Secret.ID != s.ID {
			t.Fatalf("a reference to %s after the delete: %+v", name, r)
		}
		_, err := svc.GetSecret(e.Ctx, e.Project, name)
		WantCode(t, "get "+name, err, secrets.NotFound)
	}
	if names := e.listNames(e.Project, secrets.ListQuery{}); len(names) != 0 {
		t.Fatalf("listed after the delete: %v", names)
	}
	if n := len(e.partitionItems(secrets.VersionItemKey(e.Project, s.ID, 1).Partition)); n != items {
		t.Fatalf("the trash keeps %d of the %d items of the versions", n, items)
	}
	trash, more, err := svc.ListTrash(e.Ctx, e.Project, "", 10)
	if err != nil || more || len(trash) != 1 || trash[0].Secret.ID != s.ID || trash[0].Secret.Name != "db" ||
		!trash[0].TrashedAt.Equal(now) || !trash[0].PurgeAt.Equal(now.Add(secrets.DefaultTrashRetention)) {
		t.Fatalf("the trash: %+v, %v", trash, err)
	}
	// The name and the alias are free at once.
	now = now.Add(time.Minute)
	taker, err := svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "db", Values: map[string]string{"k": "other"}})
	if err != nil {
		t.Fatalf("taking the name of a trashed secret: %v", err)
	}
	_, err = svc.RestoreSecret(e.Ctx, e.Project, s.ID, "")
	WantCode(t, "restore under a name taken meanwhile", err, secrets.Conflict)
	if secrets.ErrorField(err) != "name" || !strings.Contains(secrets.ErrorMessage(err), "another name") {
		t.Fatalf("the Conflict does not show the way out: %v", err)
	}
	_, err = svc.RestoreSecret(e.Ctx, e.Project, s.ID, "bad name")
	WantCode(t, "restore under an invalid name", err, secrets.Invalid)
	got, err := svc.RestoreSecret(e.Ctx, e.Project, s.ID, "db-back")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != s.ID || got.Name != "db-back" || got.Description != "main" || got.Labels["env"] != "prod" || !got.ExpiresAt.Equal(before.ExpiresAt) ||
		got.CurrentVersion != 3 || got.PendingVersion != 4 || got.PreviousVersion != 2 || got.Revision <= before.Revision || len(got.Aliases) != 0 {
		t.Fatalf("restored: %+v\nbefore: %+v", got, before)
	}
	if st, rv := e.states("db-back"), revealAll(t, e, svc, "db-back"); st != wantStates || rv != wantReveal {
		t.Fatalf("after the restore: %s, %s; want %s, %s", st, rv, wantStates, wantReveal)
	}
	// The alias did not come back, and its tombstone is gone.
	if r := revealOne(t, e, svc, "old-db", secrets.Selector{}); r != nil {
		t.Fatalf("the old alias after the restore: %+v", r)
	}
	if r := revealOne(t, e, svc, "db", secrets.Selector{}); r == nil || r.Secret.ID != taker.ID {
		t.Fatalf("the name's new holder after the restore: %+v", r)
	}
	if trash, _, _ := svc.ListTrash(e.Ctx, e.Project, "", 10); len(trash) != 0 {
		t.Fatalf("still in the trash: %+v", trash)
	}
	_, err = svc.RestoreSecret(e.Ctx, e.Project, s.ID, "")
	WantCode(t, "restore twice", err, secrets.NotFound)

	// Deleted again and purged: the ciphertext is erased, the audit stays.
	WantCode(t, "delete again", svc.DeleteSecret(e.Ctx, e.Project, "db-back", nil), "")
	WantCode(t, "purge", svc.PurgeTrash(e.Ctx, e.Project, s.ID), "")
	if left := e.partitionItems(secrets.VersionItemKey(e.Project, s.ID, 1).Partition); len(left) != 0 {
		t.Fatalf("%d items of the purged secret remain", len(left))
	}
	for _, k := range []kv.Key{secrets.TrashItemKey(e.Project, s.ID), secrets.NameItemKey(e.Project, "db-back")} {
		if items, _ := e.KV.Get(e.Ctx, k); len(items) != 0 {
			t.Fatalf("%s remains after the purge", k)
		}
	}
	if p, _ := e.KV.Query(e.Ctx, kv.Query{Partition: secrets.PurgePartition, Limit: 10}); len(p) != 0 {
		t.Fatalf("%d purge queue items remain", len(p))
	}
	if r := revealOne(t, e, svc, "db-back", secrets.Selector{}); r != nil {
		t.Fatalf("a purged secret's name: %+v", r)
	}
	_, err = svc.RestoreSecret(e.Ctx, e.Project, s.ID, "x")
	WantCode(t, "restore after the purge", err, secrets.NotFound)
	WantCode(t, "purge twice", svc.PurgeTrash(e.Ctx, e.Project, s.ID), secrets.NotFound)
	if audit, _, err := svc.ListResolutionsOf(e.Ctx, e.Project, s.ID, "", 10); err != nil || len(audit) != 1 {
		t.Fatalf("the audit after the purge: %d records, %v", len(audit), err)
	}
	WantCode(t, "purge in another project", svc.PurgeTrash(e.Ctx, "bravo", taker.ID), secrets.NotFound)
	WantCode(t, "purge of a malformed ID", svc.PurgeTrash(e.Ctx, e.Project, "db"), secrets.NotFound)
}

// testDeleteWithPurge: a delete that skips the trash erases at once.
func testDeleteWithPurge(t *testing.T, e *Env) {
	s := e.create(e.Project, "brief")
	e.rotate("brief", map[string]string{"k": "two"})
	stale := s.Revision
	WantCode(t, "purge with a stale If-Match", e.Svc.DeleteSecretWith(e.Ctx, e.Project, "brief", secrets.DeleteOptions{IfRevision: &stale, Purge: true}), secrets.PreconditionFailed)
	WantCode(t, "delete with purge", e.Svc.DeleteSecretWith(e.Ctx, e.Project, "brief", secrets.DeleteOptions{Purge: true}), "")
	if left := e.partitionItems(secrets.VersionItemKey(e.Project, s.ID, 1).Partition); len(left) != 0 {
		t.Fatalf("%d items of the purged secret remain", len(left))
	}
	if trash, _, _ := e.Svc.ListTrash(e.Ctx, e.Project, "", 10); len(trash) != 0 {
		t.Fatalf("a purged secret is in the trash: %+v", trash)
	}
	_, err := e.Svc.RestoreSecret(e.Ctx, e.Project, s.ID, "")
	WantCode(t, "restore a purged secret", err, secrets.NotFound)
	e.create(e.Project, "brief")
}

// sweepAll runs Sweep on every service at once.
func sweepAll(t *testing.T, ctx context.Context, at time.Time, svcs ...*secrets.Service) secrets.SweepReport {
	t.Helper()
	var mu sync.Mutex
	var total secrets.SweepReport
	errs := Parallel(len(svcs), func(i int) error {
		rep, err := svcs[i].Sweep(ctx, at)
		mu.Lock()
		total.Reminders += rep.Reminders
		total.Purged += rep.Purged
		total.Expired += rep.Expired
		mu.Unlock()
		return err
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return total
}

// testTrashRetention: the Sweep purges a trashed secret once its
// retention ends, exactly once with several sweepers; a restored one is
// left alone.
func testTrashRetention(t *testing.T, e *Env) {
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	opts := secrets.Options{Now: func() time.Time { return now }, Logger: quietLogger(), TrashRetention: time.Hour}
	a, b := secrets.NewService(e.KV, e.Keys, opts), secrets.NewService(e.KV, e.Keys, opts)
	var ids []string
	for i := range 5 {
		s, err := a.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: fmt.Sprintf("t%d", i), Values: map[string]string{"k": "v"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
		if err := a.DeleteSecret(e.Ctx, e.Project, s.ID, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.RestoreSecret(e.Ctx, e.Project, ids[4], ""); err != nil {
		t.Fatal(err)
	}
	feed := &feedReader{t: t, svc: a, project: e.Project}
	now = now.Add(secrets.EventSettle)
	feed.next()
	if rep := sweepAll(t, e.Ctx, now.Add(59*time.Minute), a, b); rep.Purged != 0 {
		t.Fatalf("purged before the retention ended: %+v", rep)
	}
	now = now.Add(time.Hour)
	rep := sweepAll(t, e.Ctx, now, a, b, a, b)
	if rep.Purged != 4 {
		t.Fatalf("%d purged by four sweepers, want 4", rep.Purged)
	}
	now = now.Add(secrets.EventSettle)
	if got := types(feed.next()); len(got) != 4 || got[0] != secrets.EventSecretPurged || got[3] != secrets.EventSecretPurged {
		t.Fatalf("events of the purges: %v", got)
	}
	for _, id := range ids[:4] {
		if left := e.partitionItems(secrets.VersionItemKey(e.Project, id, 1).Partition); len(left) != 0 {
			t.Fatalf("%d items of purged secret %s remain", len(left), id)
		}
	}
	if names := e.listNames(e.Project, secrets.ListQuery{}); len(names) != 1 || names[0] != "t4" {
		t.Fatalf("after the sweep: %v", names)
	}
	if rep := sweepAll(t, e.Ctx, now.Add(48*time.Hour), a, b); rep.Purged != 0 {
		t.Fatalf("a second sweep purged again: %+v", rep)
	}
}

// testRemindersOnce: reminders fire once per secret, 7 days and 1 day
// before each date, with several sweepers at once; a changed date drops
// the old reminders; a trashed secret reminds nothing.
func testRemindersOnce(t *testing.T, e *Env) {
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	// The secrets are made a minute before the first sweep: the clock
	// never goes back, so the feed's cursor never passes a later event.
	now := start.Add(-time.Minute)
	opts := secrets.Options{Now: func() time.Time { return now }, Logger: quietLogger()}
	a, b := secrets.NewService(e.KV, e.Keys, opts), secrets.NewService(e.KV, e.Keys, opts)
	day := 24 * time.Hour
	mk := func(name string, exp, rot time.Duration) *secrets.Secret {
		in := secrets.CreateSecretInput{Name: name, Values: map[string]string{"k": "v"}}
		if exp != 0 {
			in.ExpiresAt = start.Add(exp)
		}
		if rot != 0 {
			in.RotateBy = start.Add(rot)
		}
		s, err := a.CreateSecret(e.Ctx, e.Project, in)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var many []string
	for i := range 8 {
		many = append(many, mk(fmt.Sprintf("m%d", i), 3*day, 10*day).Name)
	}
	mk("soon", 12*time.Hour, 0)
	mk("moved", 20*day, 0)
	mk("binned", 5*day, 5*day)
	mk("none", 0, 0)
	later := start.Add(40 * day)
	if _, err := a.UpdateSecret(e.Ctx, e.Project, "moved", secrets.UpdateSecretInput{ExpiresAt: &later}); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteSecret(e.Ctx, e.Project, "binned", nil); err != nil {
		t.Fatal(err)
	}
	feed := &feedReader{t: t, svc: a, project: e.Project}
	now = now.Add(secrets.EventSettle)
	if evs := feed.next(); len(evs) != 14 {
		t.Fatalf("%d events of the writes, want 14: %v", len(evs), types(evs))
	}
	got := map[string][]string{}
	for h := time.Duration(0); h <= 45*day; h += 6 * time.Hour {
		at := start.Add(h)
		now = at
		sweepAll(t, e.Ctx, at, a, b, a)
		now = at.Add(secrets.EventSettle)
		for _, ev := range feed.next() {
			if ev.Type == secrets.EventExpiring || ev.Type == secrets.EventRotationDue {
				got[ev.Name] = append(got[ev.Name], fmt.Sprintf("%s@%s", ev.Type, at.Sub(start)))
			}
		}
	}
	want := map[string][]string{
		// 3 days ahead: the 7-day reminder at once, the 1-day one on day 2;
		// 10 days ahead: on days 3 and 9.
		"m": {"secret.expiring@0s", "secret.expiring@48h0m0s", "secret.rotation_due@72h0m0s", "secret.rotation_due@216h0m0s"},
		// 12 hours ahead: one reminder, at once.
		"soon": {"secret.expiring@0s"},
		// Moved from day 20 to day 40: days 33 and 39 only.
		"moved": {"secret.expiring@792h0m0s", "secret.expiring@936h0m0s"},
	}
	for _, n := range many {
		if fmt.Sprint(got[n]) != fmt.Sprint(want["m"]) {
			t.Errorf("reminders of %s:\n got  %v\n want %v", n, got[n], want["m"])
		}
	}
	for _, n := range []string{"soon", "moved", "binned", "none"} {
		if fmt.Sprint(got[n]) != fmt.Sprint(want[n]) {
			t.Errorf("reminders of %s:\n got  %v\n want %v", n, got[n], want[n])
		}
	}
	if q, _ := e.KV.Query(e.Ctx, kv.Query{Partition: secrets.ReminderPartition, Limit: 100}); len(q) != 0 {
		t.Fatalf("%d reminders left in the queue", len(q))
	}
}

// testSweepExpired: on a store that keeps expired items, the Sweep deletes
// expired events, audit records, grants and the records of added
// families, and keeps the rest; on one that deletes them itself, it
// leaves them to it.
func testSweepExpired(t *testing.T, e *Env) {
	then := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := then
	svc, by := e.minter(&now, 0)
	s, err := svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "old", Values: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RecordResolutions(e.Ctx, []*secrets.Resolution{{Project: e.Project, SecretID: s.ID, SecretName: "old", Version: 1, Keys: []string{"k"}}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.MintGrant(e.Ctx, e.Project, by, secrets.MintGrantInput{Secrets: []string{"old"}, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	extra := kv.Key{Partition: "I#" + e.Project, Sort: "x"}
	if err := e.KV.Commit(e.Ctx, kv.Put(kv.Item{Key: extra, Value: []byte("{}"), Rev: 7, Expires: then.Add(time.Hour)}, kv.Cond{})); err != nil {
		t.Fatal(err)
	}
	svc.SweepExpiredIn("I#")
	svc.SweepExpiredIn("I#")
	now = then.Add(secrets.AuditRetention + time.Hour)
	if _, err := svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "new", Values: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	count := func(partition, prefix string) int {
		items, err := e.KV.Query(e.Ctx, kv.Query{Partition: partition, Prefix: prefix, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(items)
	}
	evBefore := count(secrets.EventPartition(e.Project), "")
	var rep secrets.SweepReport
	for range 3 { // a pass may need more than one call
		r, err := svc.Sweep(e.Ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		rep.Expired += r.Expired
	}
	auditPart := func(id string) int {
		n := 0
		for shard := range 4 {
			n += count(fmt.Sprintf("A#%s#%s#%d", e.Project, id, shard), "R#")
		}
		return n
	}
	if _, ok := e.KV.(secrets.PartitionLister); !ok {
		if rep.Expired != 0 || count(secrets.EventPartition(e.Project), "") != evBefore || auditPart(s.ID) != 1 {
			t.Fatalf("a store that expires items itself: the sweep deleted %d", rep.Expired)
		}
		return
	}
	// Left: the new secret's event and the old key's, old secret's records
	// (not expiring), the key; gone: the old events, the audit record, the
	// grant, the extra record, the last use.
	if n := count(secrets.EventPartition(e.Project), ""); n != 1 {
		t.Fatalf("%d events left, want the fresh one", n)
	}
	if n := auditPart(s.ID); n != 0 {
		t.Fatalf("%d audit records past their retention left", n)
	}
	if n := count("P#"+e.Project, "G#"); n != 0 {
		t.Fatalf("%d expired grants left", n)
	}
	if n := count(extra.Partition, ""); n != 0 {
		t.Fatal("the added family's expired record is left")
	}
	if rep.Expired < 5 {
		t.Fatalf("the sweep reports %d deletions", rep.Expired)
	}
	for _, name := range []string{"old", "new"} {
		if _, err := svc.GetSecret(e.Ctx, e.Project, name); err != nil {
			t.Fatalf("%s after the sweep: %v", name, err)
		}
	}
}
