package lambdainvoke_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/mobius-secrets/mobius/pkg/lambdainvoke"
)

// TestAWSSDK drives the adapter with the AWS SDK for Go v2's Lambda client,
// as a runner does: every field the SDK reads comes out as it does from
// Lambda.
func TestAWSSDK(t *testing.T) {
	f := newFixture(t, lambdainvoke.Options{})
	lc := lambda.New(lambda.Options{
		Region:       "eu-central-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret-test", ""),
		BaseEndpoint: aws.String(f.srv.URL),
		Retryer:      aws.NopRetryer{},
	})
	ctx := context.Background()
	invoke := func(in *lambda.InvokeInput) (*lambda.InvokeOutput, error) {
		if in.FunctionName == nil {
			in.FunctionName = aws.String("mobius-resolve")
		}
		return lc.Invoke(ctx, in)
	}

	t.Run("a result", func(t *testing.T) {
		out, err := invoke(&lambda.InvokeInput{Payload: []byte(`{"input":{"k":"v"}}`)})
		if err != nil {
			t.Fatal(err)
		}
		if out.StatusCode != 200 || aws.ToString(out.ExecutedVersion) != "$LATEST" || out.FunctionError != nil || out.LogResult != nil ||
			!jsonEqual(t, string(out.Payload), `{"output":{"k":"v"},"plain":""}`) {
			t.Errorf("%+v %s", out, out.Payload)
		}
		if id, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata); !ok || !strings.HasPrefix(id, "00000000-0000-4000-8000-") {
			t.Errorf("request ID %q", id)
		}
	})
	t.Run("a qualifier", func(t *testing.T) {
		out, err := invoke(&lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:eu-central-1:123456789012:function:ResolveFunction"), Qualifier: aws.String("prod"), Payload: []byte(`{}`)})
		if err != nil || aws.ToString(out.ExecutedVersion) != "prod" {
			t.Fatalf("%v %+v", err, out)
		}
	})
	t.Run("a function error", func(t *testing.T) {
		out, err := invoke(&lambda.InvokeInput{Payload: []byte(`{"fail":"Forbidden"}`)})
		if err != nil {
			t.Fatal(err)
		}
		if out.StatusCode != 200 || aws.ToString(out.FunctionError) != "Unhandled" || !jsonEqual(t, string(out.Payload), `{"errorType":"Forbidden","errorMessage":"it failed as asked"}`) {
			t.Errorf("%+v %s", out, out.Payload)
		}
	})
	t.Run("the log tail", func(t *testing.T) {
		out, err := invoke(&lambda.InvokeInput{LogType: types.LogTypeTail, Payload: []byte(`{"log":["from the sdk"]}`)})
		if err != nil {
			t.Fatal(err)
		}
		log, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
		if err != nil || !strings.Contains(string(log), `"msg":"from the sdk"`) || !strings.HasPrefix(string(log), "START RequestId: ") {
			t.Errorf("LogResult %q: %v", log, err)
		}
	})
	t.Run("DryRun", func(t *testing.T) {
		before := f.calls()
		out, err := invoke(&lambda.InvokeInput{InvocationType: types.InvocationTypeDryRun, Payload: []byte(`{}`)})
		if err != nil || out.StatusCode != 204 || len(out.Payload) != 0 || f.calls() != before {
			t.Errorf("%v %+v", err, out)
		}
	})

	errs := []struct {
		name   string
		in     *lambda.InvokeInput
		status int
		code   string
		msg    string
		typed  func(error) bool
	}{
		{"an unknown function", &lambda.InvokeInput{FunctionName: aws.String("nope"), Payload: []byte(`{}`)}, 404, "ResourceNotFoundException",
			"Function not found: arn:aws:lambda:eu-central-1:000000000000:function:nope",
			func(err error) bool {
				var e *types.ResourceNotFoundException
				return errors.As(err, &e) && aws.ToString(e.Type) == "User"
			}},
		{"a payload that is not JSON", &lambda.InvokeInput{Payload: []byte(`{"input":`)}, 400, "InvalidRequestContentException",
			"Could not parse request body into json: Could not parse payload into json: the JSON ends early",
			func(err error) bool { var e *types.InvalidRequestContentException; return errors.As(err, &e) }},
		{"an Event invocation", &lambda.InvokeInput{InvocationType: types.InvocationTypeEvent, Payload: []byte(`{}`)}, 400, "InvalidParameterValueException", "",
			func(err error) bool { var e *types.InvalidParameterValueException; return errors.As(err, &e) }},
		{"qualifiers that disagree", &lambda.InvokeInput{FunctionName: aws.String("mobius-resolve:a"), Qualifier: aws.String("b"), Payload: []byte(`{}`)}, 400, "InvalidParameterValueException",
			"The derived qualifier from the function name does not match the specified qualifier.",
			func(err error) bool { var e *types.InvalidParameterValueException; return errors.As(err, &e) }},
		{"a payload over 6 MB", &lambda.InvokeInput{Payload: []byte(`"` + strings.Repeat("a", lambdainvoke.MaxPayloadBytes) + `"`)}, 413, "RequestEntityTooLargeException",
			"Request must be smaller than 6291456 bytes for the InvokeFunction operation", func(error) bool { return true }},
	}
	for _, c := range errs {
		t.Run(c.name, func(t *testing.T) {
			_, err := invoke(c.in)
			var ae smithy.APIError
			var re *awshttp.ResponseError
			if !errors.As(err, &ae) || !errors.As(err, &re) {
				t.Fatalf("%T %v", err, err)
			}
			if ae.ErrorCode() != c.code || re.HTTPStatusCode() != c.status || (c.msg != "" && ae.ErrorMessage() != c.msg) || !c.typed(err) {
				t.Errorf("got %d %s %q (%T)", re.HTTPStatusCode(), ae.ErrorCode(), ae.ErrorMessage(), errors.Unwrap(err))
			}
			if re.ServiceRequestID() == "" {
				t.Error("no request ID on the error")
			}
		})
	}
}

