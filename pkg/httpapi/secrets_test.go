package httpapi

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func TestSecretLifecycle(t *testing.T) {
	ts := newTestServer(t)
	var created api.Secret
	var createdETag string

	t.Run("create", func(t *testing.T) {
		r := ts.do("POST", "/v1/projects/acme/secrets", map[string]any{
			"name": "openai", "description": "the OpenAI key", "values": map[string]string{"api_key": "sk-1"},
		}).want(t, 201)
		r.decode(t, &created)
		if !strings.HasPrefix(created.ID, "sec_") || created.Name != "openai" || created.Description != "the OpenAI key" ||
			created.Project != "acme" || created.CurrentVersion == nil || *created.CurrentVersion != 1 || created.LatestVersion != 1 {
			t.Fatalf("created %+v", created)
		}
		if created.CreatedAt.IsZero() || created.CreatedAt.Location() != time.UTC || !created.UpdatedAt.Equal(created.CreatedAt) {
			t.Fatalf("times %v %v", created.CreatedAt, created.UpdatedAt)
		}
		if loc := r.Header.Get("Location"); loc != "/v1/projects/acme/secrets/"+created.ID {
			t.Fatalf("Location %q", loc)
		}
		createdETag = r.Header.Get("ETag")
		if createdETag != `"1"` {
			t.Fatalf("ETag %q", createdETag)
		}
		if !strings.Contains(string(r.Body), `"created_at":"`) || !strings.Contains(string(r.Body), `Z"`) {
			t.Fatalf("times not RFC 3339 UTC: %s", r.Body)
		}
		if got := r.Header.Get("Content-Type"); got != "application/json" {
			t.Fatalf("Content-Type %q", got)
		}
		if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("security headers missing: %v", r.Header)
		}
	})

	t.Run("get by name and by ID", func(t *testing.T) {
		for _, ref := range []string{"openai", created.ID} {
			var got api.Secret
			r := ts.do("GET", "/v1/projects/acme/secrets/"+ref, nil).want(t, 200)
			r.decode(t, &got)
			if got.ID != created.ID || got.Name != "openai" {
				t.Fatalf("%s: got %+v", ref, got)
			}
			if r.Header.Get("ETag") != createdETag {
				t.Fatalf("ETag %q, want %q", r.Header.Get("ETag"), createdETag)
			}
		}
	})

	t.Run("get missing", func(t *testing.T) {
		e := wantError(t, ts.do("GET", "/v1/projects/acme/secrets/nope", nil), 404, "")
		if e.Code != "Not Found" {
			t.Fatal(e)
		}
	})

	t.Run("update description", func(t *testing.T) {
		var got api.Secret
		r := ts.do("PATCH", "/v1/projects/acme/secrets/openai", map[string]any{"description": "new"}).want(t, 200)
		r.decode(t, &got)
		if got.Description != "new" || got.LatestVersion != 1 || r.Header.Get("ETag") != `"2"` {
			t.Fatalf("got %+v etag %q", got, r.Header.Get("ETag"))
		}
	})

	t.Run("update rename", func(t *testing.T) {
		var got api.Secret
		ts.do("PATCH", "/v1/projects/acme/secrets/"+created.ID, map[string]any{"name": "openai-prod"}).want(t, 200).decode(t, &got)
		if got.Name != "openai-prod" || got.ID != created.ID {
			t.Fatalf("got %+v", got)
		}
		wantError(t, ts.do("GET", "/v1/projects/acme/secrets/openai", nil), 404, "")
		ts.do("GET", "/v1/projects/acme/secrets/openai-prod", nil).want(t, 200)
	})

	t.Run("update rotate", func(t *testing.T) {
		var got api.Secret
		ts.do("PATCH", "/v1/projects/acme/secrets/openai-prod", map[string]any{"values": map[string]string{"api_key": "sk-2"}}).want(t, 200).decode(t, &got)
		if got.LatestVersion != 2 || got.CurrentVersion == nil || *got.CurrentVersion != 2 {
			t.Fatalf("got %+v", got)
		}
		var v1 api.Version
		ts.do("GET", "/v1/projects/acme/secrets/openai-prod/versions/1", nil).want(t, 200).decode(t, &v1)
		if v1.State != "DISABLED" {
			t.Fatalf("v1 %+v", v1)
		}
	})

	t.Run("rename to a taken name", func(t *testing.T) {
		ts.createSecret("other", map[string]string{"k": "v"})
		wantError(t, ts.do("PATCH", "/v1/projects/acme/secrets/other", map[string]any{"name": "openai-prod"}), 409, "name")
	})

	t.Run("create a taken name", func(t *testing.T) {
		wantError(t, ts.do("POST", "/v1/projects/acme/secrets", map[string]any{"name": "other", "values": map[string]string{"k": "v"}}), 409, "name")
	})

	t.Run("update with nothing", func(t *testing.T) {
		wantError(t, ts.do("PATCH", "/v1/projects/acme/secrets/other", map[string]any{}), 400, "-")
	})

	t.Run("delete", func(t *testing.T) {
		r := ts.do("DELETE", "/v1/projects/acme/secrets/openai-prod", nil).want(t, 204)
		if len(r.Body) != 0 {
			t.Fatalf("body %q", r.Body)
		}
		wantError(t, ts.do("GET", "/v1/projects/acme/secrets/"+created.ID, nil), 404, "")
		wantError(t, ts.do("GET", "/v1/projects/acme/secrets/"+created.ID+"/versions/1", nil), 404, "")
		wantError(t, ts.do("DELETE", "/v1/projects/acme/secrets/openai-prod", nil), 404, "")
	})

	t.Run("name is free after delete", func(t *testing.T) {
		s := ts.createSecret("openai-prod", map[string]string{"k": "v"})
		if s.ID == created.ID {
			t.Fatal("ID reused")
		}
	})
}

