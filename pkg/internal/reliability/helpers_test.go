package reliability

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/internal/testsupport"
	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/httpapi"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

func TestMain(m *testing.M) {
	flag.Parse()
	// The moto model run is slow (moto serves one request at a time), so
	// rapid's default number of checks is lowered unless -rapid.checks or
	// RELIABILITY_MODEL_CHECKS says otherwise.
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set {
		flag.Set("rapid.checks", strconv.Itoa(envInt("RELIABILITY_MODEL_CHECKS", 5)))
	}
	awstest.Main(m)
}

// envInt reads a positive integer knob from the environment.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// envDuration reads a duration knob from the environment.
func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

// env is the service and the real handler over a store, with an all-scope
// key of project "acme".
type env struct {
	t      *testing.T
	store  kv.Driver
	keys   secrets.KeyWrapper
	svc    *secrets.Service
	h      http.Handler
	logs   *testsupport.SyncBuffer
	logger *slog.Logger
	key    string
	dbPath string // bolt only
	kek    []byte // local key only
}

func newKEK() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// newBoltEnv opens a bolt store in a temporary folder with a fresh local key.
func newBoltEnv(t *testing.T) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mobius.db")
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek := newKEK()
	w, err := local.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, st, w)
	e.dbPath, e.kek = path, kek
	return e
}

// newEnv builds the service and handler over store and keys.
func newEnv(t *testing.T, store kv.Driver, keys secrets.KeyWrapper, opts ...secrets.Options) *env {
	t.Helper()
	logs := &testsupport.SyncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var o secrets.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	o.Logger = logger
	svc := secrets.NewService(store, keys, o)
	e := &env{t: t, store: store, keys: keys, svc: svc, logs: logs, logger: logger}
	e.h = httpapi.NewHandler(svc, httpapi.Options{Logger: logger, PageTokenKey: []byte("reliability page token key")})
	e.key = e.newKey("acme", secrets.AllScopes...)
	return e
}

func (e *env) newKey(project string, scopes ...string) string {
	e.t.Helper()
	_, key, err := e.svc.CreateAPIKey(context.Background(), project, "test", scopes)
	if err != nil {
		e.t.Fatal(err)
	}
	return key
}

// response is a recorded answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("status %d: decoding %q: %v", r.Status, r.Body, err)
	}
}

func (r *response) want(t *testing.T, status int) *response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	return r
}

// serve sends a request with key ("" for none); body is nil, a string, or
// a value sent as JSON.
func (e *env) serve(method, path, key string, body any, hdr ...string) *response {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	r := httptest.NewRequest(method, path, rd)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return &response{Status: w.Code, Header: w.Result().Header, Body: w.Body.Bytes()}
}

func (e *env) do(method, path string, body any, hdr ...string) *response {
	return e.serve(method, path, e.key, body, hdr...)
}

func (e *env) create(name string, values map[string]string) api.Secret {
	e.t.Helper()
	var s api.Secret
	e.do("POST", "/v1/projects/acme/secrets", map[string]any{"name": name, "values": values}).want(e.t, 201).decode(e.t, &s)
	return s
}

func (e *env) rotate(name string, values map[string]string) api.Secret {
	e.t.Helper()
	var s api.Secret
	e.do("PATCH", "/v1/projects/acme/secrets/"+name, map[string]any{"values": values}).want(e.t, 200).decode(e.t, &s)
	return s
}

// grant mints a resolve grant of project acme through the API, covering
// names, for run ("" for none), and returns the grant string.
func (e *env) grant(run string, names ...string) string {
	e.t.Helper()
	body := map[string]any{"secrets": names}
	if run != "" {
		body["run"] = json.RawMessage(run)
	}
	var g api.ResolveGrantCreated
	e.do("POST", "/v1/projects/acme/resolve-grants", body).want(e.t, 201).decode(e.t, &g)
	return g.Grant
}