// TestAWSCLI drives the adapter with `aws lambda invoke`, version 1 of the
// AWS CLI (its --payload is the raw JSON; version 2 needs
// --cli-binary-format raw-in-base64-out for the same).
func TestAWSCLI(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatal("the AWS CLI is not on PATH: pip install awscli (scripts/check-tools.sh)")
	}
	f := newFixture(t, lambdainvoke.Options{})
	home := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret-test", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_MAX_ATTEMPTS=1", "AWS_PAGER="}
	run := func(t *testing.T, args ...string) (code int, stdout, stderr, out string) {
		t.Helper()
		outFile := filepath.Join(t.TempDir(), "out.json")
		cmd := exec.Command("aws", append(append([]string{"lambda", "invoke", "--endpoint-url", f.srv.URL}, args...), outFile)...)
		cmd.Env = env
		var so, se strings.Builder
		cmd.Stdout, cmd.Stderr = &so, &se
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(outFile)
		return cmd.ProcessState.ExitCode(), so.String(), se.String(), string(b)
	}
	meta := func(t *testing.T, stdout string) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(stdout), &m); err != nil {
			t.Fatalf("stdout %q: %v", stdout, err)
		}
		return m
	}

	t.Run("a result", func(t *testing.T) {
		code, so, se, out := run(t, "--function-name", "mobius-resolve", "--payload", `{"input":{"k":"v"}}`)
		m := meta(t, so)
		if code != 0 || m["StatusCode"] != float64(200) || m["ExecutedVersion"] != "$LATEST" || m["FunctionError"] != nil ||
			!jsonEqual(t, out, `{"output":{"k":"v"},"plain":""}`) {
			t.Errorf("exit %d, stdout %s, stderr %s, out %s", code, so, se, out)
		}
	})
	t.Run("a function error", func(t *testing.T) {
		code, so, se, out := run(t, "--function-name", "ResolveFunction", "--payload", `{"fail":"NotFound"}`)
		m := meta(t, so)
		if code != 0 || m["FunctionError"] != "Unhandled" || !jsonEqual(t, out, `{"errorType":"NotFound","errorMessage":"it failed as asked"}`) {
			t.Errorf("exit %d, stdout %s, stderr %s, out %s", code, so, se, out)
		}
	})
	t.Run("the log tail and a qualifier", func(t *testing.T) {
		code, so, se, _ := run(t, "--function-name", "arn:aws:lambda:us-east-1:123456789012:function:mobius-resolve", "--qualifier", "prod",
			"--log-type", "Tail", "--payload", `{"log":["from the cli"]}`)
		m := meta(t, so)
		lr, _ := m["LogResult"].(string)
		log, err := base64.StdEncoding.DecodeString(lr)
		if code != 0 || m["ExecutedVersion"] != "prod" || err != nil || !strings.Contains(string(log), "from the cli") {
			t.Errorf("exit %d, stdout %s, stderr %s", code, so, se)
		}
	})
	t.Run("DryRun", func(t *testing.T) {
		code, so, se, _ := run(t, "--function-name", "mobius-resolve", "--invocation-type", "DryRun", "--payload", `{}`)
		if m := meta(t, so); code != 0 || m["StatusCode"] != float64(204) {
			t.Errorf("exit %d, stdout %s, stderr %s", code, so, se)
		}
	})
	t.Run("an unknown function", func(t *testing.T) {
		code, so, se, _ := run(t, "--function-name", "nope", "--payload", `{}`)
		if code == 0 || !strings.Contains(se, "(ResourceNotFoundException)") || !strings.Contains(se, "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope") {
			t.Errorf("exit %d, stdout %s, stderr %s", code, so, se)
		}
	})
	t.Run("a payload that is not JSON", func(t *testing.T) {
		code, so, se, _ := run(t, "--function-name", "mobius-resolve", "--payload", `{"input":`)
		if code == 0 || !strings.Contains(se, "(InvalidRequestContentException)") {
			t.Errorf("exit %d, stdout %s, stderr %s", code, so, se)
		}
	})
}