func TestListSecretsPagination(t *testing.T) {
	ts := newTestServer(t)
	var want []string
	for i := range 7 {
		name := fmt.Sprintf("app-%02d", i)
		want = append(want, name)
		ts.createSecret(name, map[string]string{"k": "v"})
	}
	ts.createSecret("db", map[string]string{"k": "v"})
	ts.createSecret("zeta", map[string]string{"k": "v"})

	t.Run("walk with prefix", func(t *testing.T) {
		var got []string
		token := ""
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("too many pages")
			}
			var page api.SecretList
			ts.do("GET", "/v1/projects/acme/secrets?prefix=app-&limit=3&page_token="+token, nil).want(t, 200).decode(t, &page)
			for _, s := range page.Secrets {
				got = append(got, s.Name)
			}
			if page.NextPageToken == "" {
				if pages != 2 {
					t.Fatalf("walked %d pages, want 3", pages+1)
				}
				break
			}
			token = page.NextPageToken
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("got %v, want %v", got, want)
		}
	})

	t.Run("default limit lists all, empty token on last page", func(t *testing.T) {
		r := ts.do("GET", "/v1/projects/acme/secrets", nil).want(t, 200)
		var page api.SecretList
		r.decode(t, &page)
		if len(page.Secrets) != 9 || page.NextPageToken != "" || !strings.Contains(string(r.Body), `"next_page_token":""`) {
			t.Fatalf("page %s", r.Body)
		}
	})

	t.Run("empty list is an empty array", func(t *testing.T) {
		r := ts.do("GET", "/v1/projects/acme/secrets?prefix=nothing", nil).want(t, 200)
		if !strings.Contains(string(r.Body), `"secrets":[]`) {
			t.Fatalf("body %s", r.Body)
		}
	})
}

