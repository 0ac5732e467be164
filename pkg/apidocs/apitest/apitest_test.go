package apitest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/apidocs"
	"github.com/mobius-secrets/mobius/pkg/apidocs/apitest"
)

// recorder is a testing.TB that records failures instead of failing, to
// prove that the validator reports what it should.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Error(args ...any) { r.Errorf("%s", fmt.Sprint(args...)) }

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.TB.FailNow()
}

func (r *recorder) failures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.errors)
}

const (
	secretPath = "/v1/projects/acme/secrets/openai"
	bearer     = "Bearer mbs_examplenotarealkeyexamplenotarealkeyexamplenotarealk"
	secretJSON = `{"id":"sec_01JAZ3K5V7W8X9Y0A1B2C3D4E5","name":"openai","description":"OpenAI key used by the summarizer.",` +
		`"project":"acme","current_version":2,"latest_version":2,"pending_version":null,"previous_version":1,"previous_until":"2025-03-02T15:05:00Z",` +
		`"previous_grace_seconds":3600,"rename_alias_seconds":604800,"aliases":[],"labels":{"env":"prod"},"expires_at":null,"rotate_by":"2025-06-01T00:00:00Z","created_at":"2025-01-15T09:30:00Z","updated_at":"2025-03-02T14:05:00Z"}`
	versionJSON = `{"version":1,"state":"DESTROYED","sha256":"a606b10e9324bdcd280af8bf49ca7fd656dad2b25b48d8f7a02a360659980956","keys":["api_key"],` +
		`"created_at":"2025-01-15T09:30:00Z","state_changed_at":"2025-04-01T08:00:00Z","last_resolved_at":null}`
	notFoundJSON = `{"error":{"code":"Not Found","status":404,"message":"secret \"openai\" not found"}}`
	grantJSON    = `{"id":"grt_01JNQ7Z8K2M4P6R8T0V2X4Z6B8","project":"acme","secrets":[{"id":"sec_01JAZ3K5V7W8X9Y0A1B2C3D4E5","name":"openai"}],` +
		`"run":null,"key_id":"key_01JB0R5T7V9X1Z3B5D7F9H1K3M","created_at":"2025-03-02T14:06:58Z","expires_at":"2025-03-02T14:16:58Z"}`
	grantString = "mbg_eyJ2IjoxLCJpZCI6ImV4YW1wbGUtbm90LWEtcmVhbC1ncmFudCJ9.ZXhhbXBsZS1ub3QtYS1yZWFsLWdyYW50LW1hYy0hISE"
)

// respond returns a fake server that answers every request the same way.
func respond(status int, header map[string]string, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		if body != "" && w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	})
}

