package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/internal/testsupport"
	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func TestStatusTable(t *testing.T) {
	for _, c := range []struct {
		err     error
		status  int
		message string
	}{
		{secrets.FieldErrorf(secrets.Invalid, "name", "bad name"), 400, "bad name"},
		{secrets.Errorf(secrets.Unauthorized, "who"), 401, "who"},
		{secrets.Errorf(secrets.Forbidden, "no"), 403, "no"},
		{secrets.Errorf(secrets.NotFound, "gone"), 404, "gone"},
		{secrets.Errorf(secrets.Conflict, "taken"), 409, "taken"},
		{secrets.Errorf(secrets.PreconditionFailed, "stale"), 412, "stale"},
		{secrets.Errorf(secrets.TooLarge, "big"), 413, "big"},
		{secrets.Errorf(secrets.Unavailable, "down"), 503, "down"},
		{secrets.Errorf(secrets.Aborted, "raced on secret x"), 500, "internal error"},
		{secrets.Errorf(secrets.Integrity, "tampered"), 500, "internal error"},
		{secrets.Errorf(secrets.Internal, "bug detail"), 500, "internal error"},
		{errors.New("raw dependency error"), 500, "internal error"},
		{fmt.Errorf("wrapped: %w", secrets.Errorf(secrets.NotFound, "gone")), 404, "gone"},
	} {
		t.Run(c.err.Error(), func(t *testing.T) {
			status, body := errorJSON(c.err)
			if status != c.status || body.Error.Status != c.status || body.Error.Code != contractCodes[c.status] || body.Error.Message != c.message {
				t.Fatalf("got %d %+v", status, body)
			}
		})
	}

	t.Run("503 carries Retry-After and 500 logs the detail", func(t *testing.T) {
		ts := newTestServer(t)
		s := ts.h.(*server)
		for _, c := range []struct {
			err    error
			header string
		}{
			{secrets.Errorf(secrets.Unavailable, "down"), "Retry-After"},
			{secrets.Errorf(secrets.Unauthorized, "who"), "WWW-Authenticate"},
		} {
			w := httptest.NewRecorder()
			s.writeError(w, httptest.NewRequest("GET", "/", nil), c.err)
			if w.Header().Get(c.header) == "" {
				t.Fatalf("%v: no %s header", c.err, c.header)
			}
		}
		w := httptest.NewRecorder()
		s.writeError(w, httptest.NewRequest("GET", "/", nil), errors.New("detail-for-the-log-only"))
		if strings.Contains(w.Body.String(), "detail-for-the-log-only") || !strings.Contains(ts.logs.String(), "detail-for-the-log-only") {
			t.Fatalf("body %s, logs %s", w.Body, ts.logs)
		}
	})
}

