package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func TestLabelsAndDates(t *testing.T) {
	ts := newTestServer(t)
	exp := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
	var a api.Secret
	ts.do("POST", "/v1/projects/acme/secrets", map[string]any{
		"name": "a", "values": map[string]string{"k": "v"}, "labels": map[string]string{"env": "prod", "team": "pay"},
		"expires_at": exp.Format(time.RFC3339), "rotate_by": exp.Add(time.Hour).Format(time.RFC3339),
	}).want(t, 201).decode(t, &a)
	if a.Labels["env"] != "prod" || a.ExpiresAt == nil || !a.ExpiresAt.Equal(exp) || a.RotateBy == nil || !a.RotateBy.Equal(exp.Add(time.Hour)) {
		t.Fatalf("created %+v", a)
	}
	r := ts.do("POST", "/v1/projects/acme/secrets", map[string]any{"name": "b", "values": map[string]string{"k": "v"}}).want(t, 201)
	if !strings.Contains(string(r.Body), `"labels":{}`) || !strings.Contains(string(r.Body), `"expires_at":null`) || !strings.Contains(string(r.Body), `"rotate_by":null`) {
		t.Fatalf("a secret without labels or dates: %s", r.Body)
	}
	ts.do("POST", "/v1/projects/acme/secrets", map[string]any{"name": "c", "values": map[string]string{"k": "v"}, "labels": map[string]string{"env": "prod", "url": "a:b"}}).want(t, 201)

	list := func(t *testing.T, query string) []string {
		t.Helper()
		var page api.SecretList
		ts.do("GET", "/v1/projects/acme/secrets?"+query, nil).want(t, 200).decode(t, &page)
		var names []string
		for _, s := range page.Secrets {
			names = append(names, s.Name)
		}
		return names
	}
	for _, c := range []struct{ query, want string }{
		{"label=env:prod", "[a c]"},
		{"label=env:prod&label=team:pay", "[a]"},
		{"label=url:a:b", "[c]"}, // split at the first ':'
		{"label=env:dev", "[]"},
		{"expiring_before=" + url.QueryEscape(exp.Add(time.Second).Format(time.RFC3339)), "[a]"},
		{"rotate_before=" + url.QueryEscape(exp.Format(time.RFC3339)), "[]"},
		{"prefix=a&label=env:prod", "[a]"},
	} {
		t.Run(c.query, func(t *testing.T) {
			if got := fmt.Sprint(list(t, c.query)); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
	t.Run("bad filters", func(t *testing.T) {
		for _, c := range []struct{ query, field string }{
			{"label=env", "label"},
			{"label=a%20b:x", "label"},
			{"label=env:a&label=env:b", "label"},
			{"expiring_before=tomorrow", "expiring_before"},
			{"rotate_before=2026-13-01T00:00:00Z", "rotate_before"},
		} {
			wantError(t, ts.do("GET", "/v1/projects/acme/secrets?"+c.query, nil), 400, c.field)
		}
	})
	t.Run("a page token is bound to its filters", func(t *testing.T) {
		var page api.SecretList
		ts.do("GET", "/v1/projects/acme/secrets?label=env:prod&limit=1", nil).want(t, 200).decode(t, &page)
		if len(page.Secrets) != 1 || page.NextPageToken == "" {
			t.Fatalf("page %+v", page)
		}
		wantError(t, ts.do("GET", "/v1/projects/acme/secrets?label=env:dev&limit=1&page_token="+page.NextPageToken, nil), 400, "page_token")
		wantError(t, ts.do("GET", "/v1/projects/acme/secrets?limit=1&page_token="+page.NextPageToken, nil), 400, "page_token")
		if got := list(t, "label=env:prod&limit=1&page_token="+page.NextPageToken); fmt.Sprint(got) != "[c]" {
			t.Fatalf("the second page: %v", got)
		}
	})
	t.Run("update replaces labels and clears dates", func(t *testing.T) {
		var got api.Secret
		ts.do("PATCH", "/v1/projects/acme/secrets/a", map[string]any{"labels": map[string]string{"tier": "1"}, "expires_at": nil}).want(t, 200).decode(t, &got)
		if len(got.Labels) != 1 || got.Labels["tier"] != "1" || got.ExpiresAt != nil || got.RotateBy == nil {
			t.Fatalf("updated %+v", got)
		}
		var cleared, back api.Secret
		ts.do("PATCH", "/v1/projects/acme/secrets/a", map[string]any{"labels": map[string]string{}}).want(t, 200).decode(t, &cleared)
		if len(cleared.Labels) != 0 {
			t.Fatalf("labels {} left %v", cleared.Labels)
		}
		ts.do("GET", "/v1/projects/acme/secrets/a", nil).want(t, 200).decode(t, &back)
		if len(back.Labels) != 0 || back.ExpiresAt != nil {
			t.Fatalf("read back %+v", back)
		}
	})
	t.Run("bad labels and dates", func(t *testing.T) {
		for _, c := range []struct {
			body  string
			field string
		}{
			{`{"labels": {"env": 1}}`, "labels"},
			{`{"labels": ["env"]}`, "labels"},
			{`{"labels": {"env": "a", "env": "b"}}`, "labels"},
			{`{"labels": {"a b": "x"}}`, "labels"},
			{`{"labels": {"k": "` + strings.Repeat("x", 129) + `"}}`, "labels"},
			{`{"labels": {"k": "a\u001bb"}}`, "labels"},
			{`{"expires_at": "tomorrow"}`, "expires_at"},
			{`{"expires_at": 1767225600}`, "expires_at"},
			{`{"rotate_by": "1969-12-31T00:00:00Z"}`, "rotate_by"},
		} {
			wantError(t, ts.do("PATCH", "/v1/projects/acme/secrets/b", c.body), 400, c.field)
		}
		wantError(t, ts.do("POST", "/v1/projects/acme/secrets", `{"name":"d","values":{"k":"v"},"labels":{"x":true}}`), 400, "labels")
		wantError(t, ts.do("GET", "/v1/projects/acme/secrets/d", nil), 404, "")
	})
}

// settle waits until the events committed so far are served by the feed.
func settle() { time.Sleep(secrets.EventSettle + 50*time.Millisecond) }

func TestEventsFeed(t *testing.T) {
	now := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ts := newTestServerWith(t, secrets.Options{Now: clock})
	const canary = "CANARY-event-value-93f1"
	var s api.Secret
	ts.do("POST", "/v1/projects/acme/secrets", map[string]any{"name": "ev", "values": map[string]string{"k": canary}}).want(t, 201).decode(t, &s)
	ts.do("PATCH", "/v1/projects/acme/secrets/ev", map[string]any{"values": map[string]string{"k": canary + "2"}, "labels": map[string]string{"a": "b"}}).want(t, 200)
	ts.do("DELETE", "/v1/projects/acme/secrets/ev", nil).want(t, 204)

	var page api.EventList
	r := ts.do("GET", "/v1/projects/acme/events", nil).want(t, 200)
	r.decode(t, &page)
	if len(page.Events) != 0 || page.NextAfter != "" {
		t.Fatalf("before the writes settled, the feed holds %+v", page)
	}
	advance(secrets.EventSettle)
	r = ts.do("GET", "/v1/projects/acme/events?limit=2", nil).want(t, 200)
	if strings.Contains(string(r.Body), canary) {
		t.Fatalf("the feed holds a value: %s", r.Body)
	}
	r.decode(t, &page)
	if len(page.Events) != 2 || !page.More || page.NextAfter != page.Events[1].ID {
		t.Fatalf("the first page: %+v", page)
	}
	key := page.Events[0]
	if key.Type != "api_key.created" || key.SecretID != nil || key.Name != nil || key.Version != nil || key.KeyID == nil {
		t.Fatalf("the API key event: %+v", key)
	}
	created := page.Events[1]
	if created.Type != "secret.created" || created.SecretID == nil || *created.SecretID != s.ID || *created.Name != "ev" ||
		*created.Version != 1 || *created.State != "ENABLED" || len(*created.SHA256) != 64 || created.KeyID == nil || *created.KeyID != *key.KeyID ||
		!created.At.Equal(now.Add(-secrets.EventSettle)) {
		t.Fatalf("the created event: %+v", created)
	}
	var rest api.EventList
	ts.do("GET", "/v1/projects/acme/events?after="+page.NextAfter, nil).want(t, 200).decode(t, &rest)
	var got []string
	for _, ev := range rest.Events {
		got = append(got, ev.Type)
	}
	if strings.Join(got, " ") != "secret.labels_changed secret.rotated secret.deleted" || rest.More {
		t.Fatalf("after the cursor: %v (more %v)", got, rest.More)
	}
	var empty api.EventList
	ts.do("GET", "/v1/projects/acme/events?after="+rest.NextAfter, nil).want(t, 200).decode(t, &empty)
	if len(empty.Events) != 0 || empty.NextAfter != rest.NextAfter {
		t.Fatalf("past the end: %+v", empty)
	}
	for _, c := range []struct{ query, field string }{
		{"after=nope", "after"}, {"wait=31s", "wait"}, {"wait=5", "wait"}, {"wait=-1s", "wait"}, {"limit=0", "limit"},
	} {
		wantError(t, ts.do("GET", "/v1/projects/acme/events?"+c.query, nil), 400, c.field)
	}
	writer := ts.newKey("acme", secrets.ScopeWrite)
	wantError(t, ts.serve(req{method: "GET", path: "/v1/projects/acme/events", key: writer}), 403, "")
	other := ts.newKey("bravo", secrets.AllScopes...)
	wantError(t, ts.serve(req{method: "GET", path: "/v1/projects/acme/events", key: other}), 404, "")
}

func TestEventsLongPoll(t *testing.T) {
	ts := newTestServer(t)
	var first api.EventList
	settle()
	ts.do("GET", "/v1/projects/acme/events", nil).want(t, 200).decode(t, &first)
	got := make(chan *response, 1)
	go func() {
		got <- ts.serve(req{method: "GET", path: "/v1/projects/acme/events?wait=20s&after=" + first.NextAfter, key: ts.key})
	}()
	ts.createSecret("polled", map[string]string{"k": "v"})
	r := <-got
	r.want(t, 200)
	var page api.EventList
	r.decode(t, &page)
	if len(page.Events) != 1 || page.Events[0].Type != "secret.created" || *page.Events[0].Name != "polled" {
		t.Fatalf("the long poll answered %s", r.Body)
	}
	// A wait that passes with nothing new answers an empty page.
	r = ts.do("GET", "/v1/projects/acme/events?wait=50ms&after="+page.NextAfter, nil).want(t, 200)
	r.decode(t, &page)
	if len(page.Events) != 0 {
		t.Fatalf("an idle wait: %s", r.Body)
	}
}

// A client that leaves a long poll ends it: the handler returns, and no
// goroutine of it is left once the server is closed.
func TestEventsLongPollLeavesNoGoroutine(t *testing.T) {
	ts := newTestServer(t)
	base := runtime.NumGoroutine()
	started, returned := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") {
			close(started)
			defer close(returned)
		}
		ts.h.ServeHTTP(w, r)
	}))
	tr := &http.Transport{}
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithCancel(context.Background())
	rq, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/projects/acme/events?wait=30s&after=evt_7ZZZZZZZZZZZZZZZZZZZZZZZZZ", nil)
	rq.Header.Set("Authorization", "Bearer "+ts.key)
	errc := make(chan error, 1)
	go func() {
		resp, err := client.Do(rq)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the cancelled request succeeded")
	}
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the long poll did not end when its client left")
	}
	tr.CloseIdleConnections()
	srv.Close()
	for i := 0; runtime.NumGoroutine() > base; i++ {
		if i == 400 {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTrash(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSecret("db", map[string]string{"k": "one"})
	ts.do("PATCH", "/v1/projects/acme/secrets/db", map[string]any{"values": map[string]string{"k": "two"}, "labels": map[string]string{"env": "prod"}}).want(t, 200)
	ts.do("POST", "/v1/projects/acme/secrets/db/versions/1/destroy", nil).want(t, 200)

	t.Run("delete moves to the trash", func(t *testing.T) {
		ts.do("DELETE", "/v1/projects/acme/secrets/db", nil).want(t, 204)
		e := wantError(t, ts.do("GET", "/v1/projects/acme/secrets/"+s.ID, nil), 404, "")
		if !strings.Contains(e.Message, "trash") {
			t.Fatalf("the 404 does not say where the secret is: %s", e.Message)
		}
		var trash api.TrashList
		ts.do("GET", "/v1/projects/acme/trash", nil).want(t, 200).decode(t, &trash)
		if len(trash.Trash) != 1 || trash.Trash[0].Secret.ID != s.ID || trash.Trash[0].Secret.Name != "db" || trash.Trash[0].Secret.Labels["env"] != "prod" ||
			!trash.Trash[0].PurgeAt.Equal(trash.Trash[0].TrashedAt.Add(secrets.DefaultTrashRetention)) || trash.NextPageToken != "" {
			t.Fatalf("the trash: %+v", trash)
		}
	})
	t.Run("the name is free at once", func(t *testing.T) {
		ts.createSecret("db", map[string]string{"k": "other"})
	})
	t.Run("restore needs a name when its own was taken", func(t *testing.T) {
		e := wantError(t, ts.do("POST", "/v1/projects/acme/trash/"+s.ID+"/restore", nil), 409, "name")
		if !strings.Contains(e.Message, "another name") {
			t.Fatalf("message %q", e.Message)
		}
		wantError(t, ts.do("POST", "/v1/projects/acme/trash/"+s.ID+"/restore", map[string]any{"name": "bad name"}), 400, "name")
		wantError(t, ts.do("POST", "/v1/projects/acme/trash/"+s.ID+"/restore", map[string]any{"nom": "x"}), 400, "nom")
	})
	t.Run("restore brings back every version", func(t *testing.T) {
		var got api.Secret
		r := ts.serve(req{method: "POST", path: "/v1/projects/acme/trash/" + s.ID + "/restore", key: ts.key, body: map[string]any{"name": "db-back"},
			header: map[string]string{"Idempotency-Key": "restore-1"}}).want(t, 200)
		r.decode(t, &got)
		if got.ID != s.ID || got.Name != "db-back" || got.CurrentVersion == nil || *got.CurrentVersion != 2 || got.Labels["env"] != "prod" || r.Header.Get("ETag") == "" {
			t.Fatalf("restored %+v", got)
		}
		again := ts.serve(req{method: "POST", path: "/v1/projects/acme/trash/" + s.ID + "/restore", key: ts.key, body: map[string]any{"name": "db-back"},
			header: map[string]string{"Idempotency-Key": "restore-1"}}).want(t, 200)
		if again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatal("a retried restore was not replayed")
		}
		var vs api.VersionList
		ts.do("GET", "/v1/projects/acme/secrets/db-back/versions", nil).want(t, 200).decode(t, &vs)
		if len(vs.Versions) != 2 || vs.Versions[0].State != "ENABLED" || vs.Versions[1].State != "DESTROYED" {
			t.Fatalf("versions after the restore: %+v", vs)
		}
		wantError(t, ts.do("POST", "/v1/projects/acme/trash/"+s.ID+"/restore", nil), 404, "")
	})
	t.Run("purge", func(t *testing.T) {
		ts.do("DELETE", "/v1/projects/acme/secrets/db-back", nil).want(t, 204)
		ts.do("DELETE", "/v1/projects/acme/trash/"+s.ID, nil).want(t, 204)
		wantError(t, ts.do("DELETE", "/v1/projects/acme/trash/"+s.ID, nil), 404, "")
		wantError(t, ts.do("POST", "/v1/projects/acme/trash/"+s.ID+"/restore", nil), 404, "")
		r := ts.do("GET", "/v1/projects/acme/trash", nil).want(t, 200)
		if !strings.Contains(string(r.Body), `"trash":[]`) {
			t.Fatalf("the trash after the purge: %s", r.Body)
		}
	})
	t.Run("delete with purge skips the trash", func(t *testing.T) {
		wantError(t, ts.do("DELETE", "/v1/projects/acme/secrets/db?purge=maybe", nil), 400, "purge")
		ts.do("DELETE", "/v1/projects/acme/secrets/db?purge=true", nil).want(t, 204)
		r := ts.do("GET", "/v1/projects/acme/trash", nil).want(t, 200)
		if !strings.Contains(string(r.Body), `"trash":[]`) {
			t.Fatalf("a purged secret is in the trash: %s", r.Body)
		}
	})
	t.Run("scopes and projects", func(t *testing.T) {
		s2 := ts.createSecret("scoped", map[string]string{"k": "v"})
		ts.do("DELETE", "/v1/projects/acme/secrets/scoped", nil).want(t, 204)
		reader := ts.newKey("acme", secrets.ScopeRead)
		wantError(t, ts.serve(req{method: "POST", path: "/v1/projects/acme/trash/" + s2.ID + "/restore", key: reader}), 403, "")
		wantError(t, ts.serve(req{method: "DELETE", path: "/v1/projects/acme/trash/" + s2.ID, key: reader}), 403, "")
		ts.serve(req{method: "GET", path: "/v1/projects/acme/trash", key: reader}).want(t, 200)
		other := ts.newKey("bravo", secrets.AllScopes...)
		mine := wantError(t, ts.do("POST", "/v1/projects/acme/trash/sec_01J00000000000000000000000/restore", nil), 404, "")
		theirs := wantError(t, ts.serve(req{method: "POST", path: "/v1/projects/acme/trash/sec_01J00000000000000000000000/restore", key: other}), 404, "")
		if mine.Message != theirs.Message {
			t.Fatalf("another project's 404 differs: %q vs %q", theirs.Message, mine.Message)
		}
		wantError(t, ts.serve(req{method: "DELETE", path: "/v1/projects/acme/trash/" + s2.ID, key: other}), 404, "")
	})
}

// TestTrashListPages: the trash pages by ID with a token bound to it.
func TestTrashListPages(t *testing.T) {
	ts := newTestServer(t)
	var ids []string
	for i := range 5 {
		s := ts.createSecret(fmt.Sprintf("t%d", i), map[string]string{"k": "v"})
		ids = append(ids, s.ID)
		ts.do("DELETE", "/v1/projects/acme/secrets/"+s.ID, nil).want(t, 204)
	}
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		var page api.TrashList
		ts.do("GET", "/v1/projects/acme/trash?limit=2&page_token="+token, nil).want(t, 200).decode(t, &page)
		for _, t := range page.Trash {
			got = append(got, t.Secret.ID)
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	slices.Sort(ids) // ID order
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("trash pages %v, want %v", got, ids)
	}
	var secretsPage api.SecretList
	ts.createSecret("a", map[string]string{"k": "v"})
	ts.createSecret("b", map[string]string{"k": "v"})
	ts.do("GET", "/v1/projects/acme/secrets?limit=1", nil).want(t, 200).decode(t, &secretsPage)
	wantError(t, ts.do("GET", "/v1/projects/acme/trash?page_token="+secretsPage.NextPageToken, nil), 400, "page_token")
}

// The events of a change made through the API name the key that made it.
func TestEventsNameTheActor(t *testing.T) {
	ts := newTestServer(t)
	k, key, err := ts.svc.CreateAPIKey(context.Background(), "acme", "writer", []string{secrets.ScopeRead, secrets.ScopeWrite})
	if err != nil {
		t.Fatal(err)
	}
	ts.serve(req{method: "POST", path: "/v1/projects/acme/secrets", key: key, body: map[string]any{"name": "x", "values": map[string]string{"k": "v"}}}).want(t, 201)
	settle()
	var page api.EventList
	ts.do("GET", "/v1/projects/acme/events", nil).want(t, 200).decode(t, &page)
	for _, ev := range page.Events {
		if ev.Type == "secret.created" {
			if ev.KeyID == nil || *ev.KeyID != k.ID {
				t.Fatalf("the event names key %v, want %s", ev.KeyID, k.ID)
			}
			return
		}
	}
	t.Fatalf("no secret.created event among %d", len(page.Events))
}

// Plaintext values reach no answer of the feed or the trash, nor a log
// line; once purged, a secret's ciphertext is gone from the data file.
func TestLifecycleCanary(t *testing.T) {
	now := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	ts := newTestServerWith(t, secrets.Options{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	const canary = "CANARY-lifecycle-5b2e"
	var responses []*response
	rec := func(r *response) *response { responses = append(responses, r); return r }
	s := ts.createSecret("db", map[string]string{"password": canary + "-1"})
	rec(ts.do("PATCH", "/v1/projects/acme/secrets/db", map[string]any{"values": map[string]string{"password": canary + "-2"}, "labels": map[string]string{"env": "prod"}})).want(t, 200)
	var cts [][]byte
	for n := 1; n <= 2; n++ {
		items, err := ts.store.Get(context.Background(), secrets.CiphertextItemKey("acme", s.ID, n))
		if err != nil || len(items) != 1 || len(items[0].Value) < 32 {
			t.Fatalf("the ciphertext of version %d: %v", n, err)
		}
		cts = append(cts, items[0].Value)
	}
	rec(ts.do("DELETE", "/v1/projects/acme/secrets/db", nil)).want(t, 204)
	rec(ts.do("GET", "/v1/projects/acme/trash", nil)).want(t, 200)
	rec(ts.do("POST", "/v1/projects/acme/trash/"+s.ID+"/restore", nil)).want(t, 200)
	rec(ts.do("DELETE", "/v1/projects/acme/secrets/db", nil)).want(t, 204)
	rec(ts.do("DELETE", "/v1/projects/acme/trash/"+s.ID, nil)).want(t, 204)
	mu.Lock()
	now = now.Add(secrets.EventSettle)
	mu.Unlock()
	r := rec(ts.do("GET", "/v1/projects/acme/events?limit=100", nil)).want(t, 200)
	if !strings.Contains(string(r.Body), "secret.purged") {
		t.Fatalf("the feed: %s", r.Body)
	}
	for i, r := range responses {
		if strings.Contains(string(r.Body), canary) {
			t.Errorf("response %d holds a value: %s", i, r.Body)
		}
	}
	if strings.Contains(ts.logs.String(), canary) {
		t.Errorf("a log line holds a value:\n%s", ts.logs.String())
	}
	raw, err := os.ReadFile(ts.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for n, ct := range cts {
		if bytes.Contains(raw, ct[len(ct)-32:]) {
			t.Errorf("the data file still holds the ciphertext of purged version %d", n+1)
		}
	}
}
