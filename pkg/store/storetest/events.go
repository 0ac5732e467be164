package storetest

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/internal/faults"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// feedReader reads a project's feed from a cursor on.
type feedReader struct {
	t       *testing.T
	svc     *secrets.Service
	project string
	after   string
}

// next returns every settled event after the cursor, and moves it on.
func (f *feedReader) next() []*secrets.Event {
	f.t.Helper()
	var out []*secrets.Event
	for {
		p, err := f.svc.ListEvents(context.Background(), f.project, f.after, 7)
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, p.Events...)
		f.after = p.Next
		if !p.More {
			return out
		}
	}
}

func types(evs []*secrets.Event) []secrets.EventType {
	out := []secrets.EventType{}
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return out
}

// testEventPerChange: every write produces exactly the events of its
// table row, in one commit with it, and a write that fails produces none.
func testEventPerChange(t *testing.T, e *Env) {
	now := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	svc := e.clocked(&now)
	ctx := secrets.WithActor(e.Ctx, "key_01J00000000000000000000ACT")
	str := func(s string) *string { return &s }
	var id, keyID string
	vals := func(v string) map[string]string { return map[string]string{"k": v} }
	type row struct {
		what string
		do   func() error
		want []secrets.EventType
	}
	rows := []row{
		{"create", func() error {
			s, err := svc.CreateSecret(ctx, e.Project, secrets.CreateSecretInput{Name: "ev", Values: vals("v1")})
			if s != nil {
				id = s.ID
			}
			return err
		}, []secrets.EventType{secrets.EventSecretCreated}},
		{"create a taken name", func() error {
			_, err := svc.CreateSecret(ctx, e.Project, secrets.CreateSecretInput{Name: "ev", Values: vals("x")})
			return wantErr(err, secrets.Conflict)
		}, nil},
		{"rotate", func() error {
			_, err := svc.UpdateSecret(ctx, e.Project, "ev", secrets.UpdateSecretInput{Values: vals("v2")})
			return err
		}, []secrets.EventType{secrets.EventSecretRotated}},
		{"stage", func() error {
			_, err := svc.UpdateSecret(ctx, e.Project, "ev", secrets.UpdateSecretInput{Values: vals("v3"), Stage: secrets.Pending})
			return err
		}, []secrets.EventType{secrets.EventVersionStaged}},
		{"promote", func() error {
			_, _, err := svc.ChangeVersionState(ctx, e.Project, "ev", "3", secrets.ActionPromote, nil)
			return err
		}, []secrets.EventType{secrets.EventVersionPromote}},
		{"rename", func() error {
			_, err := svc.UpdateSecret(ctx, e.Project, "ev", secrets.UpdateSecretInput{Name: str("ev2")})
			return err
		}, []secrets.EventType{secrets.EventSecretRenamed}},
		{"labels", func() error {
			_, err := svc.UpdateSecret(ctx, e.Project, "ev2", secrets.UpdateSecretInput{Labels: map[string]string{"env": "prod"}})
			return err
		}, []secrets.EventType{secrets.EventLabelsChanged}},
		{"description", func() error {
			_, err := svc.UpdateSecret(ctx, e.Project, "ev2", secrets.UpdateSecretInput{Description: str("d")})
			return err
		}, []secrets.EventType{secrets.EventSecretUpdated}},
		{"dates", func() error {
			at := now.Add(90 * 24 * time.Hour)
			_, err := svc.UpdateSecret(ctx, e.Project, "ev2", secrets.UpdateSecretInput{ExpiresAt: &at, RotateBy: &at})
			return err
		}, []secrets.EventType{secrets.EventSecretUpdated}},
		{"the same description and labels again", func() error {
			_, err := svc.UpdateSecret(ctx, e.Project, "ev2", secrets.UpdateSecretInput{Description: str("d"), Labels: map[string]string{"env": "prod"}})
			return err
		}, []secrets.EventType{secrets.EventSecretUpdated}},
		{"rename, relabel, describe and rotate at once", func() error {
			_, err := svc.UpdateSecret(ctx, e.Project, "ev2", secrets.UpdateSecretInput{Name: str("ev3"), Labels: map[string]string{"env": "dev"}, Description: str("e"), Values: vals("v4")})
			return err
		}, []secrets.EventType{secrets.EventSecretRenamed, secrets.EventLabelsChanged, secrets.EventSecretUpdated, secrets.EventSecretRotated}},
		{"disable", func() error {
			_, _, err := svc.ChangeVersionStateWith(ctx, e.Project, "ev3", "current", secrets.ActionDisable, secrets.ActionOptions{})
			return err
		}, []secrets.EventType{secrets.EventVersionDisable}},
		{"disable again (a no-op)", func() error {
			_, _, err := svc.ChangeVersionState(ctx, e.Project, "ev3", "4", secrets.ActionDisable, nil)
			return err
		}, nil},
		{"enable", func() error {
			_, _, err := svc.ChangeVersionState(ctx, e.Project, "ev3", "1", secrets.ActionEnable, nil)
			return err
		}, []secrets.EventType{secrets.EventVersionEnabled}},
		{"destroy", func() error {
			_, _, err := svc.ChangeVersionState(ctx, e.Project, "ev3", "2", secrets.ActionDestroy, nil)
			return err
		}, []secrets.EventType{secrets.EventVersionDestroy}},
		{"enable a destroyed version", func() error {
			_, _, err := svc.ChangeVersionState(ctx, e.Project, "ev3", "2", secrets.ActionEnable, nil)
			return wantErr(err, secrets.Conflict)
		}, nil},
		{"end an alias", func() error {
			_, err := svc.DeleteAlias(ctx, e.Project, "ev3", "ev2")
			return err
		}, []secrets.EventType{secrets.EventSecretUpdated}},
		{"a stale If-Match", func() error {
			stale := int64(1)
			_, err := svc.UpdateSecret(ctx, e.Project, "ev3", secrets.UpdateSecretInput{Description: str("x"), IfRevision: &stale})
			return wantErr(err, secrets.PreconditionFailed)
		}, nil},
		{"delete", func() error { return svc.DeleteSecret(ctx, e.Project, "ev3", nil) }, []secrets.EventType{secrets.EventSecretDeleted}},
		{"restore", func() error {
			_, err := svc.RestoreSecret(ctx, e.Project, id, "")
			return err
		}, []secrets.EventType{secrets.EventSecretRestored}},
		{"delete again", func() error { return svc.DeleteSecret(ctx, e.Project, id, nil) }, []secrets.EventType{secrets.EventSecretDeleted}},
		{"purge from the trash", func() error { return svc.PurgeTrash(ctx, e.Project, id) }, []secrets.EventType{secrets.EventSecretPurged}},
		{"purge it again", func() error { return wantErr(svc.PurgeTrash(ctx, e.Project, id), secrets.NotFound) }, nil},
		{"delete with purge", func() error {
			if _, err := svc.CreateSecret(ctx, e.Project, secrets.CreateSecretInput{Name: "brief", Values: vals("v")}); err != nil {
				return err
			}
			return svc.DeleteSecretWith(ctx, e.Project, "brief", secrets.DeleteOptions{Purge: true})
		}, []secrets.EventType{secrets.EventSecretCreated, secrets.EventSecretPurged}},
		{"create an API key", func() error {
			k, _, err := svc.CreateAPIKey(ctx, e.Project, "ci", nil)
			if k != nil {
				keyID = k.ID
			}
			return err
		}, []secrets.EventType{secrets.EventAPIKeyCreated}},
		{"an API key of another project", func() error {
			_, _, err := svc.CreateAPIKey(e.Ctx, "elsewhere", "other project", nil)
			return err
		}, nil},
		{"revoke the API key", func() error { return svc.RevokeAPIKey(ctx, e.Project, keyID) }, []secrets.EventType{secrets.EventAPIKeyRevoked}},
		{"record resolutions (no change)", func() error {
			return svc.RecordResolutions(ctx, []*secrets.Resolution{{Project: e.Project, SecretID: id, SecretName: "ev3", Version: 1, Keys: []string{"k"}}})
		}, nil},
	}
	feed := &feedReader{t: t, svc: svc, project: e.Project}
	for _, r := range rows {
		if err := r.do(); err != nil {
			t.Fatalf("%s: %v", r.what, err)
		}
		if got := feed.next(); len(got) != 0 {
			t.Fatalf("%s: %d events served before they settled: %v", r.what, len(got), types(got))
		}
		now = now.Add(secrets.EventSettle)
		got := feed.next()
		if !slices.Equal(types(got), append([]secrets.EventType{}, r.want...)) {
			t.Fatalf("%s: events %v, want %v", r.what, types(got), r.want)
		}
		for _, ev := range got {
			if ev.Project != e.Project || !secrets.IsEventID(ev.ID) || !ev.At.Equal(now.Add(-secrets.EventSettle)) {
				t.Fatalf("%s: event %+v", r.what, ev)
			}
			switch {
			case strings.HasPrefix(string(ev.Type), "api_key."):
				if ev.KeyID != keyID || ev.SecretID != "" {
					t.Fatalf("%s: API key event %+v", r.what, ev)
				}
			case ev.SecretID == "" || ev.Name == "" || ev.KeyID != "key_01J00000000000000000000ACT":
				t.Fatalf("%s: secret event %+v", r.what, ev)
			}
		}
		now = now.Add(time.Second)
	}
	// The version events name their version as it now is.
	all, err := svc.ListEvents(e.Ctx, e.Project, "", secrets.MaxPageSize)
	if err != nil {
		t.Fatal(err)
	}
	want := map[secrets.EventType]string{
		secrets.EventSecretCreated: "1 ENABLED", secrets.EventSecretRotated: "2 ENABLED", secrets.EventVersionStaged: "3 PENDING",
		secrets.EventVersionPromote: "3 ENABLED", secrets.EventVersionDisable: "4 DISABLED", secrets.EventVersionEnabled: "1 ENABLED",
		secrets.EventVersionDestroy: "2 DESTROYED",
	}
	for _, ev := range all.Events {
		if w, ok := want[ev.Type]; ok && ev.Name != "brief" {
			if got := fmt.Sprintf("%d %s", ev.Version, ev.State); got != w || len(ev.SHA256) != 64 {
				t.Errorf("%s: version %s (sha256 %q), want %s", ev.Type, got, ev.SHA256, w)
			}
			delete(want, ev.Type)
		}
		if ev.Type == secrets.EventSecretRenamed && ev.Name != "ev2" && ev.Name != "ev3" {
			t.Errorf("renamed: name %q, want the new name", ev.Name)
		}
	}
	if len(want) != 0 {
		t.Errorf("no events of %v", want)
	}
	// Each item decodes, outside the service, to the event the feed serves.
	byID := map[string]*secrets.Event{}
	for _, ev := range all.Events {
		byID[ev.ID] = ev
	}
	// No event holds a value: the values written are nowhere in the feed.
	for _, it := range e.partitionItems(secrets.EventPartition(e.Project)) {
		ev, err := secrets.DecodeEventItem(it)
		if err != nil {
			t.Fatalf("decoding %s: %v", it.Key, err)
		}
		WantEqual(t, "the decoded item "+it.Sort, ev, byID[ev.ID])
		moved := it
		moved.Partition = secrets.EventPartition("bravo")
		if _, err := secrets.DecodeEventItem(moved); secrets.ErrorCode(err) != secrets.Invalid {
			t.Fatalf("an event item in another project's feed decodes: %v", err)
		}
		for _, v := range []string{"v1", "v2", "v3", "v4"} {
			if bytes.Contains(it.Value, []byte(`"`+v+`"`)) {
				t.Fatalf("event item %s holds a value", it.Sort)
			}
		}
		if !it.Expires.Equal(secrets.EventTime(it.Sort).Add(secrets.EventRetention)) {
			t.Fatalf("event %s expires at %v", it.Sort, it.Expires)
		}
	}
}

