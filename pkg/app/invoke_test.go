package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/internal/testsupport"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/mobius-secrets/mobius/pkg/runner"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

const invokeCanary = "sk-CANARY-invoke-wiring-0b7e"

// TestServeAnswersTheInvokeAPI drives the App's handler, as `mobius serve`
// serves it, with the AWS SDK's Lambda client and the runner package: the
// resolve function answers on the same listener as the HTTP API, and a
// value appears in the output and nowhere else.
func TestServeAnswersTheInvokeAPI(t *testing.T) {
	ctx := context.Background()
	var log testsupport.SyncBuffer
	a, err := New(ctx, Config{Store: StoreBolt, DataDir: t.TempDir()}, slog.New(slog.NewJSONHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if _, err := a.Service.CreateSecret(ctx, DefaultProject, secrets.CreateSecretInput{Name: "openai", Values: map[string]string{"api_key": invokeCanary}}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(srv.Close)
	lc := lambda.New(lambda.Options{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}, BaseEndpoint: aws.String(srv.URL)})

	by, _, err := a.Service.CreateAPIKey(ctx, DefaultProject, "scheduler", secrets.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	_, grant, err := a.Service.MintGrant(ctx, DefaultProject, by, secrets.MintGrantInput{Secrets: []string{"openai"}, Run: json.RawMessage(`{"run_id":"r-invoke"}`)})
	if err != nil {
		t.Fatal(err)
	}
	event := []byte(`{"grant":"` + grant + `","input":{"auth":"Bearer ${secret:openai.api_key}"}}`)
	wantOutput := `{"auth":"Bearer ` + invokeCanary + `"}`

	t.Run("the HTTP API is still there", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		resp2, err := http.Get(srv.URL + "/v1/projects/default/secrets")
		if err != nil {
			t.Fatal(err)
		}
		resp2.Body.Close()
		if resp.StatusCode != 200 || resp2.StatusCode != 401 {
			t.Errorf("healthz %d, an unauthenticated list %d", resp.StatusCode, resp2.StatusCode)
		}
	})
	for _, name := range append([]string{"arn:aws:lambda:us-east-1:123456789012:function:mobius-resolve"}, ResolveFunctionNames...) {
		t.Run("resolve through the SDK as "+name, func(t *testing.T) {
			out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: event, LogType: types.LogTypeTail})
			if err != nil {
				t.Fatal(err)
			}
			var res struct {
				Output   json.RawMessage `json:"output"`
				Resolved []struct {
					Secret, Key string
					Version     int
				} `json:"resolved"`
			}
			if out.FunctionError != nil || json.Unmarshal(out.Payload, &res) != nil || string(res.Output) != wantOutput || len(res.Resolved) != 1 || res.Resolved[0].Version != 1 {
				t.Fatalf("%+v %s", out, out.Payload)
			}
			tail, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
			if err != nil || !strings.Contains(string(tail), `"msg":"resolved"`) || !strings.Contains(string(tail), `"project":"default"`) {
				t.Errorf("log tail %q: %v", tail, err)
			}
			if strings.Contains(string(tail), invokeCanary) {
				t.Errorf("the value reached the log tail: %s", tail)
			}
		})
	}
	t.Run("a reference that does not resolve is a function error", func(t *testing.T) {
		out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("mobius-resolve"), LogType: types.LogTypeTail,
			Payload: []byte(`{"grant":"` + grant + `","input":["${secret:openai.api_key}","${secret:openai.nope}"]}`)})
		if err != nil {
			t.Fatal(err)
		}
		want := `{"errorType":"NotFound","errorMessage":"1 secret reference did not resolve: ${secret:openai.nope} (key \"nope\" not found in secret \"openai\" (version 1))"}`
		if aws.ToString(out.FunctionError) != "Unhandled" || string(out.Payload) != want {
			t.Errorf("%+v %s", out, out.Payload)
		}
		tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
		if !strings.Contains(string(tail), `"error_type":"NotFound"`) || strings.Contains(string(tail), invokeCanary) {
			t.Errorf("log tail %s", tail)
		}
	})
	t.Run("an event the resolver refuses", func(t *testing.T) {
		out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("mobius-resolve"), Payload: []byte(`[1]`)})
		if err != nil || aws.ToString(out.FunctionError) != "Unhandled" || !strings.Contains(string(out.Payload), `"errorType":"BadRequest"`) {
			t.Errorf("%v %s", err, out.Payload)
		}
	})
	t.Run("the runner package", func(t *testing.T) {
		rc := runner.New(lc, runner.LocalFunction)
		res, err := rc.Resolve(ctx, grant, json.RawMessage(`{"auth":"Bearer ${secret:openai.api_key}"}`), map[string]string{"step": "s1"})
		if err != nil || string(res.Output) != wantOutput {
			t.Fatalf("%v %+v", err, res)
		}
		_, err = rc.Resolve(ctx, grant, "${secret:openai.ghost}", nil)
		if !errors.Is(err, runner.ErrNotFound) || strings.Contains(err.Error(), invokeCanary) {
			t.Errorf("%v", err)
		}
		_, err = rc.Resolve(ctx, grant, "${secret:ghost.k}", nil)
		if !errors.Is(err, runner.ErrForbidden) {
			t.Errorf("an uncovered reference: %v", err)
		}
		_, err = rc.Resolve(ctx, grant[:len(grant)-2]+"xx", "${secret:openai.api_key}", nil)
		if !errors.Is(err, runner.ErrUnauthorized) {
			t.Errorf("a changed grant: %v", err)
		}
	})
	t.Run("each resolution is in the audit", func(t *testing.T) {
		rs, _, err := a.Service.ListResolutions(ctx, DefaultProject, "openai", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range rs {
			if string(r.Run) == `{"run_id":"r-invoke"}` {
				n++
			}
		}
		if n != len(ResolveFunctionNames)+2 { // the SDK calls and the runner's
			t.Errorf("%d audit records of the run among %d", n, len(rs))
		}
	})

	if s := log.String(); strings.Contains(s, invokeCanary) {
		t.Errorf("the value reached the server log:\n%s", s)
	} else if !strings.Contains(s, `"msg":"invoked"`) || !strings.Contains(s, `"msg":"resolved"`) {
		t.Errorf("the server log lacks the invocations:\n%s", s)
	}
}