func TestVersions(t *testing.T) {
	ts := newTestServer(t)
	ts.createSecret("db", map[string]string{"password": "one"})
	for _, p := range []string{"two", "three"} {
		ts.do("PATCH", "/v1/projects/acme/secrets/db", map[string]any{"values": map[string]string{"password": p, "user": "app"}}).want(t, 200)
	}
	state := func(t *testing.T, n int) string {
		t.Helper()
		var v api.Version
		ts.do("GET", fmt.Sprintf("/v1/projects/acme/secrets/db/versions/%d", n), nil).want(t, 200).decode(t, &v)
		return v.State
	}

	t.Run("list newest first", func(t *testing.T) {
		var page api.VersionList
		ts.do("GET", "/v1/projects/acme/secrets/db/versions", nil).want(t, 200).decode(t, &page)
		if len(page.Versions) != 3 || page.Versions[0].Number != 3 || page.Versions[2].Number != 1 || page.NextPageToken != "" {
			t.Fatalf("page %+v", page)
		}
		v := page.Versions[0]
		if v.State != "ENABLED" || len(v.SHA256) != 64 || strings.Join(v.Keys, ",") != "password,user" || v.CreatedAt.IsZero() || v.StateChangedAt.IsZero() {
			t.Fatalf("version %+v", v)
		}
	})

	t.Run("walk one at a time", func(t *testing.T) {
		var got []int
		token := ""
		for range 5 {
			var page api.VersionList
			ts.do("GET", "/v1/projects/acme/secrets/db/versions?limit=1&page_token="+token, nil).want(t, 200).decode(t, &page)
			for _, v := range page.Versions {
				got = append(got, v.Number)
			}
			if token = page.NextPageToken; token == "" {
				break
			}
		}
		if fmt.Sprint(got) != "[3 2 1]" {
			t.Fatalf("got %v", got)
		}
	})

	t.Run("get number and current", func(t *testing.T) {
		var cur, two api.Version
		r := ts.do("GET", "/v1/projects/acme/secrets/db/versions/current", nil).want(t, 200)
		r.decode(t, &cur)
		if cur.Number != 3 || r.Header.Get("ETag") == "" {
			t.Fatalf("current %+v etag %q", cur, r.Header.Get("ETag"))
		}
		ts.do("GET", "/v1/projects/acme/secrets/db/versions/2", nil).want(t, 200).decode(t, &two)
		if two.Number != 2 || two.State != "DISABLED" {
			t.Fatalf("two %+v", two)
		}
	})

	t.Run("enable", func(t *testing.T) {
		var v api.Version
		r := ts.do("POST", "/v1/projects/acme/secrets/db/versions/1/enable", nil).want(t, 200)
		r.decode(t, &v)
		if v.Number != 1 || v.State != "ENABLED" || r.Header.Get("ETag") == "" {
			t.Fatalf("v %+v", v)
		}
		if state(t, 3) != "DISABLED" {
			t.Fatal("the previous ENABLED version is not DISABLED")
		}
		var s api.Secret
		ts.do("GET", "/v1/projects/acme/secrets/db", nil).want(t, 200).decode(t, &s)
		if *s.CurrentVersion != 1 {
			t.Fatalf("secret %+v", s)
		}
	})

	t.Run("disable", func(t *testing.T) {
		ts.do("POST", "/v1/projects/acme/secrets/db/versions/1/disable", "{}").want(t, 200)
		var s api.Secret
		r := ts.do("GET", "/v1/projects/acme/secrets/db", nil).want(t, 200)
		r.decode(t, &s)
		if s.CurrentVersion != nil || !strings.Contains(string(r.Body), `"current_version":null`) {
			t.Fatalf("secret %s", r.Body)
		}
		wantError(t, ts.do("GET", "/v1/projects/acme/secrets/db/versions/current", nil), 404, "")
	})

	t.Run("destroy", func(t *testing.T) {
		var v api.Version
		ts.do("POST", "/v1/projects/acme/secrets/db/versions/2/destroy", nil).want(t, 200).decode(t, &v)
		if v.State != "DESTROYED" || len(v.SHA256) != 64 {
			t.Fatalf("v %+v", v)
		}
	})

	t.Run("enabling a destroyed version is a conflict", func(t *testing.T) {
		wantError(t, ts.do("POST", "/v1/projects/acme/secrets/db/versions/2/enable", nil), 409, "-")
		wantError(t, ts.do("POST", "/v1/projects/acme/secrets/db/versions/2/disable", nil), 409, "-")
	})

	t.Run("bad and missing versions", func(t *testing.T) {
		for _, c := range []struct {
			name, path string
			status     int
			field      string
		}{
			{"zero", "/versions/0", 400, "version"},
			{"word", "/versions/latest", 400, "version"},
			{"negative", "/versions/-1", 400, "version"},
			{"beyond latest", "/versions/99", 404, ""},
			{"action on bad version", "/versions/x/enable", 400, "version"},
			{"action on missing version", "/versions/99/disable", 404, ""},
			{"unknown action", "/versions/1/explode", 404, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				method := "GET"
				if strings.Count(c.path, "/") == 3 {
					method = "POST"
				}
				wantError(t, ts.do(method, "/v1/projects/acme/secrets/db"+c.path, nil), c.status, c.field)
			})
		}
	})

	t.Run("action body with unknown field", func(t *testing.T) {
		wantError(t, ts.do("POST", "/v1/projects/acme/secrets/db/versions/3/enable", `{"force":true}`), 400, "force")
	})
}