func TestAuth(t *testing.T) {
	ts := newTestServer(t)
	ts.createSecret("db", map[string]string{"k": "v"})
	readKey := ts.newKey("acme", secrets.ScopeRead)
	writeKey := ts.newKey("acme", secrets.ScopeWrite)
	otherKey := ts.newKey("other", secrets.AllScopes...)
	adminKey := ts.newKey("acme", secrets.ScopeKeyAdmin)
	adminReadKey := ts.newKey("acme", secrets.ScopeKeyAdmin, secrets.ScopeRead)
	unknownKey := "mbs_" + strings.Repeat("a", 52)

	for _, c := range []struct {
		name         string
		method, path string
		header       string // the Authorization header
		body         any
		status       int
	}{
		{"no header", "GET", "/v1/projects/acme/secrets", "", nil, 401},
		{"not bearer", "GET", "/v1/projects/acme/secrets", "Basic " + ts.key, nil, 401},
		{"bearer without key", "GET", "/v1/projects/acme/secrets", "Bearer ", nil, 401},
		{"malformed key", "GET", "/v1/projects/acme/secrets", "Bearer mbs_short", nil, 401},
		{"unknown key", "GET", "/v1/projects/acme/secrets", "Bearer " + unknownKey, nil, 401},
		{"lowercase scheme", "GET", "/v1/projects/acme/secrets", "bearer " + ts.key, nil, 200},
		{"unknown key on a foreign project is 401 first", "GET", "/v1/projects/other/secrets/db", "Bearer " + unknownKey, nil, 401},
		{"foreign project", "GET", "/v1/projects/acme/secrets/db", "Bearer " + otherKey, nil, 404},
		{"foreign project list", "GET", "/v1/projects/acme/secrets", "Bearer " + otherKey, nil, 404},
		{"foreign project before scope", "DELETE", "/v1/projects/other/secrets/db", "Bearer " + readKey, nil, 404},
		{"read key may read", "GET", "/v1/projects/acme/secrets/db", "Bearer " + readKey, nil, 200},
		{"read key may list versions", "GET", "/v1/projects/acme/secrets/db/versions", "Bearer " + readKey, nil, 200},
		{"read key may not create", "POST", "/v1/projects/acme/secrets", "Bearer " + readKey, map[string]any{"name": "x", "values": map[string]string{"k": "v"}}, 403},
		{"read key may not update", "PATCH", "/v1/projects/acme/secrets/db", "Bearer " + readKey, map[string]any{"description": "x"}, 403},
		{"read key may not delete", "DELETE", "/v1/projects/acme/secrets/db", "Bearer " + readKey, nil, 403},
		{"read key may not disable", "POST", "/v1/projects/acme/secrets/db/versions/1/disable", "Bearer " + readKey, nil, 403},
		{"write key may not read", "GET", "/v1/projects/acme/secrets/db", "Bearer " + writeKey, nil, 403},
		{"write key may not list keys", "GET", "/v1/projects/acme/api-keys", "Bearer " + writeKey, nil, 403},
		{"read key may not create keys", "POST", "/v1/projects/acme/api-keys", "Bearer " + readKey, map[string]any{"name": "x"}, 403},
		{"write key may not revoke keys", "DELETE", "/v1/projects/acme/api-keys/key_01ARZ3NDEKTSV4RRFFQ69G5FAV", "Bearer " + writeKey, nil, 403},
		{"keys:admin alone may not grant secrets:write", "POST", "/v1/projects/acme/api-keys", "Bearer " + adminKey, map[string]any{"name": "x", "scopes": []string{"secrets:write"}}, 403},
		{"keys:admin alone may not grant the default secrets:read", "POST", "/v1/projects/acme/api-keys", "Bearer " + adminKey, map[string]any{"name": "x"}, 403},
		{"keys:admin may grant keys:admin", "POST", "/v1/projects/acme/api-keys", "Bearer " + adminKey, map[string]any{"name": "x", "scopes": []string{"keys:admin"}}, 201},
		{"keys:admin with read may grant read", "POST", "/v1/projects/acme/api-keys", "Bearer " + adminReadKey, map[string]any{"name": "x", "scopes": []string{"secrets:read"}}, 201},
		{"an unknown scope is 400 before 403", "POST", "/v1/projects/acme/api-keys", "Bearer " + adminKey, map[string]any{"name": "x", "scopes": []string{"root"}}, 400},
		{"write key may update", "PATCH", "/v1/projects/acme/secrets/db", "Bearer " + writeKey, map[string]any{"description": "x"}, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			rq := req{method: c.method, path: c.path, body: c.body, header: map[string]string{}}
			if c.header != "" {
				rq.header["Authorization"] = c.header
			}
			r := ts.serve(rq)
			if r.Status != c.status {
				t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
			}
			if c.status >= 400 {
				r.apiError(t)
			}
			if c.status == 401 && r.Header.Get("WWW-Authenticate") != `Bearer realm="mobius"` {
				t.Fatalf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// A 401 says what to send: no header is a missing key; another scheme is
// named as the problem, without echoing the header (it may hold a secret).
func TestAuthMessages(t *testing.T) {
	ts := newTestServer(t)
	for _, c := range []struct{ header, want string }{
		{"", "missing API key: send the header Authorization: Bearer <key>"},
		{"Basic " + ts.key, `the Authorization header must be "Bearer <key>" (an API key of the project)`},
		{ts.key, `the Authorization header must be "Bearer <key>" (an API key of the project)`},
	} {
		rq := req{method: "GET", path: "/v1/projects/acme/secrets", header: map[string]string{}}
		if c.header != "" {
			rq.header["Authorization"] = c.header
		}
		r := ts.serve(rq)
		if r.Status != 401 {
			t.Fatalf("%q: status %d", c.header, r.Status)
		}
		if e := r.apiError(t); e.Message != c.want {
			t.Errorf("%q: message %q, want %q", c.header, e.Message, c.want)
		}
		if strings.Contains(string(r.Body), ts.key) {
			t.Errorf("%q: the answer echoes the key", c.header)
		}
	}
}

// A key of one project learns nothing about another: a request there gets
// the very body a request for a missing object does.
func TestForeignProjectIndistinguishable(t *testing.T) {
	ts := newTestServer(t)
	otherKey := ts.newKey("other", secrets.AllScopes...)
	emptyKey := ts.newKey("empty", secrets.AllScopes...)
	var db api.Secret
	ts.serve(req{method: "POST", path: "/v1/projects/other/secrets", key: otherKey,
		body: map[string]any{"name": "db", "values": map[string]string{"k": "v"}}}).want(t, 201).decode(t, &db)
	var k api.APIKeyCreated
	ts.serve(req{method: "POST", path: "/v1/projects/other/api-keys", key: otherKey, body: map[string]any{}}).want(t, 201).decode(t, &k)

	for _, c := range []struct{ name, method, suffix string }{
		{"get by name", "GET", "/secrets/db"},
		{"get by ID", "GET", "/secrets/" + db.ID},
		{"update", "PATCH", "/secrets/db"},
		{"delete", "DELETE", "/secrets/db"},
		{"versions", "GET", "/secrets/db/versions"},
		{"version", "GET", "/secrets/db/versions/1"},
		{"enable", "POST", "/secrets/db/versions/1/enable"},
		{"destroy", "POST", "/secrets/db/versions/1/destroy"},
		{"resolutions", "GET", "/secrets/db/resolutions"},
		{"revoke key", "DELETE", "/api-keys/" + k.ID},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body any
			if c.method == "PATCH" {
				body = map[string]any{"description": "x"}
			}
			// acme's key on other's existing object, and on a project that
			// does not exist; "empty"'s own key on its own missing object.
			foreign := ts.serve(req{method: c.method, path: "/v1/projects/other" + c.suffix, key: ts.key, body: body}).want(t, 404)
			missing := ts.serve(req{method: c.method, path: "/v1/projects/empty" + strings.Replace(c.suffix, "other", "empty", 1), key: emptyKey, body: body}).want(t, 404)
			nowhere := ts.serve(req{method: c.method, path: "/v1/projects/nowhere" + c.suffix, key: ts.key, body: body}).want(t, 404)
			replace := func(b []byte, project string) string {
				return strings.ReplaceAll(string(b), `\"`+project+`\"`, `\"P\"`)
			}
			if replace(foreign.Body, "other") != replace(missing.Body, "empty") || replace(nowhere.Body, "nowhere") != replace(missing.Body, "empty") {
				t.Fatalf("bodies differ:\nforeign %s\nmissing %s\nnowhere %s", foreign.Body, missing.Body, nowhere.Body)
			}
		})
	}

	t.Run("byte-identical for the same path", func(t *testing.T) {
		// other's own key asking for a missing secret, and acme's key
		// asking for other's existing and missing secrets.
		own := ts.serve(req{method: "GET", path: "/v1/projects/other/secrets/missing", key: otherKey}).want(t, 404)
		foreignMissing := ts.serve(req{method: "GET", path: "/v1/projects/other/secrets/missing", key: ts.key}).want(t, 404)
		if !bytes.Equal(own.Body, foreignMissing.Body) {
			t.Fatalf("own %s\nforeign %s", own.Body, foreignMissing.Body)
		}
		foreignExisting := ts.serve(req{method: "GET", path: "/v1/projects/other/secrets/db", key: ts.key}).want(t, 404)
		ownMissingDB := ts.serve(req{method: "GET", path: "/v1/projects/empty/secrets/db", key: emptyKey}).want(t, 404)
		if strings.ReplaceAll(string(foreignExisting.Body), "other", "empty") != string(ownMissingDB.Body) {
			t.Fatalf("foreign %s\nmissing %s", foreignExisting.Body, ownMissingDB.Body)
		}
	})

	t.Run("collections", func(t *testing.T) {
		a := ts.serve(req{method: "GET", path: "/v1/projects/other/secrets", key: ts.key}).want(t, 404)
		b := ts.serve(req{method: "GET", path: "/v1/projects/other/secrets", key: emptyKey}).want(t, 404)
		if !bytes.Equal(a.Body, b.Body) {
			t.Fatalf("%s\n%s", a.Body, b.Body)
		}
	})
}

func TestRouting(t *testing.T) {
	ts := newTestServer(t)
	for _, c := range []struct {
		name, method, path string
		status             int
		allow              string
	}{
		{"unknown route", "GET", "/v2/nothing", 404, ""},
		{"unknown under v1", "GET", "/v1/projects/acme/widgets", 404, ""},
		{"wrong method on collection", "PUT", "/v1/projects/acme/secrets", 405, "GET, HEAD, POST"},
		{"wrong method on secret", "POST", "/v1/projects/acme/secrets/db", 405, "DELETE, GET, HEAD, PATCH"},
		{"GET on an action", "GET", "/v1/projects/acme/secrets/db/versions/1/enable", 405, "POST"},
		{"wrong method on api key", "GET", "/v1/projects/acme/api-keys/key_x", 405, "DELETE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ts.serve(req{method: c.method, path: c.path, key: ts.key})
			wantError(t, r, c.status, "")
			if got := r.Header.Get("Allow"); got != c.allow {
				t.Fatalf("Allow %q, want %q", got, c.allow)
			}
		})
	}

	t.Run("healthz needs no key", func(t *testing.T) {
		r := ts.serve(req{method: "GET", path: "/healthz"}).want(t, 200)
		if strings.TrimSpace(string(r.Body)) != `{"status":"ok"}` {
			t.Fatalf("body %s", r.Body)
		}
	})
	t.Run("openapi needs no key", func(t *testing.T) {
		r := ts.serve(req{method: "GET", path: "/openapi.json"}).want(t, 200)
		if !strings.Contains(string(r.Body), "openapi") {
			t.Fatalf("body %.100s", r.Body)
		}
	})
	t.Run("docs need no key", func(t *testing.T) {
		ts.serve(req{method: "GET", path: "/docs"}).want(t, 200)
		ts.serve(req{method: "GET", path: "/docs/"}).want(t, 200)
	})
}

func TestBadRequests(t *testing.T) {
	ts := newTestServer(t)
	ts.createSecret("db", map[string]string{"k": "v"})
	other := ts.newKey("other", secrets.AllScopes...)
	for _, c := range []struct {
		name, method, path string
		body               any
		header             map[string]string
		field              string
	}{
		{"bad name", "POST", "/v1/projects/acme/secrets", map[string]any{"name": "no spaces", "values": map[string]string{"k": "v"}}, nil, "name"},
		{"name starting with dash", "POST", "/v1/projects/acme/secrets", map[string]any{"name": "-x", "values": map[string]string{"k": "v"}}, nil, "name"},
		{"name too long", "POST", "/v1/projects/acme/secrets", map[string]any{"name": strings.Repeat("a", 129), "values": map[string]string{"k": "v"}}, nil, "name"},
		{"missing name", "POST", "/v1/projects/acme/secrets", map[string]any{"values": map[string]string{"k": "v"}}, nil, "name"},
		{"ID-shaped name", "POST", "/v1/projects/acme/secrets", map[string]any{"name": "sec_01ARZ3NDEKTSV4RRFFQ69G5FAV", "values": map[string]string{"k": "v"}}, nil, "name"},
		{"ID-shaped rename", "PATCH", "/v1/projects/acme/secrets/db", map[string]any{"name": "sec_01ARZ3NDEKTSV4RRFFQ69G5FAV"}, nil, "name"},
		{"name of wrong type", "POST", "/v1/projects/acme/secrets", `{"name":5,"values":{"k":"v"}}`, nil, "name"},
		{"bad key", "POST", "/v1/projects/acme/secrets", map[string]any{"name": "x", "values": map[string]string{"bad key": "v"}}, nil, "values"},
		{"empty values", "POST", "/v1/projects/acme/secrets", map[string]any{"name": "x", "values": map[string]string{}}, nil, "values"},
		{"missing values", "POST", "/v1/projects/acme/secrets", map[string]any{"name": "x"}, nil, "values"},
		{"null values", "POST", "/v1/projects/acme/secrets", `{"name":"x","values":null}`, nil, "values"},
		{"empty values on update", "PATCH", "/v1/projects/acme/secrets/db", `{"values":{}}`, nil, "values"},
		{"number value", "POST", "/v1/projects/acme/secrets", `{"name":"x","values":{"k":1234}}`, nil, "values"},
		{"object value", "PATCH", "/v1/projects/acme/secrets/db", `{"values":{"k":{"a":"b"}}}`, nil, "values"},
		{"null value", "POST", "/v1/projects/acme/secrets", `{"name":"x","values":{"k":null}}`, nil, "values"},
		{"values an array", "POST", "/v1/projects/acme/secrets", `{"name":"x","values":["a"]}`, nil, "values"},
		{"values a string", "POST", "/v1/projects/acme/secrets", `{"name":"x","values":"a"}`, nil, "values"},
		{"unknown field", "POST", "/v1/projects/acme/secrets", `{"name":"x","values":{"k":"v"},"color":"red"}`, nil, "color"},
		{"unknown field on update", "PATCH", "/v1/projects/acme/secrets/db", `{"nmae":"y"}`, nil, "nmae"},
		{"unknown field on key", "POST", "/v1/projects/acme/api-keys", `{"name":"x","admin":true}`, nil, "admin"},
		{"description too long", "POST", "/v1/projects/acme/secrets", map[string]any{"name": "x", "description": strings.Repeat("d", 1025), "values": map[string]string{"k": "v"}}, nil, "description"},
		{"description too long on update", "PATCH", "/v1/projects/acme/secrets/db", map[string]any{"description": strings.Repeat("d", 1025)}, nil, "description"},
		{"description with a terminal escape", "POST", "/v1/projects/acme/secrets", map[string]any{"name": "x", "description": "ok\x1b[1A\x1b]52;c;cHduZWQ=\a", "values": map[string]string{"k": "v"}}, nil, "description"},
		{"description with a C1 control on update", "PATCH", "/v1/projects/acme/secrets/db", map[string]any{"description": "ok\u009b2K"}, nil, "description"},
		{"description with DEL", "PATCH", "/v1/projects/acme/secrets/db", map[string]any{"description": "a\x7fb"}, nil, "description"},
		{"key name with a C1 control", "POST", "/v1/projects/acme/api-keys", map[string]any{"name": "ci\u0085"}, nil, "name"},
		{"duplicate value key", "POST", "/v1/projects/acme/secrets", `{"name":"x","values":{"a":"c","a":"d"}}`, nil, "values"},
		{"duplicate value key on update", "PATCH", "/v1/projects/acme/secrets/db", `{"values":{"a":"c","b":"x","a":"d"}}`, nil, "values"},
		{"invalid UTF-8 in a value", "POST", "/v1/projects/acme/secrets", "{\"name\":\"x\",\"values\":{\"a\":\"\xff\"}}", nil, "values"},
		{"invalid UTF-8 in a description", "PATCH", "/v1/projects/acme/secrets/db", "{\"description\":\"caf\xe9\"}", nil, "description"},
		{"not JSON", "POST", "/v1/projects/acme/secrets", `{"name":`, nil, ""},
		{"syntax error", "POST", "/v1/projects/acme/secrets", `{"name" "x"}`, nil, ""},
		{"trailing data", "POST", "/v1/projects/acme/secrets", `{"name":"x","values":{"k":"v"}} {}`, nil, ""},
		{"trailing garbage", "PATCH", "/v1/projects/acme/secrets/db", `{"description":"x"}garbage`, nil, ""},
		{"empty body", "POST", "/v1/projects/acme/secrets", "", nil, ""},
		{"array body", "POST", "/v1/projects/acme/secrets", `[1]`, nil, ""},
		{"wrong content type", "POST", "/v1/projects/acme/secrets", `{"name":"x","values":{"k":"v"}}`, map[string]string{"Content-Type": "text/plain"}, "Content-Type"},
		{"limit zero", "GET", "/v1/projects/acme/secrets?limit=0", nil, nil, "limit"},
		{"limit too big", "GET", "/v1/projects/acme/secrets?limit=1001", nil, nil, "limit"},
		{"limit not a number", "GET", "/v1/projects/acme/secrets?limit=ten", nil, nil, "limit"},
		{"limit negative on versions", "GET", "/v1/projects/acme/secrets/db/versions?limit=-1", nil, nil, "limit"},
		{"limit on resolutions", "GET", "/v1/projects/acme/secrets/db/resolutions?limit=1.5", nil, nil, "limit"},
		{"bad prefix", "GET", "/v1/projects/acme/secrets?prefix=a/b", nil, nil, "prefix"},
		{"garbage page token", "GET", "/v1/projects/acme/secrets?page_token=garbage", nil, nil, "page_token"},
		{"bad If-Match", "PATCH", "/v1/projects/acme/secrets/db", map[string]any{"description": "x"}, map[string]string{"If-Match": "7"}, "If-Match"},
		{"empty Idempotency-Key", "POST", "/v1/projects/acme/secrets", map[string]any{"name": "x", "values": map[string]string{"k": "v"}}, map[string]string{"Idempotency-Key": ""}, "Idempotency-Key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ts.serve(req{method: c.method, path: c.path, key: ts.key, body: c.body, header: c.header})
			wantError(t, r, 400, c.field)
		})
	}

	t.Run("keys are 1-128 characters", func(t *testing.T) {
		wantError(t, ts.do("POST", "/v1/projects/acme/secrets", map[string]any{"name": "x", "values": map[string]string{strings.Repeat("k", 129): "v"}}), 400, "values")
		wantError(t, ts.do("POST", "/v1/projects/acme/secrets", map[string]any{"name": "x", "values": map[string]string{"": "v"}}), 400, "values")
	})

	t.Run("page tokens are bound", func(t *testing.T) {
		for _, n := range []string{"a1", "a2", "a3", "b1"} {
			ts.createSecret(n, map[string]string{"k": "v"})
		}
		ts.serve(req{method: "POST", path: "/v1/projects/other/secrets", key: other, body: map[string]any{"name": "a1", "values": map[string]string{"k": "v"}}}).want(t, 201)
		ts.serve(req{method: "POST", path: "/v1/projects/other/secrets", key: other, body: map[string]any{"name": "a2", "values": map[string]string{"k": "v"}}}).want(t, 201)
		for range 2 {
			ts.do("PATCH", "/v1/projects/acme/secrets/a1", map[string]any{"values": map[string]string{"k": "w"}}).want(t, 200)
			ts.do("PATCH", "/v1/projects/acme/secrets/a2", map[string]any{"values": map[string]string{"k": "w"}}).want(t, 200)
		}
		var secPage api.SecretList
		ts.do("GET", "/v1/projects/acme/secrets?prefix=a&limit=1", nil).want(t, 200).decode(t, &secPage)
		var verPage api.VersionList
		ts.do("GET", "/v1/projects/acme/secrets/a1/versions?limit=1", nil).want(t, 200).decode(t, &verPage)
		if secPage.NextPageToken == "" || verPage.NextPageToken == "" {
			t.Fatal("no tokens")
		}
		tok := secPage.NextPageToken
		flipped := []byte(tok)
		flipped[len(flipped)/2] ^= 1
		if flipped[len(flipped)/2] == '_' || flipped[len(flipped)/2] == '-' {
			flipped[len(flipped)/2] = 'A'
		}
		for _, c := range []struct{ name, path, key string }{
			{"forged", "/v1/projects/acme/secrets?prefix=a&page_token=" + string(flipped), ts.key},
			{"truncated", "/v1/projects/acme/secrets?prefix=a&page_token=" + tok[:len(tok)-4], ts.key},
			{"another prefix", "/v1/projects/acme/secrets?prefix=b&page_token=" + tok, ts.key},
			{"no prefix", "/v1/projects/acme/secrets?page_token=" + tok, ts.key},
			{"another project", "/v1/projects/other/secrets?prefix=a&page_token=" + tok, other},
			{"secrets token on versions", "/v1/projects/acme/secrets/a1/versions?page_token=" + tok, ts.key},
			{"versions token on another secret", "/v1/projects/acme/secrets/a2/versions?page_token=" + verPage.NextPageToken, ts.key},
			{"versions token on resolutions", "/v1/projects/acme/secrets/a1/resolutions?page_token=" + verPage.NextPageToken, ts.key},
			{"versions token on secrets", "/v1/projects/acme/secrets?page_token=" + verPage.NextPageToken, ts.key},
		} {
			t.Run(c.name, func(t *testing.T) {
				wantError(t, ts.serve(req{method: "GET", path: c.path, key: c.key}), 400, "page_token")
			})
		}
		t.Run("a good token still works", func(t *testing.T) {
			ts.do("GET", "/v1/projects/acme/secrets?prefix=a&page_token="+tok, nil).want(t, 200)
			ts.do("GET", "/v1/projects/acme/secrets/a1/versions?limit=1&page_token="+verPage.NextPageToken, nil).want(t, 200)
		})
	})

	t.Run("accepts application/json with charset and no content type", func(t *testing.T) {
		ts.serve(req{method: "PATCH", path: "/v1/projects/acme/secrets/db", key: ts.key, body: `{"description":"a"}`,
			header: map[string]string{"Content-Type": "application/json; charset=utf-8"}}).want(t, 200)
		r := httptest.NewRequest("PATCH", "/v1/projects/acme/secrets/db", strings.NewReader(`{"description":"b"}`))
		r.Header.Set("Authorization", "Bearer "+ts.key)
		w := httptest.NewRecorder()
		ts.h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("status %d %s", w.Code, w.Body)
		}
	})
}

