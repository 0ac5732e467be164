package apidocs_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/mobius-secrets/mobius/pkg/apidocs"
	"github.com/mobius-secrets/mobius/pkg/apidocs/apitest"
	"github.com/mobius-secrets/mobius/pkg/apidocs/internal/yamljson"
)

// newMux serves the document and the reference page as the API server
// mounts them.
func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /openapi.json", apidocs.OpenAPIHandler())
	mux.Handle("GET /docs", apidocs.DocsHandler())
	mux.Handle("GET /docs/", apidocs.DocsHandler())
	return mux
}

func get(t *testing.T, h http.Handler, target string) *http.Response {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
	return w.Result()
}

func readAll(t *testing.T, r *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := apitest.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// The served JSON is exactly the conversion of the hand-edited YAML: run
// `go generate ./pkg/apidocs` after editing openapi.yaml.
func TestSpecIsTheYAMLConverted(t *testing.T) {
	src, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := yamljson.Convert(src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(apidocs.Spec(), want) {
		t.Fatal("openapi.json.gz is not the conversion of openapi.yaml; run 'go generate ./pkg/apidocs'")
	}
	if committed, err := os.ReadFile("openapi.json"); err != nil || !bytes.Equal(committed, want) {
		t.Fatalf("openapi.json is not the conversion of openapi.yaml (%v); run 'go generate ./pkg/apidocs'", err)
	}
}

func TestSpecIsValidOpenAPI31(t *testing.T) {
	doc := loadSpec(t)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "/" {
		t.Errorf("servers = %v, want the one same-origin server \"/\"", doc.Servers)
	}
	if len(doc.Security) != 1 || doc.Security[0]["bearerAuth"] == nil {
		t.Errorf("global security = %v, want bearerAuth", doc.Security)
	}
	if s := doc.Components.SecuritySchemes["bearerAuth"]; s == nil || s.Value.Type != "http" || s.Value.Scheme != "bearer" {
		t.Errorf("bearerAuth is not an HTTP bearer scheme")
	}
	// Every example in the document conforms to its schema.
	loader := openapi3.NewLoader()
	doc2, err := loader.LoadFromData(apidocs.Spec())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc2.Validate(loader.Context, openapi3.EnableExamplesValidation()); err != nil {
		t.Errorf("an example does not match its schema: %v", err)
	}
}

// Every operation of the contract is documented, tagged and named, with the
// error statuses the contract gives it.
func TestSpecCoversTheContract(t *testing.T) {
	common := []string{"400", "401", "403", "404", "503"}
	ops := []struct {
		route string
		tag   string
		id    string
		ok    string
		extra []string
	}{
		{"POST /v1/projects/{project}/secrets", "secrets", "createSecret", "201", []string{"409", "413"}},
		{"GET /v1/projects/{project}/secrets", "secrets", "listSecrets", "200", nil},
		{"GET /v1/projects/{project}/secrets/{secret}", "secrets", "getSecret", "200", nil},
		{"PATCH /v1/projects/{project}/secrets/{secret}", "secrets", "updateSecret", "200", []string{"409", "412", "413"}},
		{"DELETE /v1/projects/{project}/secrets/{secret}", "secrets", "deleteSecret", "204", []string{"412"}},
		{"GET /v1/projects/{project}/secrets/{secret}/resolutions", "secrets", "listResolutions", "200", nil},
		{"GET /v1/projects/{project}/secrets/{secret}/versions", "versions", "listVersions", "200", nil},
		{"GET /v1/projects/{project}/secrets/{secret}/versions/{version}", "versions", "getVersion", "200", nil},
		{"POST /v1/projects/{project}/secrets/{secret}/versions/{version}/enable", "versions", "enableVersion", "200", []string{"409", "412"}},
		{"POST /v1/projects/{project}/secrets/{secret}/versions/{version}/disable", "versions", "disableVersion", "200", []string{"409", "412"}},
		{"POST /v1/projects/{project}/secrets/{secret}/versions/{version}/destroy", "versions", "destroyVersion", "200", []string{"409", "412"}},
		{"POST /v1/projects/{project}/secrets/{secret}/versions/{version}/promote", "versions", "promoteVersion", "200", []string{"409", "412"}},
		{"DELETE /v1/projects/{project}/secrets/{secret}/aliases/{alias}", "secrets", "deleteAlias", "200", nil},
		{"GET /v1/projects/{project}/secrets/{secret}/consumers", "secrets", "listConsumers", "200", nil},
		{"POST /v1/projects/{project}/references/check", "secrets", "checkReferences", "200", []string{"413"}},
		{"POST /v1/projects/{project}/resolve-grants", "resolve-grants", "createResolveGrant", "201", []string{"409", "413"}},
		{"GET /v1/projects/{project}/resolve-grants", "resolve-grants", "listResolveGrants", "200", nil},
		{"DELETE /v1/projects/{project}/resolve-grants/{id}", "resolve-grants", "revokeResolveGrant", "204", nil},
		{"GET /v1/projects/{project}/events", "events", "listEvents", "200", nil},
		{"GET /v1/projects/{project}/trash", "trash", "listTrash", "200", nil},
		{"POST /v1/projects/{project}/trash/{id}/restore", "trash", "restoreSecret", "200", []string{"409", "413"}},
		{"DELETE /v1/projects/{project}/trash/{id}", "trash", "purgeTrash", "204", nil},
		{"POST /v1/projects/{project}/api-keys", "api-keys", "createApiKey", "201", []string{"409", "413"}},
		{"GET /v1/projects/{project}/api-keys", "api-keys", "listApiKeys", "200", nil},
		{"DELETE /v1/projects/{project}/api-keys/{id}", "api-keys", "revokeApiKey", "204", nil},
		{"GET /healthz", "system", "healthz", "200", nil},
		{"GET /openapi.json", "system", "getOpenAPI", "200", nil},
		{"GET /docs", "system", "getDocs", "200", nil},
	}
	doc := loadSpec(t)
	var routes []string
	for _, o := range ops {
		routes = append(routes, o.route)
		t.Run(o.route, func(t *testing.T) {
			method, path, _ := strings.Cut(o.route, " ")
			item := doc.Paths.Value(path)
			if item == nil || item.GetOperation(method) == nil {
				t.Fatal("not documented")
			}
			op := item.GetOperation(method)
			if op.OperationID != o.id || !slices.Equal(op.Tags, []string{o.tag}) || op.Summary == "" || op.Description == "" {
				t.Errorf("operationId %q tags %v summary %q: want %q [%s] and a summary and description", op.OperationID, op.Tags, op.Summary, o.id, o.tag)
			}
			want := []string{o.ok}
			if o.tag != "system" {
				want = append(append(want, common...), o.extra...)
				if op.Security != nil {
					t.Errorf("overrides the global bearer security")
				}
			} else if op.Security == nil || len(*op.Security) != 0 {
				t.Errorf("a system operation must need no authentication (security: [])")
			}
			var got []string
			for code := range op.Responses.Map() {
				got = append(got, code)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("responses %v, want %v", got, want)
			}
			for _, code := range got {
				if code[0] != '4' && code[0] != '5' {
					continue
				}
				mt := op.Responses.Value(code).Value.Content.Get("application/json")
				if mt == nil || mt.Schema.Ref != "#/components/schemas/Error" {
					t.Errorf("%s is not the Error envelope", code)
				}
			}
		})
	}
	slices.Sort(routes)
	if got := apitest.NewValidator(t).Routes(); !slices.Equal(got, routes) {
		t.Errorf("documented routes %v, want exactly %v", got, routes)
	}
}

// The limits of the contract are in the schemas, where clients and the
// validator see them.
func TestSpecLimits(t *testing.T) {
	doc := loadSpec(t)
	schema := func(name string) *openapi3.Schema {
		s := doc.Components.Schemas[name]
		if s == nil {
			t.Fatalf("no schema %s", name)
		}
		return s.Value
	}
	param := func(name string) *openapi3.Schema {
		p := doc.Components.Parameters[name]
		if p == nil {
			t.Fatalf("no parameter %s", name)
		}
		return p.Value.Schema.Value
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"SecretName pattern", schema("SecretName").Pattern, `^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`},
		{"SecretId pattern", schema("SecretId").Pattern, `^sec_[0-9A-HJKMNP-TV-Z]{26}$`},
		{"ValueKey pattern", schema("ValueKey").Pattern, `^[A-Za-z0-9_-]{1,128}$`},
		{"Description maxLength", *schema("Description").MaxLength, uint64(1024)},
		{"Values minProperties", schema("Values").MinProps, uint64(1)},
		{"Values holds strings", schema("Values").AdditionalProperties.Schema.Value.Type.Is("string"), true},
		{"Values is write-only", schema("Values").WriteOnly, true},
		{"sha256 pattern", schema("Version").Properties["sha256"].Value.Pattern, `^[0-9a-f]{64}$`},
		{"states", schema("State").Enum, []any{"ENABLED", "PENDING", "DISABLED", "DESTROYED"}},
		{"scopes", schema("Scope").Enum, []any{"secrets:read", "secrets:write", "keys:admin", "secrets:resolve"}},
		{"ApiKeyId pattern", schema("ApiKeyId").Pattern, `^key_[0-9A-HJKMNP-TV-Z]{26}$`},
		{"key pattern", schema("ApiKeyCreated").Properties["key"].Value.Pattern, `^mbs_[a-z2-7]{52}$`},
		{"current_version nullable", schema("Secret").Properties["current_version"].Value.Type.Slice(), []string{"integer", "null"}},
		{"last_used_at nullable", schema("ApiKey").Properties["last_used_at"].Value.Type.Slice(), []string{"string", "null"}},
		{"pending_version nullable", schema("Secret").Properties["pending_version"].Value.Type.Slice(), []string{"integer", "null"}},
		{"previous_version nullable", schema("Secret").Properties["previous_version"].Value.Type.Slice(), []string{"integer", "null"}},
		{"last_resolved_at nullable", schema("Version").Properties["last_resolved_at"].Value.Type.Slice(), []string{"string", "null"}},
		{"previous grace maximum", *schema("PreviousGraceSeconds").Max, 604800.0},
		{"rename alias maximum", *schema("RenameAliasSeconds").Max, 2592000.0},
		{"stages", schema("UpdateSecretRequest").Properties["stage"].Value.Enum, []any{"PENDING", "ENABLED"}},
		{"ResolveGrantId pattern", schema("ResolveGrantId").Pattern, `^grt_[0-9A-HJKMNP-TV-Z]{26}$`},
		{"grant pattern", schema("ResolveGrantCreated").Properties["grant"].Value.Pattern, `^mbg_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$`},
		{"grant secrets minItems", schema("CreateResolveGrantRequest").Properties["secrets"].Value.MinItems, uint64(1)},
		{"grant secrets maxItems", *schema("CreateResolveGrantRequest").Properties["secrets"].Value.MaxItems, uint64(100)},
		{"grant ttl minimum", *schema("CreateResolveGrantRequest").Properties["ttl_seconds"].Value.Min, 1.0},
		{"grant ttl maximum", *schema("CreateResolveGrantRequest").Properties["ttl_seconds"].Value.Max, 86400.0},
		{"grant ttl default", schema("CreateResolveGrantRequest").Properties["ttl_seconds"].Value.Default, 3600.0},
		{"grant run nullable object", schema("ResolveGrantRun").Type.Slice(), []string{"object", "null"}},
		{"limit minimum", *param("Limit").Min, 1.0},
		{"limit maximum", *param("Limit").Max, 1000.0},
		{"limit default", param("Limit").Default, 50.0},
		{"version parameter", param("Version").Pattern, `^([1-9][0-9]{0,9}|current)$`},
	}
	for _, c := range checks {
		gotJSON, _ := json.Marshal(c.got)
		wantJSON, _ := json.Marshal(c.want)
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Errorf("%s = %s, want %s", c.what, gotJSON, wantJSON)
		}
	}
	// No response schema can carry a value or a stored key: they are closed.
	for _, name := range []string{"Secret", "Version", "Resolution", "ApiKey", "ApiKeyCreated", "SecretList", "VersionList", "ResolutionList", "ApiKeyList", "Error",
		"SecretAlias", "ConsumerList", "VersionConsumers", "Consumer", "ResolveGrant", "ResolveGrantCreated", "ResolveGrantList", "ResolveGrantSecret"} {
		if ap := schema(name).AdditionalProperties; ap.Has == nil || *ap.Has {
			t.Errorf("schema %s allows additional properties", name)
		}
	}
	// Every response header the contract names is documented.
	for _, h := range []string{"ETag", "Location", "ResolveGrantLocation", "IdempotentReplayed", "RetryAfter", "XRequestId"} {
		if doc.Components.Headers[h] == nil {
			t.Errorf("no header %s", h)
		}
	}
	for _, p := range []string{"IfMatch", "IdempotencyKey", "PageToken", "Prefix", "Force", "Since", "Alias", "ResolveGrantId"} {
		if doc.Components.Parameters[p] == nil {
			t.Errorf("no parameter %s", p)
		}
	}
}

