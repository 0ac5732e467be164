package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/mobius-secrets/mobius/internal/testsupport"
	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/app"
	"github.com/mobius-secrets/mobius/pkg/app/awsapp"
	"github.com/mobius-secrets/mobius/pkg/httpapi"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// loadEvent reads testdata/name (or ../../infra/events/name for a sample
// event), with its bearer token replaced by apiKey.
func loadEvent(t *testing.T, name, apiKey string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if os.IsNotExist(err) {
		b, err = os.ReadFile(filepath.Join("..", "..", "infra", "events", name))
	}
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if _, ok := ev.Headers["authorization"]; ok && apiKey != "" {
		ev.Headers["authorization"] = "Bearer " + apiKey
	}
	return ev
}

// seen is what a recording handler saw of one request.
type seen struct {
	path, rawQuery, idemKey, requestID, host, remote string
	idemValues                                       int
	body                                             string
}

type recorder struct {
	mu   sync.Mutex
	last seen
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.last = seen{path: r.URL.Path, rawQuery: r.URL.RawQuery, idemKey: r.Header.Get("Idempotency-Key"),
		idemValues: len(r.Header.Values("Idempotency-Key")), requestID: r.Header.Get("X-Request-Id"),
		host: r.Host, remote: r.RemoteAddr, body: string(b)}
	rec.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusTeapot)
}

func lambdaCtx(id string) context.Context {
	return lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: id})
}

// The request the handler gets: the stage or base path gone, headers
// whole, the body decoded.
func TestEdgeRequest(t *testing.T) {
	createBody := `{"name": "edge-b64", "values": {"token": "sk-example-not-a-real-key"}}`
	for _, c := range []struct {
		name, event, basePath string
		want                  seen
	}{
		{"default stage", "api-get.json", "", seen{path: "/v1/projects/acme/secrets/openai"}},
		{"named stage", "named-stage-get.json", "", seen{path: "/v1/projects/acme/secrets/openai"}},
		{"named stage, bare route", "named-stage-healthz.json", "", seen{path: "/healthz"}},
		{"named stage with a base path configured", "named-stage-get.json", "/secrets", seen{path: "/v1/projects/acme/secrets/openai"}},
		{"custom domain base path", "custom-domain-get.json", "/secrets", seen{path: "/v1/projects/acme/secrets/openai"}},
		{"custom domain, no base path configured", "custom-domain-get.json", "", seen{path: "/secrets/v1/projects/acme/secrets/openai"}},
		{"base64 body", "base64-create.json", "", seen{path: "/v1/projects/acme/secrets", body: createBody}},
		{"comma in Idempotency-Key", "idempotency-key-comma.json", "",
			seen{path: "/v1/projects/acme/secrets", idemKey: "run-7,step-2", idemValues: 1, requestID: "loop-run-7.step-2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{}
			e := &edge{handler: rec, log: awsapp.NewLogger(io.Discard, 0), basePath: c.basePath, maxBody: httpapi.DefaultMaxBodyBytes}
			ev := loadEvent(t, c.event, "")
			resp, err := e.Handle(lambdaCtx("lambda-req-1"), ev)
			if err != nil || resp.StatusCode != http.StatusTeapot {
				t.Fatalf("response %d, %v: %s", resp.StatusCode, err, resp.Body)
			}
			got := rec.last
			if got.path != c.want.path {
				t.Errorf("path %q, want %q", got.path, c.want.path)
			}
			if c.want.body != "" && got.body != c.want.body {
				t.Errorf("body %q, want %q", got.body, c.want.body)
			}
			if c.want.idemKey != "" && (got.idemKey != c.want.idemKey || got.idemValues != c.want.idemValues) {
				t.Errorf("Idempotency-Key %q in %d values, want %q in %d", got.idemKey, got.idemValues, c.want.idemKey, c.want.idemValues)
			}
			if c.want.requestID != "" && got.requestID != c.want.requestID {
				t.Errorf("X-Request-Id %q, want the client's %q", got.requestID, c.want.requestID)
			}
			if got.requestID == "" || got.host != ev.RequestContext.DomainName || got.remote != "203.0.113.7" {
				t.Errorf("request ID %q, host %q, remote %q", got.requestID, got.host, got.remote)
			}
		})
	}
}

