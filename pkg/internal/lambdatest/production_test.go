package lambdatest_test

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/app/awsapp"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/internal/lambdatest"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func bootstrap(t *testing.T, pkg string) string { return lambdatest.BuildOnce(t, pkg) }

// setEnv returns env with each KEY=value of kv replacing KEY's entry.
func setEnv(env []string, kv ...string) []string {
	out := append([]string(nil), env...)
	for _, s := range kv {
		k, _, _ := strings.Cut(s, "=")
		out = slices.DeleteFunc(out, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		out = append(out, s)
	}
	return out
}

// seeded is a project "acme" on moto with an API key and one secret, as
// both functions' environments expect.
type seeded struct {
	moto, apiKey, grant string
	apiEnv, resolveEnv  []string
}

func seed(t *testing.T) seeded {
	t.Helper()
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	s := seeded{moto: moto,
		apiEnv:     lambdatest.FunctionEnv(t, "ApiFunction", moto, awstest.Region),
		resolveEnv: lambdatest.FunctionEnv(t, "ResolveFunction", moto, awstest.Region)}
	// A table and key alias of this test's own, so tests do not share them.
	suffix := strings.ToLower(secrets.NewULID(time.Now(), nil))
	for _, env := range []*[]string{&s.apiEnv, &s.resolveEnv} {
		*env = setEnv(*env, "MOBIUS_TABLE=mobius-"+suffix, "MOBIUS_KMS_KEY_ID=alias/mobius-"+suffix)
	}
	svc := lambdatest.StandIns(t, moto, s.apiEnv)
	var err error
	if _, s.apiKey, err = svc.CreateAPIKey(ctx, "acme", "production-test", secrets.AllScopes); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "openai", Values: map[string]string{"api_key": canaryAPI}}); err != nil {
		t.Fatal(err)
	}
	by, err := svc.Authenticate(ctx, s.apiKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, s.grant, err = svc.MintGrant(ctx, "acme", by, secrets.MintGrantInput{Secrets: []string{"openai"}}); err != nil {
		t.Fatal(err)
	}
	return s
}

// event is a resolve event under s's grant.
func (s seeded) event(input string) string {
	return `{"grant":"` + s.grant + `","input":` + input + `}`
}

func apiCall(t *testing.T, fn *lambdatest.Emulator, payload []byte) apiResponse {
	t.Helper()
	status, body := fn.Invoke(t, payload)
	var r apiResponse
	if status != 200 || json.Unmarshal(body, &r) != nil || r.StatusCode == 0 {
		t.Fatalf("not an HTTP API response: emulator status %d, body %s\noutput:\n%s", status, body, fn.Output.String())
	}
	return r
}

func resolveCall(t *testing.T, fn *lambdatest.Emulator, payload string) (json.RawMessage, *fnError) {
	t.Helper()
	status, body := fn.Invoke(t, []byte(payload))
	var fe fnError
	if json.Unmarshal(body, &fe) == nil && fe.ErrorType != "" {
		return nil, &fe
	}
	if status != 200 {
		t.Fatalf("emulator status %d, body %s\noutput:\n%s", status, body, fn.Output.String())
	}
	return body, nil
}

