package httpapi

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// These tests drive the resolve-grant and rotation routes through the
// OpenAPI validator (ts.do and ts.serve go through it), so the document's
// schemas for them are checked against real answers.

func TestResolveGrantRoutes(t *testing.T) {
	ts := newTestServer(t)
	db := ts.createSecret("db", map[string]string{"password": "pw"})
	openai := ts.createSecret("openai", map[string]string{"api_key": "sk"})
	const grants = "/v1/projects/acme/resolve-grants"

	var minted api.ResolveGrantCreated
	t.Run("mint", func(t *testing.T) {
		r := ts.do("POST", grants, map[string]any{
			"secrets": []string{"db", openai.ID, "db"}, "run": map[string]any{"loop": "summarizer", "run_id": "r1"}, "ttl_seconds": 600,
		}).want(t, 201)
		r.decode(t, &minted)
		if loc := r.Header.Get("Location"); loc != grants+"/"+minted.ID {
			t.Errorf("Location %q, want %s/%s", loc, grants, minted.ID)
		}
		if !secrets.IsGrantID(minted.ID) || !strings.HasPrefix(minted.Grant, secrets.GrantPrefix) || minted.Project != "acme" || minted.KeyID == "" {
			t.Errorf("minted %+v", minted)
		}
		want := []api.ResolveGrantSecret{{ID: db.ID, Name: "db"}, {ID: openai.ID, Name: "openai"}}
		if fmt.Sprint(minted.Secrets) != fmt.Sprint(want) {
			t.Errorf("secrets %v, want %v (each once, in order)", minted.Secrets, want)
		}
		if string(minted.Run) != `{"loop":"summarizer","run_id":"r1"}` {
			t.Errorf("run %s", minted.Run)
		}
		if d := minted.ExpiresAt.Sub(minted.CreatedAt); d != 600*time.Second {
			t.Errorf("lasts %v, want 10m", d)
		}
	})

	var second api.ResolveGrantCreated
	t.Run("default ttl and no run", func(t *testing.T) {
		ts.do("POST", grants, map[string]any{"secrets": []string{"db"}}).want(t, 201).decode(t, &second)
		if d := second.ExpiresAt.Sub(second.CreatedAt); d != time.Hour || string(second.Run) != "null" {
			t.Errorf("lasts %v with run %s, want 1h and null", d, second.Run)
		}
	})

	t.Run("list pages oldest first, never the grant string", func(t *testing.T) {
		var ids []string
		token := ""
		for range 3 {
			r := ts.do("GET", grants+"?limit=1&page_token="+token, nil).want(t, 200)
			if strings.Contains(string(r.Body), secrets.GrantPrefix) || strings.Contains(string(r.Body), `"grant"`) {
				t.Fatalf("the list shows a grant string: %s", r.Body)
			}
			var page api.ResolveGrantList
			r.decode(t, &page)
			for _, g := range page.Grants {
				ids = append(ids, g.ID)
			}
			if token = page.NextPageToken; token == "" {
				break
			}
		}
		if strings.Join(ids, " ") != minted.ID+" "+second.ID {
			t.Errorf("listed %v, want %s then %s", ids, minted.ID, second.ID)
		}
	})

	t.Run("a retried mint is refused, not replayed", func(t *testing.T) {
		rq := req{method: "POST", path: grants, key: ts.key, body: map[string]any{"secrets": []string{"db"}},
			header: map[string]string{"Idempotency-Key": "mint-1"}}
		var first api.ResolveGrantCreated
		ts.serve(rq).want(t, 201).decode(t, &first)
		e := wantError(t, ts.serve(rq), 409, "Idempotency-Key")
		if !strings.Contains(e.Message, "created resolve grant "+strconv.Quote(first.ID)) || strings.Contains(e.Message, secrets.GrantPrefix) {
			t.Errorf("message %q: want the first grant named as one, by its ID, never its string", e.Message)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		names := make([]string, secrets.MaxGrantSecrets+1)
		for i := range names {
			names[i] = "db"
		}
		cases := []struct {
			name   string
			body   any
			status int
			field  string
		}{
			{"no secrets", map[string]any{"secrets": []string{}}, 400, "secrets"},
			{"too many secrets", map[string]any{"secrets": names}, 400, "secrets"},
			{"ttl zero", map[string]any{"secrets": []string{"db"}, "ttl_seconds": 0}, 400, "ttl_seconds"},
			{"ttl over a day", map[string]any{"secrets": []string{"db"}, "ttl_seconds": 86401}, 400, "ttl_seconds"},
			{"run not an object", map[string]any{"secrets": []string{"db"}, "run": "r1"}, 400, "run"},
			{"run over 4 KiB", map[string]any{"secrets": []string{"db"}, "run": map[string]string{"x": strings.Repeat("a", secrets.MaxRunBytes)}}, 400, "run"},
			{"unknown field", map[string]any{"secrets": []string{"db"}, "project": "acme"}, 400, "project"},
			{"unknown secret", map[string]any{"secrets": []string{"db", "nope"}}, 404, "secrets"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				wantError(t, ts.do("POST", grants, c.body), c.status, c.field)
			})
		}
	})

	t.Run("needs the secrets:resolve scope", func(t *testing.T) {
		reader := ts.newKey("acme", secrets.ScopeRead, secrets.ScopeWrite, secrets.ScopeKeyAdmin)
		for _, rq := range []req{
			{method: "POST", path: grants, body: map[string]any{"secrets": []string{"db"}}},
			{method: "GET", path: grants},
			{method: "DELETE", path: grants + "/" + second.ID},
		} {
			rq.key = reader
			wantError(t, ts.serve(rq), 403, "")
		}
	})

	t.Run("another project's grants are not found", func(t *testing.T) {
		other := ts.newKey("other", secrets.AllScopes...)
		wantError(t, ts.serve(req{method: "DELETE", path: "/v1/projects/acme/resolve-grants/" + second.ID, key: other}), 404, "")
		wantError(t, ts.serve(req{method: "GET", path: grants, key: other}), 404, "")
	})

	t.Run("revoke", func(t *testing.T) {
		ts.do("DELETE", grants+"/"+second.ID, nil).want(t, 204)
		wantError(t, ts.do("DELETE", grants+"/"+second.ID, nil), 404, "")
		wantError(t, ts.do("DELETE", grants+"/grt_not-an-id", nil), 404, "")
		if r := ts.do("GET", grants, nil).want(t, 200); strings.Contains(string(r.Body), second.ID) {
			t.Errorf("the revoked grant is still listed: %s", r.Body)
		}
	})
}