func TestOpenAPIHandler(t *testing.T) {
	resp := get(t, newMux(), "/openapi.json")
	body := readAll(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("got %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body, apidocs.Spec()) {
		t.Error("the body is not the embedded document")
	}
	if !json.Valid(body) {
		t.Error("the body is not JSON")
	}
}

var (
	attrURL = regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*"([^"]*)"`)
	// A URL the page would fetch from another host.
	remoteURL = regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+`)
)

// The page refers only to its own assets, each of which is served with the
// right content type, and to the document on the same origin.
func TestDocsPage(t *testing.T) {
	mux := newMux()
	resp := get(t, mux, "/docs")
	html := string(readAll(t, resp))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /docs: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, d)
		}
	}

	base, _ := url.Parse("http://127.0.0.1/docs")
	wantTypes := map[string]string{
		".css":  "text/css; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".png":  "image/png",
		".json": "application/json",
	}
	refs := attrURL.FindAllStringSubmatch(html, -1)
	if len(refs) < 5 {
		t.Fatalf("found only %d src/href attributes in the page", len(refs))
	}
	var scripts []string
	for _, m := range refs {
		ref := m[1]
		if remoteURL.MatchString(ref) {
			t.Errorf("the page refers to another host: %q", ref)
			continue
		}
		u := base.ResolveReference(&url.URL{Path: ref})
		a := get(t, mux, u.Path)
		body := readAll(t, a)
		ext := u.Path[strings.LastIndex(u.Path, "."):]
		if a.StatusCode != 200 || a.Header.Get("Content-Type") != wantTypes[ext] || len(body) == 0 {
			t.Errorf("%s (from %q): %d %q, %d bytes; want 200 %q", u.Path, ref, a.StatusCode, a.Header.Get("Content-Type"), len(body), wantTypes[ext])
		}
		if a.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no X-Content-Type-Options: nosniff", u.Path)
		}
		if ext == ".js" && strings.HasPrefix(u.Path, "/docs/") && !strings.HasPrefix(u.Path, "/docs/swagger-ui/") {
			scripts = append(scripts, string(body))
		}
		if ext == ".css" {
			for _, m := range regexp.MustCompile(`url\(\s*['"]?([^'")]*)`).FindAllStringSubmatch(string(body), -1) {
				if !strings.HasPrefix(m[1], "data:") {
					t.Errorf("%s loads %q", u.Path, m[1])
				}
			}
		}
	}
	if !slices.ContainsFunc(refs, func(m []string) bool { return m[1] == "/openapi.json" }) {
		t.Errorf("the page does not link the document")
	}
	// Our own script configures the renderer: nothing remote, the document
	// from this origin, no validator badge.
	if len(scripts) != 1 {
		t.Fatalf("found %d scripts of our own, want 1 (init.js)", len(scripts))
	}
	for _, want := range []string{`url: "/openapi.json"`, "validatorUrl: null", "queryConfigEnabled: false"} {
		if !strings.Contains(scripts[0], want) {
			t.Errorf("init.js does not contain %q", want)
		}
	}
	if m := remoteURL.FindString(scripts[0]); m != "" {
		t.Errorf("init.js refers to another host: %q", m)
	}
}