func wantErr(err error, code secrets.Code) error {
	if secrets.ErrorCode(err) != code {
		return fmt.Errorf("error %v, want code %s", err, code)
	}
	return nil
}

// testEventPaging: the feed pages in ID order from any cursor, serves
// only settled events, refuses a malformed cursor, and is per project.
func testEventPaging(t *testing.T, e *Env) {
	now := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	svc := e.clocked(&now)
	for i := range 12 {
		if _, err := svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: fmt.Sprintf("p%02d", i), Values: map[string]string{"k": "v"}}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Millisecond)
	}
	if _, err := svc.CreateSecret(e.Ctx, "bravo", secrets.CreateSecretInput{Name: "other", Values: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(secrets.EventSettle)
	var names []string
	after := ""
	for pages := 0; ; pages++ {
		p, err := svc.ListEvents(e.Ctx, e.Project, after, 5)
		if err != nil || pages > 5 {
			t.Fatalf("page %d: %v", pages, err)
		}
		for _, ev := range p.Events {
			names = append(names, ev.Name)
			if ev.ID <= after {
				t.Fatalf("event %s after cursor %s", ev.ID, after)
			}
		}
		after = p.Next
		if !p.More {
			break
		}
	}
	want := []string{"p00", "p01", "p02", "p03", "p04", "p05", "p06", "p07", "p08", "p09", "p10", "p11"}
	wantNames(t, "the feed in order", names, want)
	// One more event: not served until it settles, then served after the
	// last cursor.
	if _, err := svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "late", Values: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if p, _ := svc.ListEvents(e.Ctx, e.Project, after, 5); len(p.Events) != 0 || p.Next != after {
		t.Fatalf("an unsettled event was served: %+v", p)
	}
	now = now.Add(secrets.EventSettle - time.Millisecond)
	if p, _ := svc.ListEvents(e.Ctx, e.Project, after, 5); len(p.Events) != 0 {
		t.Fatal("an event was served before EventSettle passed")
	}
	now = now.Add(time.Millisecond)
	if p, _ := svc.ListEvents(e.Ctx, e.Project, after, 5); len(p.Events) != 1 || p.Events[0].Name != "late" {
		t.Fatalf("after it settled: %+v", p)
	}
	other, _ := svc.ListEvents(e.Ctx, "bravo", "", 100)
	if len(other.Events) != 1 || other.Events[0].Name != "other" {
		t.Fatalf("another project's feed: %+v", other)
	}
	for _, bad := range []string{"x", "evt_", "sec_01J0000000000000000000000A", "evt_01J0000000000000000000000A "} {
		_, err := svc.ListEvents(e.Ctx, e.Project, bad, 5)
		WantCode(t, "cursor "+bad, err, secrets.Invalid)
	}
	// Past its retention, an event is not served, and the cursor moves on.
	now = now.Add(secrets.EventRetention)
	if p, _ := svc.ListEvents(e.Ctx, e.Project, "", 100); len(p.Events) != 0 || p.Next == "" {
		t.Fatalf("events past their retention: %+v", p)
	}
}

// testEventCommitDeadline: a commit that carries events and is slower than
// EventSettle/2 fails, and writes nothing: it can never land behind a
// reader's cursor.
func testEventCommitDeadline(t *testing.T, e *Env) {
	in := &faults.Injector{}
	fd := &faults.Driver{Inner: e.KV, In: in}
	svc := secrets.NewService(fd, e.Keys, secrets.Options{Logger: quietLogger()})
	in.Set(faults.Rule{Op: "Commit", Delay: secrets.EventSettle/2 + 100*time.Millisecond})
	_, err := svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "slow", Values: map[string]string{"k": "v"}})
	WantCode(t, "a slow commit", err, secrets.Unavailable)
	in.Set()
	if names := e.listNames(e.Project, secrets.ListQuery{}); len(names) != 0 {
		t.Fatalf("a failed commit wrote %v", names)
	}
	if left := e.partitionItems(secrets.EventPartition(e.Project)); len(left) != 0 {
		t.Fatalf("a failed commit wrote %d events", len(left))
	}
}

