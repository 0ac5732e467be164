package reliability

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// route is one authenticated route of pkg/httpapi/routes.go, with the scope
// it needs and a body that would be accepted.
type route struct {
	method, pattern, scope string
	body                   any
}

var apiRoutes = []route{
	{"POST", "/v1/projects/{project}/secrets", secrets.ScopeWrite, map[string]any{"name": "fresh", "values": map[string]string{"k": "v"}}},
	{"GET", "/v1/projects/{project}/secrets", secrets.ScopeRead, nil},
	{"GET", "/v1/projects/{project}/secrets/{secret}", secrets.ScopeRead, nil},
	{"PATCH", "/v1/projects/{project}/secrets/{secret}", secrets.ScopeWrite, map[string]any{"description": "changed"}},
	{"DELETE", "/v1/projects/{project}/secrets/{secret}", secrets.ScopeWrite, nil},
	{"GET", "/v1/projects/{project}/secrets/{secret}/versions", secrets.ScopeRead, nil},
	{"GET", "/v1/projects/{project}/secrets/{secret}/versions/{version}", secrets.ScopeRead, nil},
	{"POST", "/v1/projects/{project}/secrets/{secret}/versions/{version}/enable", secrets.ScopeWrite, map[string]any{}},
	{"POST", "/v1/projects/{project}/secrets/{secret}/versions/{version}/disable", secrets.ScopeWrite, map[string]any{}},
	{"POST", "/v1/projects/{project}/secrets/{secret}/versions/{version}/destroy", secrets.ScopeWrite, map[string]any{}},
	{"GET", "/v1/projects/{project}/secrets/{secret}/resolutions", secrets.ScopeRead, nil},
	{"POST", "/v1/projects/{project}/api-keys", secrets.ScopeKeyAdmin, map[string]any{"name": "k"}},
	{"GET", "/v1/projects/{project}/api-keys", secrets.ScopeKeyAdmin, nil},
	{"DELETE", "/v1/projects/{project}/api-keys/{id}", secrets.ScopeKeyAdmin, nil},
}

func (r route) path(project, secret, version, id string) string {
	return strings.NewReplacer("{project}", project, "{secret}", secret, "{version}", version, "{id}", id).Replace(r.pattern)
}

// sameAnswer fails unless a and b have the same status, headers (but
// X-Request-Id) and body, byte for byte.
func sameAnswer(t *testing.T, what string, a, b *response) {
	t.Helper()
	if a.Status != b.Status || string(a.Body) != string(b.Body) {
		t.Errorf("%s: answers differ:\n  %d %s\n  %d %s", what, a.Status, a.Body, b.Status, b.Body)
		return
	}
	for _, h := range []http.Header{a.Header, b.Header} {
		h.Del("X-Request-Id")
	}
	for k := range a.Header {
		if !slices.Equal(a.Header[k], b.Header[k]) {
			t.Errorf("%s: header %s differs: %q vs %q", what, k, a.Header[k], b.Header[k])
		}
	}
	for k := range b.Header {
		if _, ok := a.Header[k]; !ok {
			t.Errorf("%s: header %s only on one answer", what, k)
		}
	}
}