func TestRotationRoutes(t *testing.T) {
	ts := newTestServer(t)
	const base = "/v1/projects/acme/secrets"

	t.Run("create with settings", func(t *testing.T) {
		var s api.Secret
		ts.do("POST", base, map[string]any{"name": "db", "values": map[string]string{"password": "v1"},
			"previous_grace_seconds": 3600, "rename_alias_seconds": 60}).want(t, 201).decode(t, &s)
		if s.PendingVersion != nil || s.PreviousVersion != nil || s.PreviousUntil != nil || s.PreviousGraceSeconds != 3600 ||
			s.RenameAliasSeconds != 60 || s.Aliases == nil || len(s.Aliases) != 0 {
			t.Errorf("created %+v", s)
		}
		var d api.Secret
		ts.do("POST", base, map[string]any{"name": "defaults", "values": map[string]string{"k": "v"}}).want(t, 201).decode(t, &d)
		if d.PreviousGraceSeconds != 0 || d.RenameAliasSeconds != int64(secrets.DefaultAliasTTL/time.Second) {
			t.Errorf("defaults: grace %d, alias %d", d.PreviousGraceSeconds, d.RenameAliasSeconds)
		}
	})

	t.Run("settings out of range", func(t *testing.T) {
		cases := []struct {
			name  string
			body  map[string]any
			field string
		}{
			{"grace over a week", map[string]any{"previous_grace_seconds": 604801}, "previous_grace_seconds"},
			{"negative grace", map[string]any{"previous_grace_seconds": -1}, "previous_grace_seconds"},
			{"alias over 30 days", map[string]any{"rename_alias_seconds": 2592001}, "rename_alias_seconds"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				c.body["name"], c.body["values"] = "x-"+strings.ReplaceAll(c.name, " ", "-"), map[string]string{"k": "v"}
				wantError(t, ts.do("POST", base, c.body), 400, c.field)
				delete(c.body, "name")
				delete(c.body, "values")
				wantError(t, ts.do("PATCH", base+"/db", c.body), 400, c.field)
			})
		}
	})

	t.Run("stage", func(t *testing.T) {
		var s api.Secret
		ts.do("PATCH", base+"/db", map[string]any{"values": map[string]string{"password": "v2"}, "stage": "PENDING"}).want(t, 200).decode(t, &s)
		if s.PendingVersion == nil || *s.PendingVersion != 2 || *s.CurrentVersion != 1 || s.LatestVersion != 2 {
			t.Fatalf("staged %+v", s)
		}
		var v api.Version
		ts.do("GET", base+"/db/versions/2", nil).want(t, 200).decode(t, &v)
		if v.State != "PENDING" || v.LastResolvedAt != nil {
			t.Errorf("version 2 %+v", v)
		}
	})

	t.Run("stage refusals", func(t *testing.T) {
		wantError(t, ts.do("PATCH", base+"/db", map[string]any{"values": map[string]string{"password": "v3"}}), 409, "replace_pending")
		wantError(t, ts.do("PATCH", base+"/db", map[string]any{"description": "d", "stage": "PENDING"}), 400, "stage")
		wantError(t, ts.do("PATCH", base+"/db", map[string]any{"values": map[string]string{"password": "v3"}, "stage": "LATER"}), 400, "stage")
	})

	t.Run("replace the staged version", func(t *testing.T) {
		var s api.Secret
		ts.do("PATCH", base+"/db", map[string]any{"values": map[string]string{"password": "v3"}, "stage": "PENDING", "replace_pending": true}).
			want(t, 200).decode(t, &s)
		var v api.Version
		ts.do("GET", base+"/db/versions/2", nil).want(t, 200).decode(t, &v)
		if *s.PendingVersion != 3 || v.State != "DISABLED" {
			t.Errorf("pending %v, version 2 %s", *s.PendingVersion, v.State)
		}
		e := wantError(t, ts.do("POST", base+"/db/versions/2/promote", nil), 409, "")
		if !strings.Contains(e.Message, "only a PENDING version can be promoted") {
			t.Errorf("promoting a DISABLED version: %q", e.Message)
		}
	})

	t.Run("promote", func(t *testing.T) {
		before := time.Now()
		r := ts.do("POST", base+"/db/versions/3/promote", nil).want(t, 200)
		var v api.Version
		r.decode(t, &v)
		if v.Number != 3 || v.State != "ENABLED" || r.Header.Get("ETag") == "" {
			t.Errorf("promoted %+v, ETag %q", v, r.Header.Get("ETag"))
		}
		var s api.Secret
		ts.do("GET", base+"/db", nil).want(t, 200).decode(t, &s)
		if *s.CurrentVersion != 3 || s.PendingVersion != nil || s.PreviousVersion == nil || *s.PreviousVersion != 1 ||
			s.PreviousUntil == nil || s.PreviousUntil.Before(before.Add(time.Hour-time.Second)) || s.PreviousUntil.After(time.Now().Add(time.Hour)) {
			t.Errorf("after promote %+v", s)
		}
		ts.do("POST", base+"/db/versions/current/promote", nil).want(t, 200).decode(t, &v)
		if v.Number != 3 || v.State != "ENABLED" {
			t.Errorf("promoting the ENABLED version: %+v", v)
		}
	})

	t.Run("rename and end the alias", func(t *testing.T) {
		var s api.Secret
		ts.do("PATCH", base+"/db", map[string]any{"name": "db2"}).want(t, 200).decode(t, &s)
		if len(s.Aliases) != 1 || s.Aliases[0].Name != "db" || !s.Aliases[0].Until.After(time.Now()) {
			t.Fatalf("aliases %+v", s.Aliases)
		}
		wantError(t, ts.do("GET", base+"/db", nil), 404, "")
		wantError(t, ts.do("POST", base, map[string]any{"name": "db", "values": map[string]string{"k": "v"}}), 409, "name")
		r := ts.do("DELETE", base+"/db2/aliases/db", nil).want(t, 200)
		r.decode(t, &s)
		if len(s.Aliases) != 0 || s.Name != "db2" || r.Header.Get("ETag") == "" {
			t.Errorf("after ending the alias %+v, ETag %q", s, r.Header.Get("ETag"))
		}
		wantError(t, ts.do("DELETE", base+"/db2/aliases/db", nil), 404, "")
		ts.do("POST", base, map[string]any{"name": "db", "values": map[string]string{"k": "v"}}).want(t, 201)
	})

	// A read through a grant minted over the API, recorded as the resolve
	// function records it.
	var g api.ResolveGrantCreated
	ts.do("POST", "/v1/projects/acme/resolve-grants", map[string]any{"secrets": []string{"db2"}, "run": map[string]string{"run_id": "r7"}}).
		want(t, 201).decode(t, &g)
	var sec api.Secret
	ts.do("GET", base+"/db2", nil).want(t, 200).decode(t, &sec)
	if err := ts.svc.RecordResolutions(t.Context(), []*secrets.Resolution{{
		Project: "acme", SecretID: sec.ID, SecretName: "db2", Version: 3, Keys: []string{"password"},
		GrantID: g.ID, KeyID: g.KeyID, Run: g.Run, Step: json.RawMessage(`{"step":"load"}`),
	}}); err != nil {
		t.Fatal(err)
	}

	t.Run("resolutions name the grant, run and step", func(t *testing.T) {
		var list api.ResolutionList
		ts.do("GET", base+"/db2/resolutions", nil).want(t, 200).decode(t, &list)
		if len(list.Resolutions) != 1 {
			t.Fatalf("resolutions %+v", list)
		}
		r := list.Resolutions[0]
		if r.GrantID != g.ID || r.KeyID != g.KeyID || string(r.Run) != `{"run_id":"r7"}` || string(r.Step) != `{"step":"load"}` {
			t.Errorf("resolution %+v", r)
		}
	})

	t.Run("a version in use needs force", func(t *testing.T) {
		var v api.Version
		ts.do("GET", base+"/db2/versions/3", nil).want(t, 200).decode(t, &v)
		if v.LastResolvedAt == nil {
			t.Fatalf("version 3 has no last_resolved_at")
		}
		for _, action := range []string{"disable", "destroy"} {
			e := wantError(t, ts.do("POST", base+"/db2/versions/3/"+action, nil), 409, "force")
			if !strings.Contains(e.Message, g.ID) || !strings.Contains(e.Message, "r7") {
				t.Errorf("%s: message %q does not name the last consumer", action, e.Message)
			}
			wantError(t, ts.do("POST", base+"/db2/versions/3/"+action+"?force=maybe", nil), 400, "force")
		}
		ts.do("POST", base+"/db2/versions/3/disable?force=true", nil).want(t, 200).decode(t, &v)
		if v.State != "DISABLED" {
			t.Errorf("forced disable: %+v", v)
		}
	})

	t.Run("consumers", func(t *testing.T) {
		cases := []struct {
			name, query string
			consumers   int
		}{
			{"default window", "", 1},
			{"duration", "?since=1h30m", 1},
			{"time", "?since=" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), 1},
			{"window after the read", "?since=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339), 0},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var list api.ConsumerList
				ts.do("GET", base+"/db2/consumers"+c.query, nil).want(t, 200).decode(t, &list)
				if len(list.Versions) != 1 || list.Truncated {
					t.Fatalf("consumers %+v", list)
				}
				vc := list.Versions[0]
				if vc.Version != 3 || vc.State != "DISABLED" || vc.LastResolvedAt == nil || len(vc.Consumers) != c.consumers {
					t.Fatalf("version %+v", vc)
				}
				if c.consumers == 1 {
					cs := vc.Consumers[0]
					if string(cs.Run) != `{"run_id":"r7"}` || string(cs.Step) != `{"step":"load"}` || fmt.Sprint(cs.GrantIDs) != "["+g.ID+"]" || cs.Count != 1 {
						t.Errorf("consumer %+v", cs)
					}
				}
			})
		}
		for _, bad := range []string{"yesterday", "-1h", "0s"} {
			wantError(t, ts.do("GET", base+"/db2/consumers?since="+bad, nil), 400, "since")
		}
		wantError(t, ts.do("GET", base+"/nope/consumers", nil), 404, "")
	})
}