// testEventWait: a long poll returns as soon as an event of this process
// settles, returns an empty page when its wait passes, and ends with its
// context, leaving no goroutine behind.
func testEventWait(t *testing.T, e *Env) {
	done := make(chan *secrets.EventPage, 1)
	go func() {
		p, err := e.Svc.WaitEvents(e.Ctx, e.Project, "", 10, secrets.MaxEventWait)
		if err != nil {
			t.Error(err)
		}
		done <- p
	}()
	e.create(e.Project, "woken")
	p := <-done
	if p == nil || len(p.Events) != 1 || p.Events[0].Name != "woken" {
		t.Fatalf("the long poll returned %+v", p)
	}
	// A wait that passes with nothing new is an empty page at the cursor.
	cursor := p.Next
	p, err := e.Svc.WaitEvents(e.Ctx, e.Project, cursor, 10, 10*time.Millisecond)
	if err != nil || len(p.Events) != 0 || p.Next != cursor {
		t.Fatalf("an idle wait: %+v, %v", p, err)
	}
	_, err = e.Svc.WaitEvents(e.Ctx, e.Project, "", 10, secrets.MaxEventWait+time.Second)
	WantCode(t, "a wait over the maximum", err, secrets.Invalid)

	// A cancelled long poll returns, and every goroutine it touched is gone.
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(e.Ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := e.Svc.WaitEvents(ctx, e.Project, p.Next, 10, secrets.MaxEventWait)
		errc <- err
	}()
	cancel()
	WantCode(t, "a cancelled long poll", <-errc, secrets.Unavailable)
	waitGoroutines(t, base)
}