func TestResolutions(t *testing.T) {
	ts := newTestServer(t)
	s := ts.createSecret("db", map[string]string{"password": "pw"})
	ctx := t.Context()
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 5 {
		at := base.Add(time.Duration(i) * time.Second)
		if err := ts.svc.RecordResolutions(ctx, []*secrets.Resolution{{
			ID: secrets.NewULID(at, nil), Project: "acme", SecretID: s.ID, SecretName: "db", Version: 1,
			Keys: []string{"password"}, Run: []byte(fmt.Sprintf(`{"run":"r%d"}`, i)), ResolvedAt: at,
		}}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("walk newest first", func(t *testing.T) {
		var runs []string
		token := ""
		for range 5 {
			var page api.ResolutionList
			ts.do("GET", "/v1/projects/acme/secrets/db/resolutions?limit=2&page_token="+token, nil).want(t, 200).decode(t, &page)
			for _, r := range page.Resolutions {
				if r.Version != 1 || strings.Join(r.Keys, ",") != "password" || r.ResolvedAt.IsZero() {
					t.Fatalf("resolution %+v", r)
				}
				runs = append(runs, string(r.Run))
			}
			if token = page.NextPageToken; token == "" {
				break
			}
		}
		want := `{"run":"r4"} {"run":"r3"} {"run":"r2"} {"run":"r1"} {"run":"r0"}`
		if strings.Join(runs, " ") != want {
			t.Fatalf("runs %v", runs)
		}
	})

	t.Run("missing secret", func(t *testing.T) {
		wantError(t, ts.do("GET", "/v1/projects/acme/secrets/nope/resolutions", nil), 404, "")
	})

	t.Run("empty", func(t *testing.T) {
		ts.createSecret("fresh", map[string]string{"k": "v"})
		r := ts.do("GET", "/v1/projects/acme/secrets/fresh/resolutions", nil).want(t, 200)
		if !strings.Contains(string(r.Body), `"resolutions":[]`) {
			t.Fatalf("body %s", r.Body)
		}
	})
}

func TestAPIKeys(t *testing.T) {
	ts := newTestServer(t)
	var created api.APIKeyCreated

	t.Run("create", func(t *testing.T) {
		ts.do("POST", "/v1/projects/acme/api-keys", map[string]any{"name": "ci", "scopes": []string{"secrets:read"}}).want(t, 201).decode(t, &created)
		if !strings.HasPrefix(created.ID, "key_") || created.Name != "ci" || !strings.HasPrefix(created.Key, "mbs_") ||
			fmt.Sprint(created.Scopes) != "[secrets:read]" || created.CreatedAt.IsZero() {
			t.Fatalf("created %+v", created)
		}
	})

	t.Run("the new key works", func(t *testing.T) {
		ts.serve(req{method: "GET", path: "/v1/projects/acme/secrets", key: created.Key}).want(t, 200)
	})

	t.Run("list never shows a key", func(t *testing.T) {
		r := ts.do("GET", "/v1/projects/acme/api-keys", nil).want(t, 200)
		var list api.APIKeyList
		r.decode(t, &list)
		if len(list.APIKeys) != 2 || strings.Contains(string(r.Body), "mbs_") || strings.Contains(string(r.Body), `"key"`) {
			t.Fatalf("list %s", r.Body)
		}
		for _, k := range list.APIKeys {
			if k.ID == created.ID && (k.LastUsedAt == nil || k.Name != "ci") {
				t.Fatalf("key %+v", k)
			}
		}
	})

	t.Run("last_used_at is null before use", func(t *testing.T) {
		var k api.APIKeyCreated
		ts.do("POST", "/v1/projects/acme/api-keys", map[string]any{"name": "unused"}).want(t, 201).decode(t, &k)
		r := ts.do("GET", "/v1/projects/acme/api-keys", nil).want(t, 200)
		if !strings.Contains(string(r.Body), `"id":"`+k.ID+`","name":"unused","scopes":["secrets:read"],"created_at":"`) ||
			!strings.Contains(string(r.Body), `"last_used_at":null`) {
			t.Fatalf("list %s", r.Body)
		}
	})

	t.Run("bad scope", func(t *testing.T) {
		wantError(t, ts.do("POST", "/v1/projects/acme/api-keys", map[string]any{"scopes": []string{"root"}}), 400, "scopes")
		wantError(t, ts.do("POST", "/v1/projects/acme/api-keys", `{"scopes":"secrets:read"}`), 400, "scopes")
	})

	t.Run("revoke stops the key at once", func(t *testing.T) {
		ts.do("DELETE", "/v1/projects/acme/api-keys/"+created.ID, nil).want(t, 204)
		r := ts.serve(req{method: "GET", path: "/v1/projects/acme/secrets", key: created.Key})
		wantError(t, r, 401, "")
		if r.Header.Get("WWW-Authenticate") == "" {
			t.Fatal("no WWW-Authenticate")
		}
	})

	t.Run("revoke missing", func(t *testing.T) {
		wantError(t, ts.do("DELETE", "/v1/projects/acme/api-keys/"+created.ID, nil), 404, "")
		wantError(t, ts.do("DELETE", "/v1/projects/acme/api-keys/nonsense", nil), 404, "")
	})
}