// newApp is the real handler on the embedded store, with a key of project
// acme and its secret "openai", logging to log.
func newApp(t *testing.T, log io.Writer) (*app.App, string) {
	t.Helper()
	ctx := context.Background()
	a, err := app.New(ctx, app.Config{DataDir: t.TempDir()}, awsapp.NewLogger(log, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	_, key, err := a.Service.CreateAPIKey(ctx, "acme", "edge-test", secrets.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Service.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "openai", Values: map[string]string{"api_key": "sk-CANARY-edge-5d1e"}}); err != nil {
		t.Fatal(err)
	}
	return a, key
}

// Through the real handler: every event answers with the API's status and
// envelope, never a function error.
func TestEdgeAnswers(t *testing.T) {
	var logs testsupport.SyncBuffer
	a, key := newApp(t, &logs)
	big := strings.Repeat("x", httpapi.DefaultMaxBodyBytes+1)
	for _, c := range []struct {
		name, event, basePath string
		edit                  func(*events.APIGatewayV2HTTPRequest)
		status                int
		code                  string // the envelope's code, for an error
	}{
		{"named stage", "named-stage-get.json", "", nil, 200, ""},
		{"named stage health", "named-stage-healthz.json", "", nil, 200, ""},
		{"custom domain", "custom-domain-get.json", "secrets", nil, 200, ""},
		{"custom domain without MOBIUS_BASE_PATH", "custom-domain-get.json", "", nil, 404, "Not Found"},
		{"base64 body", "base64-create.json", "", nil, 201, ""},
		{"bad base64 body", "bad-base64.json", "", nil, 400, "Bad Request"},
		{"bad percent-encoding in the path", "bad-percent-path.json", "", nil, 400, "Bad Request"},
		{"body over the limit", "api-create.json", "", func(ev *events.APIGatewayV2HTTPRequest) { ev.Body = big }, 413, "Payload Too Large"},
		{"base64 body over the limit", "base64-create.json", "", func(ev *events.APIGatewayV2HTTPRequest) {
			ev.Body = base64.StdEncoding.EncodeToString([]byte(big))
		}, 413, "Payload Too Large"},
		{"invalid method", "api-get.json", "", func(ev *events.APIGatewayV2HTTPRequest) { ev.RequestContext.HTTP.Method = "GE T" }, 400, "Bad Request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bp, err := cleanBasePath(c.basePath)
			if err != nil {
				t.Fatal(err)
			}
			e := &edge{handler: a.Handler, log: awsapp.NewLogger(&logs, 0), basePath: bp, maxBody: httpapi.DefaultMaxBodyBytes}
			ev := loadEvent(t, c.event, key)
			if c.edit != nil {
				c.edit(&ev)
			}
			resp, err := e.Handle(lambdaCtx("lambda-"+c.name), ev)
			if err != nil {
				t.Fatalf("function error %v", err)
			}
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, resp.Body)
			}
			if c.code != "" {
				var env api.Error
				if err := json.Unmarshal([]byte(resp.Body), &env); err != nil || env.Error.Code != c.code || env.Error.Status != c.status || env.Error.Message == "" {
					t.Errorf("envelope %s, want code %q", resp.Body, c.code)
				}
			}
			if resp.Headers["X-Request-Id"] == "" {
				t.Errorf("no X-Request-Id: %v", resp.Headers)
			}
		})
	}
	if strings.Contains(logs.String(), "sk-CANARY-edge-5d1e") || strings.Contains(logs.String(), "sk-example-not-a-real-key") {
		t.Errorf("a value reached the log:\n%s", logs.String())
	}
}