// waitGoroutines fails the test unless the goroutine count comes back to
// at most base (goroutines that ended may take a moment to be counted out).
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	for i := 0; ; i++ {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if i == 200 {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testEventsUnderConcurrency: concurrent writes that each succeed each
// write their events once; of concurrent creates of one name, only the
// one that wins writes an event.
func testEventsUnderConcurrency(t *testing.T, e *Env) {
	now := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	svc := e.clocked(&now)
	if _, err := svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "hot", Values: map[string]string{"k": "v0"}}); err != nil {
		t.Fatal(err)
	}
	const n = 12
	rot := Parallel(n, func(i int) error {
		_, err := svc.UpdateSecret(e.Ctx, e.Project, "hot", secrets.UpdateSecretInput{Values: map[string]string{"k": fmt.Sprint("v", i+1)}})
		return err
	})
	created := Parallel(n, func(i int) error {
		_, err := svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "race", Values: map[string]string{"k": "v"}})
		return err
	})
	ok := 0
	for i := range n {
		WantCode(t, "a concurrent rotation", rot[i], "")
		if created[i] == nil {
			ok++
		} else {
			WantCode(t, "a losing create", created[i], secrets.Conflict)
		}
	}
	now = now.Add(secrets.EventSettle)
	feed := &feedReader{t: t, svc: svc, project: e.Project}
	count := map[string]int{}
	versions := map[int]bool{}
	for _, ev := range feed.next() {
		count[ev.Name+" "+string(ev.Type)]++
		if ev.Type == secrets.EventSecretRotated {
			versions[ev.Version] = true
		}
	}
	if count["hot secret.rotated"] != n || len(versions) != n || count["race secret.created"] != 1 || ok != 1 {
		t.Fatalf("events %v, %d distinct rotated versions, %d creates won", count, len(versions), ok)
	}
}

