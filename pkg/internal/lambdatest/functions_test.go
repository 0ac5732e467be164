package lambdatest_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/internal/lambdatest"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func TestMain(m *testing.M) {
	defer lambdatest.Cleanup()
	awstest.Main(m)
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
			if fn.Contains(canaryAPI, canaryDBPass, canaryBravo, sampleValue, apiKey) {
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

	// The resolve function, through the sample events and raw invocations.
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
	ok := []struct {
		name, event, payload, want string
	}{
		{"substitution", "resolve.json", "",
			`{"url":"https://api.openai.com/v1/chat/completions","headers":{"Authorization":"Bearer ` + canaryAPI + `"},"max_tokens":256}`},
		{"escape", "resolve-escape.json", "",
			`{"shell":"echo ${HOME} \u0026\u0026 curl -H 'Authorization: Bearer ` + canaryAPI + `'"}`},
		{"nested", "resolve-nested.json", "",
			`{"steps":[{"env":{"OPENAI_API_KEY":"` + canaryAPI + `"}},[["` + canaryAPI + `"]]],"retries":3,"ratio":0.25,"enabled":true,"note":null}`},
		{"numbers kept exactly", "", `{"project":"acme","input":{"n":1.000000000000000000001,"big":12345678901234567890123,"p":"${secret:db.password}"}}`,
			`{"n":1.000000000000000000001,"big":12345678901234567890123,"p":"` + canaryDBPass + `"}`},
	}
	for _, c := range ok {
		t.Run("resolve "+c.name, func(t *testing.T) {
			payload := []byte(c.payload)
			if c.event != "" {
				payload = lambdatest.Event(t, c.event, "", nil)
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
	failures := []struct {
		name, event, payload, typ, msg string
	}{
		{"not found", "resolve-not-found.json", "", "NotFound",
			`2 secret references did not resolve: ${secret:no-such-secret.api_key} (secret "no-such-secret" not found in project "acme"); ` +
				`${secret:openai.no_such_key} (key "no_such_key" not found in secret "openai" (version 1))`},
		{"malformed", "resolve-malformed.json", "", "BadRequest",
			`3 secret references did not resolve: ${secret:openai.api_key (malformed: unterminated: no closing }); ` +
				`${secret:openai} (malformed: no key; a reference has the form ${secret:NAME.KEY}); ${secret:} (malformed: empty; a reference has the form ${secret:NAME.KEY})`},
		{"other project", "resolve-other-project.json", "", "NotFound",
			`1 secret reference did not resolve: ${secret:openai.api_key} (secret "openai" not found in project "bravo")`},
		{"other project by own name", "", `{"project":"acme","input":"${secret:bravo-only.k}"}`, "NotFound",
			`1 secret reference did not resolve: ${secret:bravo-only.k} (secret "bravo-only" not found in project "acme")`},
		{"invalid event", "", `{"project":"acme","input":1,"extra":true}`, "BadRequest",
			`the event must be a JSON object {"project", "input", "run"?}: unknown field "extra"`},
		{"not JSON", "", `{"project":`, "BadRequest", `the event must be a JSON object {"project", "input", "run"?}: invalid JSON`},
		{"invalid project", "", `{"project":"a/b","input":1}`, "BadRequest",
			`project must be 1-64 characters of A-Z a-z 0-9 _ -, starting with a letter or digit`},
	}
	for _, c := range failures {
		t.Run("resolve "+c.name, func(t *testing.T) {
			payload := []byte(c.payload)
			if c.event != "" {
				payload = lambdatest.Event(t, c.event, "", nil)
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

	t.Run("resolve through the AWS SDK's Lambda client", func(t *testing.T) {
		lc := awslambda.New(awslambda.Options{
			Region:       awstest.Region,
			Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret-test", ""),
			BaseEndpoint: aws.String(res.URL),
		})
		out, err := lc.Invoke(ctx, &awslambda.InvokeInput{
			FunctionName: aws.String("function"),
			Payload:      []byte(`{"project":"acme","input":{"dsn":"postgres://app:${secret:db.password}@db/app"},"run":{"run_id":"sdk"}}`),
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
		out, err = lc.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("function"), Payload: []byte(`{"project":"acme","input":"${secret:nope.k}"}`)})
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
		rs, _, err := svc.ListResolutions(ctx, "acme", "db", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range rs {
			if string(r.Run) == `{"run_id":"sdk"}` && r.Version == 1 && strings.Join(r.Keys, ",") == "password" {
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
	for _, fn := range []string{"ApiFunction", "ResolveFunction"} {
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