// An Idempotency-Key with a comma is one key: the retry answers the first
// response, and a key that differs after the comma is another request.
func TestEdgeIdempotencyKeyWithComma(t *testing.T) {
	a, key := newApp(t, io.Discard)
	e := &edge{handler: a.Handler, log: awsapp.NewLogger(io.Discard, 0), maxBody: httpapi.DefaultMaxBodyBytes}
	call := func(idem, name string) (int, string) {
		t.Helper()
		ev := loadEvent(t, "idempotency-key-comma.json", key)
		ev.Headers["idempotency-key"] = idem
		ev.Body = `{"name":"` + name + `","values":{"token":"v"}}`
		resp, err := e.Handle(lambdaCtx("l"), ev)
		if err != nil {
			t.Fatal(err)
		}
		var sec struct{ ID string }
		json.Unmarshal([]byte(resp.Body), &sec)
		return resp.StatusCode, sec.ID
	}
	s1, id1 := call("run-7,step-2", "edge-idem")
	s2, id2 := call("run-7,step-2", "edge-idem")
	if s1 != 201 || s2 != 201 || id1 == "" || id1 != id2 {
		t.Fatalf("first %d %s, retry %d %s: want one secret", s1, id1, s2, id2)
	}
	// Same first part, other second part: a different key, so a different
	// request (the name is taken now).
	if s3, _ := call("run-7,step-3", "edge-idem"); s3 != http.StatusConflict {
		t.Errorf("another key with the same first part: %d, want 409", s3)
	}
}

// A request still waiting on a dependency when the invocation's margin is
// reached answers 503 with Retry-After, while the function can answer.
func TestEdgeDeadline(t *testing.T) {
	stuck := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		w.WriteHeader(http.StatusInternalServerError)
	})
	e := &edge{handler: stuck, log: awsapp.NewLogger(io.Discard, 0), margin: time.Hour, maxBody: 1 << 20}
	ctx, cancel := context.WithDeadline(lambdaCtx("l"), time.Now().Add(time.Hour+50*time.Millisecond))
	defer cancel()
	resp, err := e.Handle(ctx, loadEvent(t, "api-get.json", ""))
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Headers["Retry-After"] == "" {
		t.Fatalf("%d %v %v %s, want 503 with Retry-After", resp.StatusCode, err, resp.Headers, resp.Body)
	}
	if ctx.Err() != nil {
		t.Error("the edge answered only after the Lambda deadline")
	}
}

// Every line the invocation logs carries the Lambda request ID, API
// Gateway's request ID and the X-Request-Id the response carries.
func TestEdgeLogLines(t *testing.T) {
	for _, c := range []struct{ name, event, xrid string }{
		{"client's request ID", "idempotency-key-comma.json", "loop-run-7.step-2"},
		{"no request ID", "api-get.json", ""},
		{"unusable request ID", "api-get.json", "has spaces in it"},
		{"refused at the edge", "bad-base64.json", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs testsupport.SyncBuffer
			a, key := newApp(t, &logs)
			e := &edge{handler: a.Handler, log: awsapp.NewLogger(&logs, 0), maxBody: httpapi.DefaultMaxBodyBytes}
			ev := loadEvent(t, c.event, key)
			if c.xrid != "" {
				ev.Headers["x-request-id"] = c.xrid
			}
			resp, err := e.Handle(lambdaCtx("lambda-"+c.event), ev)
			if err != nil {
				t.Fatal(err)
			}
			rid := resp.Headers["X-Request-Id"]
			if c.xrid == "loop-run-7.step-2" && rid != c.xrid {
				t.Errorf("X-Request-Id %q, want the client's", rid)
			}
			n := 0
			for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("not JSON: %q", l)
				}
				n++
				if m["aws_request_id"] != "lambda-"+c.event || m["apigw_request_id"] != ev.RequestContext.RequestID || m["request_id"] != rid {
					t.Errorf("line %s: want aws_request_id %q, apigw_request_id %q, request_id %q", l, "lambda-"+c.event, ev.RequestContext.RequestID, rid)
				}
			}
			if n == 0 {
				t.Error("nothing was logged")
			}
		})
	}
}

func TestCleanBasePath(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"", "", ""},
		{"secrets", "/secrets", ""},
		{"/secrets/", "/secrets", ""},
		{"v2/secrets", "/v2/secrets", ""},
		{"a b", "", "MOBIUS_BASE_PATH"},
		{"a//b", "", "MOBIUS_BASE_PATH"},
		{"../x", "", "MOBIUS_BASE_PATH"},
	} {
		t.Run(c.in, func(t *testing.T) {
			got, err := cleanBasePath(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want one naming %s", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("%q, %v; want %q", got, err, c.want)
			}
		})
	}
}