func TestWrap(t *testing.T) {
	jsonETag := map[string]string{"ETag": `"4"`}
	cases := []struct {
		name    string
		method  string
		path    string
		auth    bool
		body    string
		handler http.Handler
		want    string // a substring of the reported failure; "" for none
	}{
		{name: "conforming secret", method: "GET", path: secretPath, auth: true,
			handler: respond(200, jsonETag, secretJSON)},
		{name: "secret by ID, null current version", method: "GET", path: "/v1/projects/acme/secrets/sec_01JAZ3K5V7W8X9Y0A1B2C3D4E5", auth: true,
			handler: respond(200, jsonETag, strings.Replace(secretJSON, `"current_version":2`, `"current_version":null`, 1))},
		{name: "secret missing a field", method: "GET", path: secretPath, auth: true,
			handler: respond(200, jsonETag, strings.Replace(secretJSON, `"latest_version":2,`, "", 1)),
			want:    "latest_version"},
		{name: "secret missing its aliases", method: "GET", path: secretPath, auth: true,
			handler: respond(200, jsonETag, strings.Replace(secretJSON, `"aliases":[],`, "", 1)),
			want:    "aliases"},
		{name: "secret with a grace out of range", method: "GET", path: secretPath, auth: true,
			handler: respond(200, jsonETag, strings.Replace(secretJSON, `"previous_grace_seconds":3600`, `"previous_grace_seconds":604801`, 1)),
			want:    "previous_grace_seconds"},
		{name: "secret leaking values", method: "GET", path: secretPath, auth: true,
			handler: respond(200, jsonETag, strings.Replace(secretJSON, `}`, `,"values":{"api_key":"sk-example-not-a-real-key"}}`, 1)),
			want:    "values"},
		{name: "secret without ETag", method: "GET", path: secretPath, auth: true,
			handler: respond(200, nil, secretJSON), want: "ETag"},
		{name: "secret with a malformed ID", method: "GET", path: secretPath, auth: true,
			handler: respond(200, jsonETag, strings.Replace(secretJSON, "sec_01JAZ", "sec_01jaz", 1)), want: "id"},
		{name: "undocumented status", method: "GET", path: secretPath, auth: true,
			handler: respond(500, nil, `{"error":{"code":"Internal Server Error","status":500,"message":"internal error"}}`),
			want:    "status is not supported"},
		{name: "documented not found", method: "GET", path: secretPath, auth: true,
			handler: respond(404, nil, notFoundJSON)},
		{name: "error envelope of the wrong shape", method: "GET", path: secretPath, auth: true,
			handler: respond(404, nil, `{"message":"not found"}`), want: "error"},
		{name: "text error instead of JSON", method: "GET", path: secretPath, auth: true,
			handler: respond(404, map[string]string{"Content-Type": "text/plain; charset=utf-8"}, "404 page not found\n"), want: "Content-Type"},
		{name: "no credential, answered 401", method: "GET", path: secretPath,
			handler: respond(401, nil, `{"error":{"code":"Unauthorized","status":401,"message":"an API key is required"}}`)},
		{name: "no credential, answered 200", method: "GET", path: secretPath,
			handler: respond(200, jsonETag, secretJSON), want: "does not conform"},
		{name: "create", method: "POST", path: "/v1/projects/acme/secrets", auth: true,
			body:    `{"name":"openai","values":{"api_key":"sk-example-not-a-real-key"}}`,
			handler: respond(201, map[string]string{"ETag": `"1"`, "Location": secretPath}, secretJSON)},
		{name: "create without Location", method: "POST", path: "/v1/projects/acme/secrets", auth: true,
			body:    `{"name":"openai","values":{"api_key":"sk-example-not-a-real-key"}}`,
			handler: respond(201, jsonETag, secretJSON), want: "Location"},
		{name: "empty values, answered 400", method: "POST", path: "/v1/projects/acme/secrets", auth: true,
			body:    `{"name":"openai","values":{}}`,
			handler: respond(400, nil, `{"error":{"code":"Bad Request","status":400,"message":"values must hold at least one key","field":"values"}}`)},
		{name: "empty values, answered 201", method: "POST", path: "/v1/projects/acme/secrets", auth: true,
			body:    `{"name":"openai","values":{}}`,
			handler: respond(201, map[string]string{"ETag": `"1"`, "Location": secretPath}, secretJSON), want: "does not conform"},
		{name: "version action", method: "POST", path: secretPath + "/versions/1/destroy", auth: true,
			handler: respond(200, nil, versionJSON)},
		{name: "version with an unknown state", method: "GET", path: secretPath + "/versions/current", auth: true,
			handler: respond(200, nil, strings.Replace(versionJSON, "DESTROYED", "PURGED", 1)), want: "state"},
		{name: "pending version, promoted", method: "POST", path: secretPath + "/versions/3/promote", auth: true,
			handler: respond(200, nil, strings.Replace(versionJSON, `"DESTROYED"`, `"ENABLED"`, 1))},
		{name: "disable with force", method: "POST", path: secretPath + "/versions/1/disable?force=true", auth: true,
			handler: respond(200, nil, strings.Replace(versionJSON, `"DESTROYED"`, `"DISABLED"`, 1))},
		{name: "force that is not a boolean, answered 200", method: "POST", path: secretPath + "/versions/1/disable?force=yes", auth: true,
			handler: respond(200, nil, strings.Replace(versionJSON, `"DESTROYED"`, `"DISABLED"`, 1)), want: "force"},
		{name: "grant list", method: "GET", path: "/v1/projects/acme/resolve-grants", auth: true,
			handler: respond(200, nil, `{"grants":[`+grantJSON+`],"next_page_token":""}`)},
		{name: "grant list leaking the grant", method: "GET", path: "/v1/projects/acme/resolve-grants", auth: true,
			handler: respond(200, nil, `{"grants":[`+strings.Replace(grantJSON, `}]`, `}],"grant":"mbg_x.y"`, 1)+`],"next_page_token":""}`), want: "grant"},
		{name: "grant minted", method: "POST", path: "/v1/projects/acme/resolve-grants", auth: true,
			body:    `{"secrets":["openai"],"ttl_seconds":600}`,
			handler: respond(201, map[string]string{"Location": "/v1/projects/acme/resolve-grants/grt_01JNQ7Z8K2M4P6R8T0V2X4Z6B8"}, strings.TrimSuffix(grantJSON, "}")+`,"grant":"`+grantString+`"}`)},
		{name: "grant minted without its string", method: "POST", path: "/v1/projects/acme/resolve-grants", auth: true,
			body:    `{"secrets":["openai"]}`,
			handler: respond(201, map[string]string{"Location": "/v1/projects/acme/resolve-grants/grt_01JNQ7Z8K2M4P6R8T0V2X4Z6B8"}, grantJSON), want: "grant"},
		{name: "grant ttl above a day, answered 201", method: "POST", path: "/v1/projects/acme/resolve-grants", auth: true,
			body:    `{"secrets":["openai"],"ttl_seconds":86401}`,
			handler: respond(201, map[string]string{"Location": "/v1/projects/acme/resolve-grants/grt_01JNQ7Z8K2M4P6R8T0V2X4Z6B8"}, strings.TrimSuffix(grantJSON, "}")+`,"grant":"`+grantString+`"}`),
			want:    "does not conform"},
		{name: "grant revoked", method: "DELETE", path: "/v1/projects/acme/resolve-grants/grt_01JNQ7Z8K2M4P6R8T0V2X4Z6B8", auth: true, handler: respond(204, nil, "")},
		{name: "consumers", method: "GET", path: secretPath + "/consumers?since=24h", auth: true,
			handler: respond(200, nil, `{"since":"2025-03-01T14:10:00Z","truncated":false,"versions":[{"version":2,"state":"ENABLED","last_resolved_at":"2025-03-02T14:07:12Z",`+
				`"consumers":[{"run":{"loop":"summarizer"},"step":null,"grant_ids":["grt_01JNQ7Z8K2M4P6R8T0V2X4Z6B8"],"count":3,"last_seen":"2025-03-02T14:07:12Z"}]}]}`)},
		{name: "alias ended", method: "DELETE", path: secretPath + "/aliases/openai-old", auth: true, handler: respond(200, jsonETag, secretJSON)},
		{name: "limit above 1000, answered 400", method: "GET", path: "/v1/projects/acme/secrets?limit=1001", auth: true,
			handler: respond(400, nil, `{"error":{"code":"Bad Request","status":400,"message":"limit must be between 1 and 1000","field":"limit"}}`)},
		{name: "limit above 1000, answered 200", method: "GET", path: "/v1/projects/acme/secrets?limit=1001", auth: true,
			handler: respond(200, nil, `{"secrets":[],"next_page_token":""}`), want: "limit"},
		{name: "list without next_page_token", method: "GET", path: "/v1/projects/acme/secrets", auth: true,
			handler: respond(200, nil, `{"secrets":[]}`), want: "next_page_token"},
		{name: "delete", method: "DELETE", path: secretPath, auth: true, handler: respond(204, nil, "")},
		{name: "api key list", method: "GET", path: "/v1/projects/acme/api-keys", auth: true,
			handler: respond(200, nil, `{"api_keys":[{"id":"key_01JB0Q8X2N4R6T8V0W2Y4Z6A8C","name":"","scopes":["secrets:read"],"created_at":"2025-01-15T09:00:00Z","last_used_at":null}],"next_page_token":""}`)},
		{name: "api key list leaking the key", method: "GET", path: "/v1/projects/acme/api-keys", auth: true,
			handler: respond(200, nil, `{"api_keys":[{"id":"key_01JB0Q8X2N4R6T8V0W2Y4Z6A8C","name":"","scopes":["secrets:read"],"key":"mbs_x","created_at":"2025-01-15T09:00:00Z","last_used_at":null}],"next_page_token":""}`),
			want:    "key"},
		{name: "undocumented path answered 404", method: "GET", path: "/v1/nothing", handler: respond(404, nil, notFoundJSON)},
		{name: "undocumented path answered 200", method: "GET", path: "/v1/nothing", handler: respond(200, nil, `{}`), want: "not in the OpenAPI document"},
		{name: "undocumented method answered 405", method: "PUT", path: secretPath, auth: true, handler: respond(405, nil, "")},
		{name: "healthz", method: "GET", path: "/healthz", handler: respond(200, nil, `{"status":"ok"}`)},
		{name: "openapi.json", method: "GET", path: "/openapi.json", handler: apidocs.OpenAPIHandler()},
		{name: "docs page", method: "GET", path: "/docs", handler: apidocs.DocsHandler()},
		{name: "docs asset", method: "GET", path: "/docs/init.js", handler: apidocs.DocsHandler()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			v := apitest.NewValidator(rec)
			req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if c.auth {
				req.Header.Set("Authorization", bearer)
			}
			w := httptest.NewRecorder()
			v.Wrap(c.handler).ServeHTTP(w, req)

			got := rec.failures()
			t.Logf("reported: %q", got)
			switch {
			case c.want == "" && len(got) > 0:
				t.Errorf("reported %q, want no failure", got)
			case c.want != "" && len(got) == 0:
				t.Errorf("reported nothing, want a failure mentioning %q", c.want)
			case c.want != "" && !strings.Contains(got[0], c.want):
				t.Errorf("reported %q, want it to mention %q", got[0], c.want)
			}
			if len(got) > 0 && !strings.Contains(got[0], c.method+" ") {
				t.Errorf("failure %q does not name the method", got[0])
			}
		})
	}
}