// Every route × every kind of bad credential gives exactly the status the
// contract names, and another project's object cannot be told apart from a
// missing one.
func TestTenantIsolationMatrix(t *testing.T) {
	e := newBoltEnv(t)
	ctx := context.Background()
	sec := e.create("db", map[string]string{"password": "pw-1"})
	e.rotate("db", map[string]string{"password": "pw-2"})
	kid, _, err := e.svc.CreateAPIKey(ctx, "acme", "victim", []string{secrets.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	otherKey := e.newKey("other", secrets.AllScopes...)
	revoked, revokedKey, err := e.svc.CreateAPIKey(ctx, "acme", "revoked", secrets.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	e.do("DELETE", "/v1/projects/acme/api-keys/"+revoked.ID, nil).want(t, 204)
	e.do("GET", "/v1/projects/acme/secrets/"+sec.ID, nil).want(t, 200)

	lacking := map[string]string{}
	for _, s := range secrets.AllScopes {
		var rest []string
		for _, o := range secrets.AllScopes {
			if o != s {
				rest = append(rest, o)
			}
		}
		lacking[s] = e.newKey("acme", rest...)
	}
	const missingSecret = "sec_01J00000000000000000000000"
	const missingKey = "key_01J00000000000000000000000"
	creds := []struct {
		name, key string
		status    int
	}{
		{"another project's key", otherKey, 404},
		{"a revoked key", revokedKey, 401},
		{"a key without the scope", "", 403},
		{"no key", "", 401},
		{"a malformed key", "mbs_not-a-real-key", 401},
	}
	cells := 0
	for _, r := range apiRoutes {
		p := r.path("acme", sec.ID, "1", kid.ID)
		for _, c := range creds {
			key := c.key
			if c.name == "a key without the scope" {
				key = lacking[r.scope]
			}
			got := e.serve(r.method, p, key, r.body)
			cells++
			if got.Status != c.status {
				t.Errorf("%s %s with %s: %d, want %d: %s", r.method, r.pattern, c.name, got.Status, c.status, got.Body)
			}
			if strings.Contains(string(got.Body), sec.ID) && c.status != 404 {
				t.Errorf("%s %s with %s: the answer names the secret", r.method, r.pattern, c.name)
			}
		}
		// Another project's object, through the other project's own path,
		// answers exactly as a missing one.
		if strings.Contains(r.pattern, "{secret}") || strings.Contains(r.pattern, "{id}") {
			real := e.serve(r.method, r.path("other", sec.ID, "1", kid.ID), otherKey, r.body)
			missing := e.serve(r.method, r.path("other", missingSecret, "1", missingKey), otherKey, r.body)
			if real.Status != 404 {
				t.Errorf("%s %s: acme's object through project other: %d, want 404", r.method, r.pattern, real.Status)
			}
			// IDs in the path may be echoed: compare with them masked.
			real.Body = []byte(strings.NewReplacer(sec.ID, "ID", kid.ID, "ID").Replace(string(real.Body)))
			missing.Body = []byte(strings.NewReplacer(missingSecret, "ID", missingKey, "ID").Replace(string(missing.Body)))
			sameAnswer(t, r.method+" "+r.pattern+" (other's object vs missing)", real, missing)
			cells++
		}
		// And acme's path with the other project's key: identical for an
		// existing and a missing object.
		real := e.serve(r.method, p, otherKey, r.body)
		missing := e.serve(r.method, r.path("acme", missingSecret, "1", missingKey), otherKey, r.body)
		real.Body = []byte(strings.NewReplacer(sec.ID, "ID", kid.ID, "ID").Replace(string(real.Body)))
		missing.Body = []byte(strings.NewReplacer(missingSecret, "ID", missingKey, "ID").Replace(string(missing.Body)))
		sameAnswer(t, r.method+" "+r.pattern+" (acme path, other key: existing vs missing)", real, missing)
		cells++
	}
	// Nothing was changed by any of the refused requests.
	e.do("GET", "/v1/projects/acme/secrets/"+sec.ID, nil).want(t, 200)
	var vl struct{ Versions []struct{ State string } }
	e.do("GET", "/v1/projects/acme/secrets/db/versions", nil).want(t, 200).decode(t, &vl)
	if len(vl.Versions) != 2 || vl.Versions[0].State != "ENABLED" || vl.Versions[1].State != "DISABLED" {
		t.Errorf("versions changed by refused requests: %+v", vl.Versions)
	}
	e.serve("GET", "/v1/projects/acme/secrets", e.key, nil).want(t, 200)
	t.Logf("tenant isolation: %d routes, %d matrix cells checked", len(apiRoutes), cells)
}