func TestDocsRouting(t *testing.T) {
	mux := newMux()
	cases := []struct {
		path     string
		status   int
		location string
	}{
		{"/docs", 200, ""},
		{"/docs/index.html", 200, ""},
		{"/docs/", 200, ""},
		{"/docs/init.js", 200, ""},
		{"/docs/swagger-ui/swagger-ui-bundle.js", 200, ""},
		{"/docs/nothing.js", 404, ""},
		{"/docs/swagger-ui/LICENSE", 404, ""},
		{"/docs/README.md", 404, ""},
		{"/docs/../openapi.json", 200, ""}, // cleaned by the mux to /openapi.json
		{"/docs/swagger-ui/../../apidocs.go", 404, ""},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/", nil)
			req.URL.Path = c.path
			mux.ServeHTTP(w, req)
			if (w.Code == 301 || w.Code == 307) && c.location == "" {
				// The mux redirects unclean paths; follow once.
				req.URL.Path = w.Header().Get("Location")
				w = httptest.NewRecorder()
				mux.ServeHTTP(w, req)
			}
			if w.Code != c.status {
				t.Errorf("status %d, want %d", w.Code, c.status)
			}
			if c.location != "" && w.Header().Get("Location") != c.location {
				t.Errorf("Location %q, want %q", w.Header().Get("Location"), c.location)
			}
		})
	}
	// Mounted without the mux's path cleaning, the handler still refuses
	// to leave its assets.
	w := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.URL.Path = "/docs/../apidocs.go"
	apidocs.DocsHandler().ServeHTTP(w, req)
	if w.Code != 404 {
		t.Errorf("/docs/../apidocs.go straight to the handler: %d, want 404", w.Code)
	}
}