// snapshotOf is everything a user can see of a project but its feed.
func snapshotOf(t *testing.T, svc *secrets.Service, project string) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	list, _, err := svc.ListSecrets(ctx, project, secrets.ListQuery{Limit: secrets.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		fmt.Fprintf(&b, "%s %s r%d d=%q l=%v cur=%d pend=%d aliases=%d;", s.Name, s.ID, s.Revision, s.Description, s.Labels, s.CurrentVersion, s.PendingVersion, len(s.Aliases))
		vs, _, err := svc.ListVersions(ctx, project, s.ID, 0, secrets.MaxPageSize)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			fmt.Fprintf(&b, " v%d=%s", v.Number, v.State)
		}
		b.WriteString("\n")
	}
	trash, _, err := svc.ListTrash(ctx, project, "", secrets.MaxPageSize)
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range trash {
		fmt.Fprintf(&b, "trash %s %s\n", ts.Secret.Name, ts.Secret.ID)
	}
	keys, err := svc.ListAPIKeys(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "key %s\n", k.ID)
	}
	return b.String()
}

// eventCount is how many events the project's feed holds, settled or not.
func eventCount(t *testing.T, d kv.Driver, project string) int {
	t.Helper()
	items, err := d.Query(context.Background(), kv.Query{Partition: secrets.EventPartition(project), Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return len(items)
}

// testEventsUnderFaults fails every Commit of every write in turn, before
// it reaches the store and after it was applied, and checks that a write
// either changed what users see and wrote its events, or did neither.
func testEventsUnderFaults(t *testing.T, e *Env) {
	str := func(s string) *string { return &s }
	type op struct {
		name   string
		events int // how many events it writes
		run    func(ctx context.Context, svc *secrets.Service, id string) error
	}
	ops := []op{
		{"create", 1, func(ctx context.Context, svc *secrets.Service, _ string) error {
			_, err := svc.CreateSecret(ctx, e.Project, secrets.CreateSecretInput{Name: "new", Values: map[string]string{"k": "v"}, ExpiresAt: time.Now().Add(72 * time.Hour)})
			return err
		}},
		{"rotate", 1, func(ctx context.Context, svc *secrets.Service, _ string) error {
			_, err := svc.UpdateSecret(ctx, e.Project, "base", secrets.UpdateSecretInput{Values: map[string]string{"k": "v2"}})
			return err
		}},
		{"rename and relabel", 2, func(ctx context.Context, svc *secrets.Service, _ string) error {
			_, err := svc.UpdateSecret(ctx, e.Project, "base", secrets.UpdateSecretInput{Name: str("moved"), Labels: map[string]string{"a": "b"}})
			return err
		}},
		{"disable", 1, func(ctx context.Context, svc *secrets.Service, _ string) error {
			_, _, err := svc.ChangeVersionState(ctx, e.Project, "base", "1", secrets.ActionDisable, nil)
			return err
		}},
		{"delete", 1, func(ctx context.Context, svc *secrets.Service, _ string) error {
			return svc.DeleteSecret(ctx, e.Project, "base", nil)
		}},
		{"delete with purge", 1, func(ctx context.Context, svc *secrets.Service, _ string) error {
			return svc.DeleteSecretWith(ctx, e.Project, "base", secrets.DeleteOptions{Purge: true})
		}},
		{"restore", 1, func(ctx context.Context, svc *secrets.Service, id string) error {
			_, err := svc.RestoreSecret(ctx, e.Project, id, "")
			return err
		}},
		{"purge", 1, func(ctx context.Context, svc *secrets.Service, id string) error {
			return svc.PurgeTrash(ctx, e.Project, id)
		}},
		{"create key", 1, func(ctx context.Context, svc *secrets.Service, _ string) error {
			_, _, err := svc.CreateAPIKey(ctx, e.Project, "ci", nil)
			return err
		}},
		{"stage", 1, func(ctx context.Context, svc *secrets.Service, _ string) error {
			_, err := svc.UpdateSecret(ctx, e.Project, "base", secrets.UpdateSecretInput{Values: map[string]string{"k": "v3"}, Stage: secrets.Pending})
			return err
		}},
		{"enable", 1, func(ctx context.Context, svc *secrets.Service, _ string) error {
			_, _, err := svc.ChangeVersionState(ctx, e.Project, "base", "1", secrets.ActionEnable, nil)
			return err
		}},
		{"destroy", 1, func(ctx context.Context, svc *secrets.Service, _ string) error {
			_, _, err := svc.ChangeVersionState(ctx, e.Project, "base", "1", secrets.ActionDestroy, nil)
			return err
		}},
		{"end an alias", 1, func(ctx context.Context, svc *secrets.Service, _ string) error {
			_, err := svc.DeleteAlias(ctx, e.Project, "renamed", "aliased")
			return err
		}},
		{"revoke key", 1, func(ctx context.Context, svc *secrets.Service, _ string) error {
			keys, err := svc.ListAPIKeys(ctx, e.Project)
			if err != nil || len(keys) != 1 {
				return fmt.Errorf("keys %v: %v", keys, err)
			}
			return svc.RevokeAPIKey(ctx, e.Project, keys[0].ID)
		}},
	}
	injected := kv.Errorf(kv.Unavailable, "Commit", nil, "injected failure")
	// setup makes a fresh store with secret "base" (rotated once, with a
	// labelled description) and a trashed secret, and returns a service
	// with faults, the ID of the trashed one and a clean service.
	setup := func(t *testing.T) (*secrets.Service, *faults.Injector, kv.Driver, string, *secrets.Service) {
		env := NewEnv(t, e.newDriver(t))
		in := &faults.Injector{}
		svc := secrets.NewService(&faults.Driver{Inner: env.KV, In: in}, env.Keys, secrets.Options{Logger: quietLogger(), MaxAttempts: 3})
		env.create(env.Project, "base")
		env.rotate("base", map[string]string{"k": "v1b"})
		env.create(env.Project, "aliased")
		to := "renamed"
		if _, err := env.Svc.UpdateSecret(env.Ctx, env.Project, "aliased", secrets.UpdateSecretInput{Name: &to}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := env.Svc.CreateAPIKey(env.Ctx, env.Project, "first", nil); err != nil {
			t.Fatal(err)
		}
		tr := env.create(env.Project, "trashed")
		if err := env.Svc.DeleteSecret(env.Ctx, env.Project, "trashed", nil); err != nil {
			t.Fatal(err)
		}
		return svc, in, env.KV, tr.ID, env.Svc
	}
	cases := 0
	for _, o := range ops {
		svc, in, _, id, _ := setup(t)
		in.Set()
		if err := o.run(e.Ctx, svc, id); err != nil {
			t.Fatalf("%s without faults: %v", o.name, err)
		}
		commits := 0
		for _, c := range in.Calls() {
			if c == "Commit" {
				commits++
			}
		}
		for nth := 1; nth <= commits; nth++ {
			for _, when := range []faults.When{faults.Before, faults.After} {
				t.Run(fmt.Sprintf("%s/commit-%d-%v", o.name, nth, map[faults.When]string{faults.Before: "before", faults.After: "after"}[when]), func(t *testing.T) {
					svc, in, d, id, clean := setup(t)
					before, evBefore := snapshotOf(t, clean, e.Project), eventCount(t, d, e.Project)
					in.Set(faults.Rule{Op: "Commit", Nth: nth, When: when, Err: injected})
					err := o.run(e.Ctx, svc, id)
					in.Set()
					after, evAfter := snapshotOf(t, clean, e.Project), eventCount(t, d, e.Project)
					changed, events := after != before, evAfter-evBefore
					cases++
					switch {
					case changed && events != o.events:
						t.Fatalf("the change happened (err %v) with %d events, want %d:\n%s", err, events, o.events, after)
					case !changed && events != 0:
						t.Fatalf("%d events without the change (err %v)", events, err)
					case err == nil && !changed:
						t.Fatal("succeeded without a change")
					case err != nil && secrets.ErrorCode(err) != secrets.Unavailable:
						t.Fatalf("error %v, want Unavailable", err)
					}
				})
			}
		}
	}
	if cases == 0 {
		t.Fatal("no fault was injected")
	}
}