// A dependency that accepts connections and never answers, DynamoDB or
// KMS: each function answers its Unavailable error before the Lambda
// timeout. With short attempts (500ms) the SDK gives up after its
// MaxAttempts attempts, one connection each; with attempts longer than the
// invocation (1m) the deadline margin (the default 1s before a 3s timeout)
// ends the one attempt.
func TestStalledDependencyUnderEmulator(t *testing.T) {
	s := seed(t)
	for _, bound := range []struct {
		name, attempt, timeout string
		conns                  int
	}{
		{"attempts time out", "500ms", "5", awsapp.MaxAttempts},
		{"deadline margin", "1m", "3", 1},
	} {
		for _, c := range []struct{ fn, stall string }{
			{"api", "DYNAMODB"}, {"api", "KMS"}, {"resolve", "DYNAMODB"}, {"resolve", "KMS"},
		} {
			t.Run(bound.name+"/"+c.fn+" with "+c.stall+" stalled", func(t *testing.T) {
				stall := lambdatest.StartStaller(t)
				env := s.apiEnv
				if c.fn == "resolve" {
					env = s.resolveEnv
				}
				env = setEnv(env, "AWS_ENDPOINT_URL_"+c.stall+"="+stall.URL,
					"AWS_LAMBDA_FUNCTION_TIMEOUT="+bound.timeout, "MOBIUS_AWS_ATTEMPT_TIMEOUT="+bound.attempt)
				fn := lambdatest.Start(t, bootstrap(t, "./functions/"+c.fn), env)
				start := time.Now()
				if c.fn == "api" {
					// A create reads DynamoDB (the key) and asks KMS for a
					// data key.
					r := apiCall(t, fn, lambdatest.Event(t, "api-create.json", s.apiKey, nil))
					if r.StatusCode != 503 || r.Headers["Retry-After"] == "" || !strings.Contains(r.Body, `"Service Unavailable"`) {
						t.Errorf("create: %d %v %s, want 503 with Retry-After\noutput:\n%s", r.StatusCode, r.Headers, r.Body, fn.Output.String())
					}
				} else {
					_, fe := resolveCall(t, fn, s.event(`"${secret:openai.api_key}"`))
					if fe == nil || fe.ErrorType != "Unavailable" {
						t.Errorf("resolve: %+v, want errorType Unavailable\noutput:\n%s", fe, fn.Output.String())
					}
				}
				t.Logf("answered after %v with a %ss function timeout; %d attempt(s) reached the stalled %s",
					time.Since(start).Round(10*time.Millisecond), bound.timeout, stall.Conns(), c.stall)
				if fn.Contains("Task timed out") {
					t.Errorf("the invocation timed out:\n%s", fn.Output.String())
				}
				if stall.Conns() != bound.conns {
					t.Errorf("the stalled %s saw %d connection(s), want %d", c.stall, stall.Conns(), bound.conns)
				}
			})
		}
	}
}

// A KMS key the functions may not use, or that does not exist, is a
// configuration error that names the key: a 500 whose message says what to
// fix from the API, a function error saying so from resolve; never an
// integrity failure, never a 503 to retry.
func TestKMSMisconfiguredUnderEmulator(t *testing.T) {
	s := seed(t)
	keyRef := lambdatest.EnvValue(t, s.apiEnv, "MOBIUS_KMS_KEY_ID")
	denied := lambdatest.StartFaultProxy(t, s.moto, map[string]string{"GenerateDataKey": "AccessDeniedException", "Decrypt": "AccessDeniedException"})
	for _, c := range []struct {
		name, key, kmsURL, says string
	}{
		{"access denied", keyRef, denied, "access denied"},
		{"no such key", "alias/mobius-no-such-key", s.moto, "no such key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			api := lambdatest.Start(t, bootstrap(t, "./functions/api"), setEnv(s.apiEnv, "AWS_ENDPOINT_URL_KMS="+c.kmsURL, "MOBIUS_KMS_KEY_ID="+c.key))
			r := apiCall(t, api, lambdatest.Event(t, "api-create.json", s.apiKey, func(ev map[string]any) {
				ev["body"] = `{"name":"misconfigured","values":{"k":"v"}}`
			}))
			var env struct {
				Error struct{ Code, Message string }
			}
			json.Unmarshal([]byte(r.Body), &env)
			if r.StatusCode != 500 || !strings.Contains(env.Error.Message, c.key) || !strings.Contains(env.Error.Message, c.says) || r.Headers["Retry-After"] != "" {
				t.Errorf("create: %d %s, want a 500 naming %s and saying %q", r.StatusCode, r.Body, c.key, c.says)
			}
			res := lambdatest.Start(t, bootstrap(t, "./functions/resolve"), setEnv(s.resolveEnv, "AWS_ENDPOINT_URL_KMS="+c.kmsURL, "MOBIUS_KMS_KEY_ID="+c.key))
			_, fe := resolveCall(t, res, s.event(`"${secret:openai.api_key}"`))
			if fe == nil || fe.ErrorType == "Unavailable" || !strings.Contains(fe.ErrorMessage, c.key) || !strings.Contains(fe.ErrorMessage, c.says) {
				t.Errorf("resolve: %+v, want an error naming %s and saying %q", fe, c.key, c.says)
			}
			for name, fn := range map[string]*lambdatest.Emulator{"api": api, "resolve": res} {
				if fn.Contains("INTEGRITY FAILURE", canaryAPI) {
					t.Errorf("the %s function logged an integrity failure or a value:\n%s", name, fn.Output.String())
				}
			}
		})
	}
}