func TestTooLarge(t *testing.T) {
	ts := newTestServer(t)
	ts.createSecret("db", map[string]string{"k": "v"})
	big := `{"name":"x","values":{"k":"` + strings.Repeat("a", DefaultMaxBodyBytes) + `"}}`

	t.Run("body over 1 MiB with Content-Length", func(t *testing.T) {
		wantError(t, ts.do("POST", "/v1/projects/acme/secrets", big), 413, "")
	})
	t.Run("body over 1 MiB without Content-Length", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/v1/projects/acme/secrets", io.MultiReader(strings.NewReader(big)))
		r.ContentLength = -1
		r.Header.Set("Authorization", "Bearer "+ts.key)
		w := httptest.NewRecorder()
		ts.h.ServeHTTP(w, r)
		if w.Code != 413 {
			t.Fatalf("status %d %s", w.Code, w.Body)
		}
	})
	t.Run("canonical plaintext over 64 KiB", func(t *testing.T) {
		v := map[string]string{"k": strings.Repeat("a", 64<<10)}
		wantError(t, ts.do("POST", "/v1/projects/acme/secrets", map[string]any{"name": "x", "values": v}), 413, "values")
		wantError(t, ts.do("PATCH", "/v1/projects/acme/secrets/db", map[string]any{"values": v}), 413, "values")
	})
	t.Run("canonical plaintext just under 64 KiB", func(t *testing.T) {
		v := map[string]string{"k": strings.Repeat("a", 64<<10-len(`{"k":""}`))}
		ts.do("PATCH", "/v1/projects/acme/secrets/db", map[string]any{"values": v}).want(t, 200)
	})
}

