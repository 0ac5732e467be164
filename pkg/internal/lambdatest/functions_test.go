package lambdatest_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/internal/lambdatest"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func TestMain(m *testing.M) {
	awstest.Main(m, lambdatest.Cleanup)
}

// Plaintext values that must never appear in either function's output.
const (
	canaryAPI    = "sk-CANARY-made-through-the-api-9f2c"
	canaryDBPass = "CANARY-db-password-41d7"
	canaryBravo  = "sk-CANARY-bravo-only-3e11"
	sampleValue  = "sk-example-not-a-real-key" // the value in infra/events/api-create.json
)

// apiResponse is the part of an HTTP API 2.0 response the tests read.
type apiResponse struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

type fnError struct {
	ErrorType    string `json:"errorType"`
	ErrorMessage string `json:"errorMessage"`
}

// TestFunctionsUnderEmulator builds both functions, runs each under
// aws-lambda-rie against DynamoDB and KMS on moto, configured as
// infra/env.json configures `sam local`, and drives them with the sample
// events of infra/events.
func TestFunctionsUnderEmulator(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)

	apiEnv := lambdatest.FunctionEnv(t, "ApiFunction", moto, awstest.Region)
	resolveEnv := lambdatest.FunctionEnv(t, "ResolveFunction", moto, awstest.Region)
	// The local stand-ins, as the README's `sam local` steps make them.
	svc := lambdatest.StandIns(t, moto, apiEnv)
	_, apiKey, err := svc.CreateAPIKey(ctx, "acme", "emulator-test", secrets.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "db", Values: map[string]string{"password": canaryDBPass, "user": "app"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateSecret(ctx, "bravo", secrets.CreateSecretInput{Name: "bravo-only", Values: map[string]string{"k": canaryBravo}}); err != nil {
		t.Fatal(err)
	}

	api := lambdatest.Start(t, lambdatest.Build(t, "./functions/api"), apiEnv)
	res := lambdatest.Start(t, lambdatest.Build(t, "./functions/resolve"), resolveEnv)
	t.Cleanup(func() {
		for name, fn := range map[string]*lambdatest.Emulator{"api": api, "resolve": res} {
			if fn.Contains(canaryAPI, canaryDBPass, canaryBravo, sampleValue, apiKey, "CANARY-taker") {
				t.Errorf("a plaintext value or the API key reached the %s function's output:\n%s", name, fn.Output.String())
			}
		}
	})

	// The API, through HTTP API 2.0 events.
	callAPI := func(t *testing.T, event string, edit func(map[string]any)) apiResponse {
		t.Helper()
		status, body := api.Invoke(t, lambdatest.Event(t, event, apiKey, edit))
		var r apiResponse
		if status != 200 || json.Unmarshal(body, &r) != nil || r.StatusCode == 0 {
			t.Fatalf("%s: emulator status %d, body %s\noutput:\n%s", event, status, body, api.Output.String())
		}
		return r
	}
	t.Run("api create", func(t *testing.T) {
		r := callAPI(t, "api-create.json", func(ev map[string]any) {
			ev["body"] = strings.ReplaceAll(ev["body"].(string), sampleValue, canaryAPI)
		})
		var sec map[string]any
		json.Unmarshal([]byte(r.Body), &sec)
		if r.StatusCode != 201 || sec["name"] != "openai" || sec["current_version"] != float64(1) || r.Headers["Etag"]+r.Headers["ETag"]+r.Headers["etag"] == "" {
			t.Errorf("create: %d %v %s", r.StatusCode, r.Headers, r.Body)
		}
		if strings.Contains(r.Body, canaryAPI) {
			t.Errorf("the value came back: %s", r.Body)
		}
	})
	t.Run("api get", func(t *testing.T) {
		r := callAPI(t, "api-get.json", nil)
		var sec map[string]any
		json.Unmarshal([]byte(r.Body), &sec)
		if r.StatusCode != 200 || sec["name"] != "openai" || sec["project"] != "acme" || strings.Contains(r.Body, canaryAPI) {
			t.Errorf("get: %d %s", r.StatusCode, r.Body)
		}
	})
	t.Run("api unauthorized", func(t *testing.T) {
		r := callAPI(t, "api-unauthorized.json", nil)
		if r.StatusCode != 401 || !strings.Contains(r.Body, `"Unauthorized"`) {
			t.Errorf("no key: %d %s", r.StatusCode, r.Body)
		}
		r = callAPI(t, "api-get.json", func(ev map[string]any) {
			ev["headers"].(map[string]any)["authorization"] = "Bearer mbs_not-a-key"
		})
		if r.StatusCode != 401 {
			t.Errorf("bad key: %d %s", r.StatusCode, r.Body)
		}
	})
	t.Run("api not found", func(t *testing.T) {
		r := callAPI(t, "api-not-found.json", nil)
		if r.StatusCode != 404 || !strings.Contains(r.Body, `"Not Found"`) {
			t.Errorf("unknown secret: %d %s", r.StatusCode, r.Body)
		}
		r = callAPI(t, "api-get.json", func(ev map[string]any) {
			p := "/v1/projects/bravo/secrets/bravo-only"
			ev["rawPath"] = p
			ev["requestContext"].(map[string]any)["http"].(map[string]any)["path"] = p
		})
		if r.StatusCode != 404 {
			t.Errorf("another project's secret: %d %s", r.StatusCode, r.Body)
		}
	})

	// The resolve function, through the sample events and raw invocations,
	// under a grant of acme for openai and db, minted as a scheduler would.
	by, err := svc.Authenticate(ctx, apiKey)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(t *testing.T, project string, key *secrets.APIKey, ttl time.Duration, names ...string) string {
		t.Helper()
		_, g, err := svc.MintGrant(ctx, project, key, secrets.MintGrantInput{Secrets: names, TTL: ttl, Run: json.RawMessage(`{"run_id":"rie"}`)})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	grant := mint(t, "acme", by, 0, "openai", "db")
	invoke := func(t *testing.T, payload []byte) (json.RawMessage, *fnError) {
		t.Helper()
		status, body := res.Invoke(t, payload)
		var fe fnError
		if json.Unmarshal(body, &fe) == nil && fe.ErrorType != "" {
			return nil, &fe
		}
		if status != 200 {
			t.Fatalf("emulator status %d, body %s\noutput:\n%s", status, body, res.Output.String())
		}
		return body, nil
	}
	type result struct {
		Output   json.RawMessage `json:"output"`
		Resolved []struct {
			Secret, Key string
			Version     int
		} `json:"resolved"`
	}
	event := func(input string) []byte { return []byte(`{"grant":"` + grant + `","input":` + input + `}`) }
	ok := []struct {
		name, event string
		payload     []byte
		want        string
	}{
		{"substitution", "resolve.json", nil,
			`{"url":"https://api.openai.com/v1/chat/completions","headers":{"Authorization":"Bearer ` + canaryAPI + `"},"max_tokens":256}`},
		{"escape", "resolve-escape.json", nil,
			`{"shell":"echo ${HOME} \u0026\u0026 curl -H 'Authorization: Bearer ` + canaryAPI + `'"}`},
		{"nested", "resolve-nested.json", nil,
			`{"steps":[{"env":{"OPENAI_API_KEY":"` + canaryAPI + `"}},[["` + canaryAPI + `"]]],"retries":3,"ratio":0.25,"enabled":true,"note":null}`},
		{"pinned", "resolve-pinned.json", nil, `{"now":"` + canaryAPI + `","pinned":"` + canaryAPI + `"}`},
		{"numbers kept exactly", "", event(`{"n":1.000000000000000000001,"big":12345678901234567890123,"p":"${secret:db.password}"}`),
			`{"n":1.000000000000000000001,"big":12345678901234567890123,"p":"` + canaryDBPass + `"}`},
	}
	for _, c := range ok {
		t.Run("resolve "+c.name, func(t *testing.T) {
			payload := c.payload
			if c.event != "" {
				payload = lambdatest.Event(t, c.event, grant, nil)
			}
			body, fe := invoke(t, payload)
			if fe != nil {
				t.Fatalf("function error %s: %s", fe.ErrorType, fe.ErrorMessage)
			}
			var r result
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			var want, got any
			json.Unmarshal([]byte(c.want), &want)
			json.Unmarshal(r.Output, &got)
			wb, _ := json.Marshal(want)
			gb, _ := json.Marshal(got)
			if string(wb) != string(gb) {
				t.Errorf("output\n got %s\nwant %s", r.Output, c.want)
			}
			if c.name == "numbers kept exactly" && !strings.Contains(string(r.Output), "1.000000000000000000001") {
				t.Errorf("a number changed: %s", r.Output)
			}
			if len(r.Resolved) == 0 {
				t.Errorf("resolved is empty: %s", body)
			}
		})
	}
	const syntax = "a reference has the form ${secret:NAME.KEY}, optionally with @pending, @previous or @N after KEY"
	failures := []struct {
		name, event string
		payload     []byte
		typ, msg    string
	}{
		{"not found", "resolve-not-found.json", nil, "NotFound",
			`2 secret references did not resolve: ${secret:openai.api_key@pending} (secret "openai" has no PENDING version); ` +
				`${secret:openai.no_such_key} (key "no_such_key" not found in secret "openai" (version 1))`},
		{"malformed", "resolve-malformed.json", nil, "BadRequest",
			`3 secret references did not resolve: ${secret:openai.api_key (malformed: unterminated: no closing }); ` +
				`${secret:openai} (malformed: no key; ` + syntax + `); ${secret:} (malformed: empty; ` + syntax + `)`},
		{"forbidden", "resolve-forbidden.json", nil, "Forbidden",
			`2 secret references did not resolve: ${secret:bravo-only.k} (not covered by the resolve grant); ${secret:no-such-secret.api_key} (not covered by the resolve grant)`},
		{"no grant", "resolve-unauthorized.json", nil, "Unauthorized", ""},
		{"invalid event", "", []byte(`{"grant":"` + grant + `","input":1,"extra":true}`), "BadRequest",
			`the event must be a JSON object {"grant", "input", "step"?, "project"?}: unknown field "extra"`},
		{"not JSON", "", []byte(`{"grant":`), "BadRequest", `the event must be a JSON object {"grant", "input", "step"?, "project"?}: invalid JSON: it ends early`},
		{"another project named", "", []byte(`{"grant":"` + grant + `","project":"bravo","input":1}`), "Unauthorized", ""},
		{"a field twice", "", []byte(`{"grant":"` + grant + `","input":1,"grant":"x"}`), "BadRequest",
			`the event must be a JSON object {"grant", "input", "step"?, "project"?}: field "grant" appears more than once`},
		{"a lone surrogate in the input", "", event(`{"a":["${secret:openai.api_key}\ud800"]}`), "BadRequest",
			`input is not strict JSON: a string in the value at /a/0 holds a lone UTF-16 surrogate escape (\uD800-\uDFFF without its pair)`},
		{"a reference in a key", "", event(`{"h":{"${secret:openai.api_key}":1}}`), "BadRequest",
			`input has a secret reference in an object key, at /h/${secret:openai.api_key}: references are substituted in string values only, never in keys; write the key without ${secret:`},
	}
	for _, c := range failures {
		t.Run("resolve "+c.name, func(t *testing.T) {
			payload := c.payload
			if c.event != "" {
				payload = lambdatest.Event(t, c.event, grant, nil)
			}
			body, fe := invoke(t, payload)
			if fe == nil {
				t.Fatalf("no function error; result %s", body)
			}
			if fe.ErrorType != c.typ || (c.msg != "" && fe.ErrorMessage != c.msg) {
				t.Errorf("error\n got %s: %s\nwant %s: %s", fe.ErrorType, fe.ErrorMessage, c.typ, c.msg)
			}
		})
	}

	// The grant matrix under the emulator: each refusal gives its exact
	// errorType, no value, and no audit record.
	auditCount := func() int {
		n := 0
		for _, name := range []string{"openai", "db"} {
			rs, _, err := svc.ListResolutions(ctx, "acme", name, "", 1000)
			if err != nil {
				t.Fatal(err)
			}
			n += len(rs)
		}
		return n
	}
	t.Run("grant matrix", func(t *testing.T) {
		flip := func(g string, at int) string { b := []byte(g); b[at] ^= 0x04; return string(b) }
		in := `"Bearer ${secret:openai.api_key}"`
		cases := []struct {
			name  string
			grant func(t *testing.T) string
			input string
			typ   string
		}{
			{"no grant", func(*testing.T) string { return "" }, in, "Unauthorized"},
			{"malformed", func(*testing.T) string { return "mbg_not-a-grant" }, in, "Unauthorized"},
			{"one byte changed", func(*testing.T) string { return flip(grant, 12) }, in, "Unauthorized"},
			{"expired", func(t *testing.T) string {
				g := mint(t, "acme", by, time.Second, "openai")
				time.Sleep(1100 * time.Millisecond)
				return g
			}, in, "Unauthorized"},
			{"revoked", func(t *testing.T) string {
				g := mint(t, "acme", by, 0, "openai")
				list, _, _ := svc.ListGrants(ctx, "acme", "", 0)
				if err := svc.RevokeGrant(ctx, "acme", list[len(list)-1].ID); err != nil {
					t.Fatal(err)
				}
				return g
			}, in, "Unauthorized"},
			{"minted by a revoked key", func(t *testing.T) string {
				k, _, err := svc.CreateAPIKey(ctx, "acme", "doomed", secrets.AllScopes)
				if err != nil {
					t.Fatal(err)
				}
				g := mint(t, "acme", k, 0, "openai")
				if err := svc.RevokeAPIKey(ctx, "acme", k.ID); err != nil {
					t.Fatal(err)
				}
				return g
			}, in, "Unauthorized"},
			{"another project's grant", func(t *testing.T) string {
				k, _, err := svc.CreateAPIKey(ctx, "bravo", "bravo", secrets.AllScopes)
				if err != nil {
					t.Fatal(err)
				}
				return mint(t, "bravo", k, 0, "bravo-only")
			}, in, "Forbidden"},
			{"a grant for one secret used for another", func(t *testing.T) string { return mint(t, "acme", by, 0, "db") }, in, "Forbidden"},
		}
		before := auditCount()
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				g := c.grant(t)
				_, fe := invoke(t, []byte(`{"grant":"`+g+`","input":`+c.input+`}`))
				if fe == nil || fe.ErrorType != c.typ {
					t.Fatalf("got %+v, want %s", fe, c.typ)
				}
				if strings.Contains(fe.ErrorMessage, "CANARY") {
					t.Fatalf("a value in the error: %s", fe.ErrorMessage)
				}
			})
		}
		if after := auditCount(); after != before {
			t.Errorf("refused calls wrote %d audit records", after-before)
		}
		// A rename keeps the grant; a new secret that takes the old name
		// is not covered.
		renamed := mint(t, "acme", by, 0, "db")
		to := "db-main"
		if _, err := svc.UpdateSecret(ctx, "acme", "db", secrets.UpdateSecretInput{Name: &to}); err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{"db-main", "db"} {
			if _, fe := invoke(t, []byte(`{"grant":"`+renamed+`","input":"${secret:`+ref+`.password}"}`)); fe != nil {
				t.Errorf("after a rename, %s: %s %s", ref, fe.ErrorType, fe.ErrorMessage)
			}
		}
		if _, err := svc.DeleteAlias(ctx, "acme", "db-main", "db"); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "db", Values: map[string]string{"password": "CANARY-taker"}}); err != nil {
			t.Fatal(err)
		}
		if _, fe := invoke(t, []byte(`{"grant":"`+renamed+`","input":"${secret:db.password}"}`)); fe == nil || fe.ErrorType != "Forbidden" {
			t.Errorf("a new secret under the old name: %+v", fe)
		}
	})

	t.Run("resolve through the AWS SDK's Lambda client", func(t *testing.T) {
		lc := awslambda.New(awslambda.Options{
			Region:       awstest.Region,
			Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret-test", ""),
			BaseEndpoint: aws.String(res.URL),
		})
		out, err := lc.Invoke(ctx, &awslambda.InvokeInput{
			FunctionName: aws.String("function"),
			Payload:      []byte(`{"grant":"` + grant + `","input":{"dsn":"postgres://app:${secret:db-main.password}@db/app"},"step":{"step":"sdk"}}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		var r result
		if err := json.Unmarshal(out.Payload, &r); err != nil {
			t.Fatalf("payload %s: %v", out.Payload, err)
		}
		if string(r.Output) != `{"dsn":"postgres://app:`+canaryDBPass+`@db/app"}` || len(r.Resolved) != 1 || r.Resolved[0].Version != 1 {
			t.Errorf("payload %s", out.Payload)
		}
		out, err = lc.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("function"), Payload: event(`"${secret:openai.nope}"`)})
		if err != nil {
			t.Fatal(err)
		}
		var fe fnError
		json.Unmarshal(out.Payload, &fe)
		if fe.ErrorType != "NotFound" {
			t.Errorf("payload %s", out.Payload)
		}
	})

	t.Run("audit recorded without values", func(t *testing.T) {
		rs, _, err := svc.ListResolutions(ctx, "acme", "db-main", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range rs {
			if string(r.Step) == `{"step":"sdk"}` && string(r.Run) == `{"run_id":"rie"}` && r.Version == 1 && strings.Join(r.Keys, ",") == "password" && r.GrantID != "" {
				found = true
			}
			b, _ := json.Marshal(r)
			if strings.Contains(string(b), "CANARY") {
				t.Errorf("a value reached the audit: %s", b)
			}
		}
		if !found {
			t.Errorf("no audit record of the SDK invocation among %d", len(rs))
		}
	})

	// The output was captured: the resolve function logged its work.
	if !strings.Contains(res.Output.String(), `"msg":"resolved"`) || !strings.Contains(api.Output.String(), "{") {
		t.Errorf("the functions' logs were not captured:\napi:\n%s\nresolve:\n%s", api.Output.String(), res.Output.String())
	}
}

// MaxBootstrapBytes is the budget of one function's bootstrap as deployed
// (12 MB): a small binary loads and starts faster on a cold container.
const MaxBootstrapBytes = 12_000_000

// Each function's bootstrap, built as `sam build` builds it (the Makefile's
// build targets: linux/arm64, stripped), fits the budget.
func TestBootstrapSizes(t *testing.T) {
	root := lambdatest.ModuleRoot(t)
	for _, fn := range []string{"ApiFunction", "ResolveFunction", "PublishFunction", "SweepFunction"} {
		t.Run(fn, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command("make", "--no-print-directory", "build-"+fn, "ARTIFACTS_DIR="+dir)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make build-%s: %v\n%s", fn, err, out)
			}
			fi, err := os.Stat(filepath.Join(dir, "bootstrap"))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s bootstrap: %d bytes (%.1f MB)", fn, fi.Size(), float64(fi.Size())/1e6)
			if fi.Size() > MaxBootstrapBytes {
				t.Errorf("%s bootstrap is %d bytes; the budget is %d", fn, fi.Size(), MaxBootstrapBytes)
			}
		})
	}
}