// The API's own events: named stage, custom domain base path, a base64
// body, a comma in Idempotency-Key; and the events the edge must refuse
// with the API's envelope rather than fail the invocation.
func TestAPIEventsUnderEmulator(t *testing.T) {
	s := seed(t)
	api := lambdatest.Start(t, bootstrap(t, "./functions/api"), setEnv(s.apiEnv, "MOBIUS_BASE_PATH=secrets"))
	big := strings.Repeat("x", 1<<20+1)
	for _, c := range []struct {
		name, event string
		edit        func(map[string]any)
		status      int
		code        string
	}{
		{"named stage", "named-stage-get.json", nil, 200, ""},
		{"named stage health", "named-stage-healthz.json", nil, 200, ""},
		{"custom domain base path", "custom-domain-get.json", nil, 200, ""},
		{"base64 body", "base64-create.json", nil, 201, ""},
		{"bad base64 body", "bad-base64.json", nil, 400, "Bad Request"},
		{"bad percent-encoding", "bad-percent-path.json", nil, 400, "Bad Request"},
		{"body over the limit", "api-create.json", func(ev map[string]any) { ev["body"] = big }, 413, "Payload Too Large"},
		{"base64 body over the limit", "base64-create.json", func(ev map[string]any) { ev["body"] = strings.Repeat("QUFB", (1<<20)/3+2) }, 413, "Payload Too Large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := apiCall(t, api, lambdatest.Event(t, c.event, s.apiKey, c.edit))
			if r.StatusCode != c.status || (c.code != "" && !strings.Contains(r.Body, `"code":"`+c.code+`"`)) {
				t.Errorf("%d %s, want %d %s", r.StatusCode, r.Body, c.status, c.code)
			}
		})
	}
	t.Run("comma in Idempotency-Key", func(t *testing.T) {
		var ids []string
		for range 2 {
			r := apiCall(t, api, lambdatest.Event(t, "idempotency-key-comma.json", s.apiKey, nil))
			var sec struct{ ID string }
			json.Unmarshal([]byte(r.Body), &sec)
			if r.StatusCode != 201 || r.Headers["X-Request-Id"] != "loop-run-7.step-2" {
				t.Fatalf("%d %v %s", r.StatusCode, r.Headers, r.Body)
			}
			ids = append(ids, sec.ID)
		}
		if ids[0] == "" || ids[0] != ids[1] {
			t.Errorf("a retry with the same key made another secret: %v", ids)
		}
		r := apiCall(t, api, lambdatest.Event(t, "idempotency-key-comma.json", s.apiKey, func(ev map[string]any) {
			ev["headers"].(map[string]any)["idempotency-key"] = "run-7,step-3"
		}))
		if r.StatusCode != 409 {
			t.Errorf("a different key after the comma: %d %s, want 409 (a new request, the name taken)", r.StatusCode, r.Body)
		}
	})
	if api.Contains(canaryAPI, "sk-example-not-a-real-key", s.apiKey) {
		t.Errorf("a value or the API key reached the output:\n%s", api.Output.String())
	}
}

