package lambdatest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/internal/lambdatest"
	"github.com/mobius-secrets/mobius/pkg/runner"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

const canaryRunner = "sk-CANARY-runner-under-rie-7d20"

// TestRunnerUnderEmulator drives the runner package against the resolve
// bootstrap under aws-lambda-rie, on DynamoDB and KMS on moto. The emulator
// answers a function error as a plain 200 without X-Amz-Function-Error, so
// the runner must know it by its payload.
func TestRunnerUnderEmulator(t *testing.T) {
	ctx := context.Background()
	moto := awstest.StartMoto(t)
	env := lambdatest.FunctionEnv(t, "ResolveFunction", moto, awstest.Region)
	// Its own table and key alias: moto is shared by the test binary.
	for i, kv := range env {
		switch {
		case strings.HasPrefix(kv, "MOBIUS_TABLE="):
			env[i] = "MOBIUS_TABLE=mobius-runner-test"
		case strings.HasPrefix(kv, "MOBIUS_KMS_KEY_ID="):
			env[i] = "MOBIUS_KMS_KEY_ID=alias/mobius-runner-test"
		}
	}
	svc := lambdatest.StandIns(t, moto, env)
	if _, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "openai", Values: map[string]string{"api_key": canaryRunner}}); err != nil {
		t.Fatal(err)
	}
	by, _, err := svc.CreateAPIKey(ctx, "acme", "scheduler", secrets.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	_, grant, err := svc.MintGrant(ctx, "acme", by, secrets.MintGrantInput{Secrets: []string{"openai"}, Run: json.RawMessage(`{"run_id":"rie"}`)})
	if err != nil {
		t.Fatal(err)
	}
	ev := func(input string) []byte { return []byte(`{"grant":"` + grant + `","input":` + input + `}`) }
	fn := lambdatest.Start(t, lambdatest.Build(t, "./functions/resolve"), env)
	t.Cleanup(func() {
		if fn.Contains(canaryRunner) {
			t.Errorf("the value reached the function's output:\n%s", fn.Output.String())
		}
	})
	lc := awslambda.New(awslambda.Options{
		Region:       awstest.Region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret-test", ""),
		BaseEndpoint: aws.String(fn.URL),
	})
	rc := runner.New(lc, "function") // the emulator's one function

	t.Run("a result", func(t *testing.T) {
		res, err := rc.Resolve(ctx, grant, json.RawMessage(`{"auth":"Bearer ${secret:openai.api_key}"}`), map[string]string{"step": "s1"})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Output) != `{"auth":"Bearer `+canaryRunner+`"}` || len(res.Resolved) != 1 || res.Resolved[0] != (runner.Resolved{Secret: "openai", Key: "api_key", Version: 1}) || res.Attempts != 1 {
			t.Errorf("%+v", res)
		}
	})
	t.Run("the emulator sends no X-Amz-Function-Error", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, fn.URL+lambdatest.InvokePath, bytes.NewReader(ev(`"${secret:ghost.k}"`)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "" {
			t.Errorf("the emulator now answers %d with X-Amz-Function-Error %q: the runner's payload check is no longer the only way",
				resp.StatusCode, resp.Header.Get("X-Amz-Function-Error"))
		}
	})
	failures := []struct {
		name, event string
		sentinel    error
		msg         string
	}{
		{"NotFound", string(ev(`["${secret:openai.api_key}","${secret:openai.ghost}"]`)), runner.ErrNotFound,
			`1 secret reference did not resolve: ${secret:openai.ghost} (key "ghost" not found in secret "openai" (version 1))`},
		{"Forbidden", string(ev(`["${secret:openai.api_key}","${secret:ghost.k}"]`)), runner.ErrForbidden,
			`1 secret reference did not resolve: ${secret:ghost.k} (not covered by the resolve grant)`},
		{"Unauthorized", `{"input":"${secret:openai.api_key}"}`, runner.ErrUnauthorized, ""},
		{"BadRequest", string(ev(`"${secret:openai}"`)), runner.ErrBadRequest,
			`1 secret reference did not resolve: ${secret:openai} (malformed: no key; a reference has the form ${secret:NAME.KEY}, optionally with @pending, @previous or @N after KEY)`},
		{"an invalid event", `{"grant":"x","input":1,"extra":true}`, runner.ErrBadRequest, ""},
	}
	for _, c := range failures {
		t.Run(c.name, func(t *testing.T) {
			_, err := rc.Invoke(ctx, []byte(c.event))
			var e *runner.Error
			if !errors.Is(err, c.sentinel) || !errors.As(err, &e) || e.Source != runner.SourceFunction || e.Retryable || e.Attempts != 1 {
				t.Fatalf("%#v", err)
			}
			if c.msg != "" && e.Message != c.msg {
				t.Errorf("message %q", e.Message)
			}
			if strings.Contains(err.Error(), canaryRunner) {
				t.Errorf("the value is in the error: %v", err)
			}
		})
	}
}