// The renderer's large files are stored compressed: a client that accepts
// gzip gets the stored bytes with Content-Encoding: gzip, any other gets
// the same content decompressed; small files are sent as they are.
func TestDocsCompressedAssets(t *testing.T) {
	mux := newMux()
	fetch := func(path string, acceptEncoding ...string) *http.Response {
		t.Helper()
		req := httptest.NewRequest("GET", path, nil)
		for _, v := range acceptEncoding {
			req.Header.Add("Accept-Encoding", v)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		return w.Result()
	}
	for _, c := range []struct {
		path, marker string
	}{
		{"/docs/swagger-ui/swagger-ui-bundle.js", "SwaggerUIBundle"},
		{"/docs/swagger-ui/swagger-ui.css", ".swagger-ui"},
		{"/openapi.json", `"openapi": "3.1`},
	} {
		plain := fetch(c.path)
		plainBody := readAll(t, plain)
		if plain.StatusCode != 200 || plain.Header.Get("Content-Encoding") != "" || !bytes.Contains(plainBody, []byte(c.marker)) {
			t.Fatalf("%s without Accept-Encoding: %d, Content-Encoding %q, %d bytes", c.path, plain.StatusCode, plain.Header.Get("Content-Encoding"), len(plainBody))
		}
		if plain.Header.Get("Content-Length") != strconv.Itoa(len(plainBody)) || plain.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("%s: Content-Length %q for %d bytes, Vary %q", c.path, plain.Header.Get("Content-Length"), len(plainBody), plain.Header.Get("Vary"))
		}
		for _, ae := range [][]string{{"gzip"}, {"gzip, deflate, br, zstd"}, {"br", "GZIP;q=0.5"}, {"*"}} {
			z := fetch(c.path, ae...)
			zBody := readAll(t, z)
			if z.StatusCode != 200 || z.Header.Get("Content-Encoding") != "gzip" || z.Header.Get("Content-Type") != plain.Header.Get("Content-Type") {
				t.Fatalf("%s with Accept-Encoding %q: %d, Content-Encoding %q, Content-Type %q", c.path, ae, z.StatusCode, z.Header.Get("Content-Encoding"), z.Header.Get("Content-Type"))
			}
			zr, err := gzip.NewReader(bytes.NewReader(zBody))
			if err != nil {
				t.Fatal(err)
			}
			unzipped, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(unzipped, plainBody) {
				t.Fatalf("%s: the gzip body does not decompress to the plain one (%v)", c.path, err)
			}
			if len(zBody)*3 > len(plainBody) {
				t.Errorf("%s: %d bytes compressed of %d: want at most a third", c.path, len(zBody), len(plainBody))
			}
		}
		for _, ae := range []string{"gzip;q=0", "br, deflate", "identity", "*;q=0"} {
			if r := fetch(c.path, ae); r.Header.Get("Content-Encoding") != "" || !bytes.Equal(readAll(t, r), plainBody) {
				t.Errorf("%s with Accept-Encoding %q: Content-Encoding %q, want the plain content", c.path, ae, r.Header.Get("Content-Encoding"))
			}
		}
	}
	// The compressed files are not reachable under their stored names, and
	// small files are never encoded.
	if r := fetch("/docs/swagger-ui/swagger-ui-bundle.js.gz", "gzip"); r.StatusCode != 404 {
		t.Errorf("GET swagger-ui-bundle.js.gz: %d, want 404", r.StatusCode)
	}
	if r := fetch("/docs/init.js", "gzip"); r.StatusCode != 200 || r.Header.Get("Content-Encoding") != "" {
		t.Errorf("GET init.js with gzip: %d, Content-Encoding %q", r.StatusCode, r.Header.Get("Content-Encoding"))
	}
}