func TestIfMatch(t *testing.T) {
	ts := newTestServer(t)
	etagOf := func(t *testing.T) string {
		t.Helper()
		return ts.do("GET", "/v1/projects/acme/secrets/db", nil).want(t, 200).Header.Get("ETag")
	}
	ts.createSecret("db", map[string]string{"k": "v"})
	patch := func(ifMatch string) *response {
		return ts.serve(req{method: "PATCH", path: "/v1/projects/acme/secrets/db", key: ts.key,
			body: map[string]any{"description": "d"}, header: map[string]string{"If-Match": ifMatch}})
	}

	t.Run("current ETag", func(t *testing.T) {
		cur := etagOf(t)
		r := patch(cur).want(t, 200)
		if r.Header.Get("ETag") == cur || r.Header.Get("ETag") == "" {
			t.Fatalf("ETag %q after %q", r.Header.Get("ETag"), cur)
		}
	})
	t.Run("stale ETag", func(t *testing.T) {
		wantError(t, patch(`"1"`), 412, "")
	})
	t.Run("star", func(t *testing.T) {
		patch("*").want(t, 200)
	})
	t.Run("list holding the current ETag", func(t *testing.T) {
		patch(`"1", `+etagOf(t)+`, "99"`).want(t, 200)
	})
	t.Run("list without it", func(t *testing.T) {
		wantError(t, patch(`"1", "2"`), 412, "")
	})
	t.Run("weak ETag never matches", func(t *testing.T) {
		wantError(t, patch("W/"+etagOf(t)), 412, "")
	})
	t.Run("on a missing secret", func(t *testing.T) {
		wantError(t, ts.serve(req{method: "PATCH", path: "/v1/projects/acme/secrets/nope", key: ts.key,
			body: map[string]any{"description": "d"}, header: map[string]string{"If-Match": `"1", "2"`}}), 404, "")
	})
	t.Run("version actions", func(t *testing.T) {
		ts.do("PATCH", "/v1/projects/acme/secrets/db", map[string]any{"values": map[string]string{"k": "w"}}).want(t, 200)
		wantError(t, ts.serve(req{method: "POST", path: "/v1/projects/acme/secrets/db/versions/1/enable", key: ts.key,
			header: map[string]string{"If-Match": `"1"`}}), 412, "")
		cur := etagOf(t)
		r := ts.serve(req{method: "POST", path: "/v1/projects/acme/secrets/db/versions/1/enable", key: ts.key,
			header: map[string]string{"If-Match": cur}}).want(t, 200)
		if r.Header.Get("ETag") == cur {
			t.Fatal("ETag did not move")
		}
	})
	t.Run("delete", func(t *testing.T) {
		wantError(t, ts.serve(req{method: "DELETE", path: "/v1/projects/acme/secrets/db", key: ts.key,
			header: map[string]string{"If-Match": `"1"`}}), 412, "")
		ts.serve(req{method: "DELETE", path: "/v1/projects/acme/secrets/db", key: ts.key,
			header: map[string]string{"If-Match": etagOf(t)}}).want(t, 204)
	})
}

func TestPanicIsA500(t *testing.T) {
	logs := &testsupport.SyncBuffer{}
	h := NewHandler(nil, Options{Logger: newJSONLogger(logs)}) // a nil service panics on first use
	r := httptest.NewRequest("GET", "/v1/projects/acme/secrets", nil)
	r.Header.Set("Authorization", "Bearer mbs_"+strings.Repeat("a", 52))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := &response{Status: w.Code, Header: w.Header(), Body: w.Body.Bytes()}
	e := wantError(t, res, 500, "")
	if e.Message != "internal error" || !strings.Contains(logs.String(), "panic serving request") {
		t.Fatalf("message %q logs %s", e.Message, logs)
	}
}
