package coldstart_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/internal/coldstart"
	"github.com/mobius-secrets/mobius/pkg/internal/lambdatest"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

var (
	rounds = flag.Int("coldstart.n", 2, "cold starts of each function (make coldstart sets COLDSTART_N)")
	report = flag.String("coldstart.report", "", "also write the report to this file")
)

func TestMain(m *testing.M) {
	awstest.Main(m, lambdatest.Cleanup)
}

const canary = "sk-CANARY-coldstart-5b0e"

// callCounter is a reverse proxy in front of the AWS stand-in that counts
// the calls the functions make, by X-Amz-Target (e.g.
// "DynamoDB_20120810.GetItem").
type callCounter struct {
	mu    sync.Mutex
	calls []string
}

func (c *callCounter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

func startCounter(t *testing.T, target string) (string, *callCounter) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c := &callCounter{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.calls = append(c.calls, r.Header.Get("X-Amz-Target"))
		c.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, c
}

// function is one function under measurement and the requests it is sent
// on each cold start.
type function struct {
	series    *coldstart.Series
	bootstrap string
	env       []string
	ready     []byte                 // calls no AWS service
	readyOK   func(body []byte) bool // its successful response
	call      []byte                 // reaches DynamoDB and KMS
	callOK    func(body []byte) bool
}

// TestColdStart starts the trivial function, the API function and the
// resolve function under aws-lambda-rie, once each per round, and reports
// the time from the emulator's process start to the first successful
// response. It checks what must hold whatever the timings: every start
// answers correctly, no AWS call is made before the first request that
// needs one (nothing but configuration and client construction runs before
// lambda.Start), and no plaintext reaches the output. `make coldstart` runs
// it with many rounds and prints the report; timings are never asserted.
func TestColdStart(t *testing.T) {
	if *rounds < 1 {
		t.Fatalf("-coldstart.n=%d: want at least 1", *rounds)
	}
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	endpoint, counter := startCounter(t, moto)

	apiEnv := lambdatest.FunctionEnv(t, "ApiFunction", endpoint, awstest.Region)
	resolveEnv := lambdatest.FunctionEnv(t, "ResolveFunction", endpoint, awstest.Region)
	svc := lambdatest.StandIns(t, moto, apiEnv)
	_, apiKey, err := svc.CreateAPIKey(ctx, "acme", "coldstart", []string{secrets.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "openai", Values: map[string]string{"api_key": canary}}); err != nil {
		t.Fatal(err)
	}

	by, err := svc.Authenticate(ctx, apiKey)
	if err != nil {
		t.Fatal(err)
	}
	_, grant, err := svc.MintGrant(ctx, "acme", by, secrets.MintGrantInput{Secrets: []string{"openai"}})
	if err != nil {
		t.Fatal(err)
	}
	event := func(name string, edit func(map[string]any)) []byte {
		cred := apiKey
		if strings.HasPrefix(name, "resolve") {
			cred = grant
		}
		return lambdatest.Event(t, name, cred, edit)
	}
	apiStatus := func(want int, contains string) func([]byte) bool {
		return func(body []byte) bool {
			var r struct {
				StatusCode int    `json:"statusCode"`
				Body       string `json:"body"`
			}
			return json.Unmarshal(body, &r) == nil && r.StatusCode == want && strings.Contains(r.Body, contains)
		}
	}
	healthz := event("api-get.json", func(ev map[string]any) {
		delete(ev["headers"].(map[string]any), "authorization")
		ev["rawPath"] = "/healthz"
		ev["requestContext"].(map[string]any)["http"].(map[string]any)["path"] = "/healthz"
		ev["pathParameters"] = map[string]any{"proxy": "healthz"}
	})

	trivial := &coldstart.Series{Name: "trivial"}
	fns := []*function{
		{
			series:    &coldstart.Series{Name: "api", ReadyReq: "GET /healthz", CallReq: "GET /v1/projects/acme/secrets/openai (authenticate + get)"},
			bootstrap: lambdatest.Build(t, "./functions/api"),
			env:       apiEnv,
			ready:     healthz,
			readyOK:   apiStatus(200, `"ok"`),
			call:      event("api-get.json", nil),
			callOK:    apiStatus(200, `"name":"openai"`),
		},
		{
			// A malformed grant is refused before anything is read: the
			// answer of a ready function that has called nothing.
			series:    &coldstart.Series{Name: "resolve", ReadyReq: "a malformed grant (refused before any read)", CallReq: "infra/events/resolve.json (one reference, a grant verified)"},
			bootstrap: lambdatest.Build(t, "./functions/resolve"),
			env:       resolveEnv,
			ready:     []byte(`{"grant":"mbg_x","input":{"model":"gpt","max_tokens":256}}`),
			readyOK:   func(b []byte) bool { return bytes.Contains(b, []byte(`"errorType":"Unauthorized"`)) },
			call:      event("resolve.json", nil),
			callOK:    func(b []byte) bool { return bytes.Contains(b, []byte(canary)) },
		},
	}
	trivialBin := lambdatest.Build(t, "./pkg/internal/coldstart/trivial")
	lambdatest.EmulatorBinary(t) // built before any clock starts

	// start runs bootstrap under a fresh emulator and returns the time from
	// the process start to the first successful response to payload.
	start := func(bootstrap string, env []string, payload []byte, ok func([]byte) bool) (*lambdatest.Emulator, time.Duration) {
		t.Helper()
		t0 := time.Now()
		e := lambdatest.Start(t, bootstrap, env)
		status, body := e.Invoke(t, payload)
		d := time.Since(t0)
		if status != http.StatusOK || !ok(body) {
			t.Fatalf("first response of %s: %d %s\noutput:\n%s", bootstrap, status, body, e.Output.String())
		}
		return e, d
	}

	for round := range *rounds {
		order := rand.Perm(len(fns) + 1)
		for _, i := range order {
			if i == len(fns) {
				e, d := start(trivialBin, []string{"AWS_LAMBDA_FUNCTION_TIMEOUT=30"}, []byte(`{}`), func(b []byte) bool { return string(b) == `"ok"` })
				e.Stop()
				trivial.Ready = append(trivial.Ready, d)
				continue
			}
			f := fns[i]
			counter.take()
			e, d := start(f.bootstrap, f.env, f.ready, f.readyOK)
			if calls := counter.take(); len(calls) != 0 {
				t.Errorf("round %d: %s made AWS calls before its first request needed one: %v", round, f.series.Name, calls)
			}
			t1 := time.Now()
			status, body := e.Invoke(t, f.call)
			f.series.FirstCall = append(f.series.FirstCall, time.Since(t1))
			if status != http.StatusOK || !f.callOK(body) {
				t.Fatalf("round %d: %s: %d %s\noutput:\n%s", round, f.series.Name, status, body, e.Output.String())
			}
			if calls := counter.take(); len(calls) == 0 {
				t.Errorf("round %d: %s answered a request that needs DynamoDB without calling it", round, f.series.Name)
			}
			e.Stop()
			if e.Contains(canary, apiKey) {
				t.Fatalf("a plaintext value or the API key reached the %s function's output:\n%s", f.series.Name, e.Output.String())
			}
			f.series.Ready = append(f.series.Ready, d)
		}
	}

	series := make([]coldstart.Series, len(fns))
	for i, f := range fns {
		series[i] = *f.series
	}
	var out bytes.Buffer
	if err := coldstart.Write(&out, *rounds, trivial.Ready, series); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	if *report != "" {
		if err := os.WriteFile(*report, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
