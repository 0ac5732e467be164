package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/mobius-secrets/mobius/internal/testenv"
	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/apidocs/apitest"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/internal/testsupport"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// testServer is the API over a bolt store in a temporary folder, with an
// all-scope key of project "acme".
type testServer struct {
	t      *testing.T
	h      http.Handler
	api    http.Handler // h behind the OpenAPI validator: every request and response is checked
	svc    *secrets.Service
	store  *bolt.Driver
	dbPath string
	key    string
	logs   *testsupport.SyncBuffer
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	return newTestServerWith(t, secrets.Options{})
}

// newTestServerWith is newTestServer with a service made with opts (its
// logger is the test server's).
func newTestServerWith(t *testing.T, opts secrets.Options) *testServer {
	t.Helper()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "mobius.db")
	st := testenv.BoltAt(t, dbPath)
	w := testenv.LocalKeys(t)
	logs := &testsupport.SyncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Logger = logger
	svc := secrets.NewService(st, w, opts)
	ts := &testServer{t: t, svc: svc, store: st, dbPath: dbPath, logs: logs}
	ts.h = NewHandler(svc, Options{Logger: logger, PageTokenKey: []byte("test page token key")})
	ts.api = apitest.NewValidator(t).Wrap(ts.h)
	ts.key = ts.newKey("acme", secrets.AllScopes...)
	return ts
}

// newKey makes an API key of project with scopes.
func (ts *testServer) newKey(project string, scopes ...string) string {
	ts.t.Helper()
	_, key, err := ts.svc.CreateAPIKey(context.Background(), project, "test", scopes)
	if err != nil {
		ts.t.Fatal(err)
	}
	return key
}

// response is a recorded answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// decode decodes the body into v, failing the test if it does not decode.
func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decoding %q: %v", r.Body, err)
	}
}

// apiError decodes the error envelope, checking that it is well formed.
func (r *response) apiError(t *testing.T) api.ErrorBody {
	t.Helper()
	var e api.Error
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("status %d: body %q is not an error envelope: %v", r.Status, r.Body, err)
	}
	if e.Error.Status != r.Status || e.Error.Code != contractCodes[r.Status] || e.Error.Message == "" {
		t.Fatalf("status %d: bad envelope %+v", r.Status, e.Error)
	}
	return e.Error
}

// req describes a request: body is nil (none), a string (sent as is),
// or a value sent as JSON; header holds extra headers.
type req struct {
	method, path string
	key          string // "" for no Authorization header
	body         any
	header       map[string]string
}

func (ts *testServer) serve(rq req) *response {
	ts.t.Helper()
	var body io.Reader
	switch b := rq.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	r := httptest.NewRequest(rq.method, rq.path, body)
	if rq.body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if rq.key != "" {
		r.Header.Set("Authorization", "Bearer "+rq.key)
	}
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	ts.api.ServeHTTP(w, r)
	return &response{Status: w.Code, Header: w.Result().Header, Body: w.Body.Bytes()}
}

// do sends a request with the acme key.
func (ts *testServer) do(method, path string, body any) *response {
	ts.t.Helper()
	return ts.serve(req{method: method, path: path, key: ts.key, body: body})
}

// want fails the test unless r has status.
func (r *response) want(t *testing.T, status int) *response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
	return r
}

// createSecret creates a secret in acme and returns it.
func (ts *testServer) createSecret(name string, values map[string]string) api.Secret {
	ts.t.Helper()
	var s api.Secret
	ts.do("POST", "/v1/projects/acme/secrets", map[string]any{"name": name, "values": values}).want(ts.t, 201).decode(ts.t, &s)
	return s
}

// wantError checks status, and field when want is not "-".
func wantError(t *testing.T, r *response, status int, field string) api.ErrorBody {
	t.Helper()
	r.want(t, status)
	e := r.apiError(t)
	if field != "-" && e.Field != field {
		t.Fatalf("field %q, want %q (message %q)", e.Field, field, e.Message)
	}
	return e
}

func newJSONLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// contractCodes are the error envelope's codes, as the contract names them.
var contractCodes = map[int]string{
	400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
	405: "Method Not Allowed", 409: "Conflict", 412: "Precondition Failed",
	413: "Payload Too Large", 500: "Internal Server Error", 503: "Service Unavailable",
}