// What the emulator itself prints: the platform's START, END and REPORT
// lines, and its own log lines.
var emulatorLine = regexp.MustCompile(`^(START|END|REPORT) RequestId: |\((rapid|runtime)\)|^time=|^\d{2} \w{3} \d{4} `)

var startLine = regexp.MustCompile(`^START RequestId: ([0-9a-f-]+)`)

// Every line the functions write is a JSON object carrying the Lambda
// request ID of an invocation the emulator started, and for the API also
// API Gateway's request ID and the X-Request-Id it answered with; the
// runtime's own report of a function error (the standard log package)
// included.
func TestLogLinesUnderEmulator(t *testing.T) {
	s := seed(t)
	api := lambdatest.Start(t, bootstrap(t, "./functions/api"), s.apiEnv)
	res := lambdatest.Start(t, bootstrap(t, "./functions/resolve"), s.resolveEnv)

	gatewayIDs, requestIDs := map[string]bool{}, map[string]bool{}
	for _, ev := range []string{"api-get.json", "api-not-found.json", "api-unauthorized.json", "bad-base64.json", "idempotency-key-comma.json"} {
		raw := lambdatest.Event(t, ev, s.apiKey, nil)
		var e struct{ RequestContext struct{ RequestID string } }
		json.Unmarshal(raw, &e)
		gatewayIDs[e.RequestContext.RequestID] = true
		r := apiCall(t, api, raw)
		requestIDs[r.Headers["X-Request-Id"]] = true
	}
	resolveCall(t, res, s.event(`"${secret:openai.api_key}"`))
	if _, fe := resolveCall(t, res, s.event(`"${secret:openai.nope}"`)); fe == nil || fe.ErrorType != "NotFound" {
		t.Fatalf("want a NotFound function error, got %+v", fe)
	}

	for name, fn := range map[string]*lambdatest.Emulator{"api": api, "resolve": res} {
		t.Run(name, func(t *testing.T) {
			// Every invocation the emulator started has ended in the output.
			ended := fn.WaitFor(10*time.Second, func(out string) bool {
				starts, ends := 0, 0
				for _, l := range strings.Split(out, "\n") {
					starts += boolInt(strings.HasPrefix(l, "START RequestId: "))
					ends += boolInt(strings.HasPrefix(l, "END RequestId: "))
				}
				return starts > 0 && starts == ends
			})
			if !ended {
				t.Errorf("not every invocation ended in the output within 10s")
			}
			out := fn.Output.String()
			invocations := map[string]bool{}
			for _, l := range strings.Split(out, "\n") {
				if m := startLine.FindStringSubmatch(l); m != nil {
					invocations[m[1]] = true
				}
			}
			lines, runtimeReport, initDone := 0, false, false
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				l = strings.TrimSpace(l)
				if l == "" || emulatorLine.MatchString(l) {
					continue
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Errorf("a line the function wrote is not JSON: %q", l)
					continue
				}
				lines++
				id, _ := m["aws_request_id"].(string)
				if id == "" && !initDone {
					continue // the init phase, before any invocation
				}
				initDone = true
				if !invocations[id] {
					t.Errorf("aws_request_id %q is no invocation's (%v): %s", id, invocations, l)
				}
				if name == "api" {
					gw, _ := m["apigw_request_id"].(string)
					rid, _ := m["request_id"].(string)
					if !gatewayIDs[gw] || !requestIDs[rid] {
						t.Errorf("apigw_request_id %q / request_id %q are not those of a request sent: %s", gw, rid, l)
					}
				}
				if msg, _ := m["msg"].(string); strings.Contains(msg, `"errorType":"NotFound"`) {
					runtimeReport = true
				}
			}
			if lines == 0 || len(invocations) == 0 {
				t.Fatalf("no function lines (%d) or no START lines (%d) in:\n%s", lines, len(invocations), out)
			}
			if name == "resolve" && !runtimeReport {
				t.Errorf("the runtime's report of the function error is not among the JSON lines:\n%s", out)
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