// The client sees the wrapped handler's response unchanged.
func TestWrapPassesResponseThrough(t *testing.T) {
	v := apitest.NewValidator(t)
	req := httptest.NewRequest("GET", secretPath, nil)
	req.Header.Set("Authorization", bearer)
	w := httptest.NewRecorder()
	v.Wrap(respond(200, map[string]string{"ETag": `"4"`, "X-Request-Id": "r1"}, secretJSON)).ServeHTTP(w, req)
	if w.Code != 200 || w.Body.String() != secretJSON || w.Header().Get("ETag") != `"4"` || w.Header().Get("X-Request-Id") != "r1" {
		t.Errorf("got %d %q %v", w.Code, w.Body.String(), w.Header())
	}
}

func TestRoutes(t *testing.T) {
	got := apitest.NewValidator(t).Routes()
	want := []string{
		"DELETE /v1/projects/{project}/api-keys/{id}",
		"DELETE /v1/projects/{project}/resolve-grants/{id}",
		"DELETE /v1/projects/{project}/secrets/{secret}",
		"DELETE /v1/projects/{project}/secrets/{secret}/aliases/{alias}",
		"DELETE /v1/projects/{project}/trash/{id}",
		"GET /docs",
		"GET /healthz",
		"GET /openapi.json",
		"GET /v1/projects/{project}/api-keys",
		"GET /v1/projects/{project}/events",
		"GET /v1/projects/{project}/resolve-grants",
		"GET /v1/projects/{project}/secrets",
		"GET /v1/projects/{project}/secrets/{secret}",
		"GET /v1/projects/{project}/secrets/{secret}/consumers",
		"GET /v1/projects/{project}/secrets/{secret}/resolutions",
		"GET /v1/projects/{project}/secrets/{secret}/versions",
		"GET /v1/projects/{project}/secrets/{secret}/versions/{version}",
		"GET /v1/projects/{project}/trash",
		"PATCH /v1/projects/{project}/secrets/{secret}",
		"POST /v1/projects/{project}/api-keys",
		"POST /v1/projects/{project}/references/check",
		"POST /v1/projects/{project}/resolve-grants",
		"POST /v1/projects/{project}/secrets",
		"POST /v1/projects/{project}/secrets/{secret}/versions/{version}/destroy",
		"POST /v1/projects/{project}/secrets/{secret}/versions/{version}/disable",
		"POST /v1/projects/{project}/secrets/{secret}/versions/{version}/enable",
		"POST /v1/projects/{project}/secrets/{secret}/versions/{version}/promote",
		"POST /v1/projects/{project}/trash/{id}/restore",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Routes() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
