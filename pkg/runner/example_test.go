package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/mobius-secrets/mobius/pkg/lambdainvoke"
	"github.com/mobius-secrets/mobius/pkg/runner"
)

// The README's snippet: resolve an action's parameters against `mobius
// serve` (on AWS, build lc with lambda.NewFromConfig and pass the
// function's ARN instead of runner.LocalFunction).
func Example() {
	endpoint, grant := localServer() // mobius serve's address, and a grant minted for this run
	ctx := context.Background()

	lc := lambda.New(lambda.Options{ // on AWS: lambda.NewFromConfig(awsCfg)
		Region:       "us-east-1",
		Credentials:  aws.AnonymousCredentials{}, // the grant authorizes the call
		BaseEndpoint: aws.String(endpoint),       // mobius serve's MOBIUS_ENDPOINT
	})
	rc := runner.New(lc, runner.LocalFunction) // on AWS: the stack's ResolveFunctionArn

	params := map[string]any{"url": "https://api.openai.com/v1/chat/completions",
		"headers": map[string]string{"Authorization": "Bearer ${secret:openai.api_key}"}}
	res, err := rc.Resolve(ctx, grant, params, map[string]string{"run_id": "r1", "step": "summarize"})
	switch {
	case errors.Is(err, runner.ErrNotFound), errors.Is(err, runner.ErrForbidden):
		log.Fatal(err) // fix the reference or the grant; retrying will not help
	case err != nil:
		log.Fatal(err) // retries within ctx's deadline are already spent
	}
	var action struct {
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal(res.Output, &action); err != nil { // holds plaintext: never log it
		log.Fatal(err)
	}
	for _, r := range res.Resolved {
		fmt.Printf("%s.%s version %d\n", r.Secret, r.Key, r.Version)
	}
	fmt.Println(strings.HasPrefix(action.Headers["Authorization"], "Bearer sk-"))
	// Output:
	// openai.api_key version 1
	// true
}

// localServer stands in for `mobius serve`: the Invoke API over a function
// that resolves the one reference of the example for the one grant.
func localServer() (endpoint, grant string) {
	const g = "mbg_example"
	fn := func(_ context.Context, payload []byte) ([]byte, error) {
		var ev struct {
			Grant string          `json:"grant"`
			Input json.RawMessage `json:"input"`
		}
		if json.Unmarshal(payload, &ev) != nil || ev.Grant != g {
			return nil, errors.New("Unauthorized")
		}
		out := strings.ReplaceAll(string(ev.Input), "${secret:openai.api_key}", "sk-example-not-a-real-key")
		return json.Marshal(map[string]any{"output": json.RawMessage(out),
			"resolved": []map[string]any{{"secret": "openai", "key": "api_key", "version": 1}}})
	}
	errf := func(err error) (string, string) { return err.Error(), "no or invalid grant" }
	srv := httptest.NewServer(lambdainvoke.NewHandler(fn, errf, lambdainvoke.Options{Names: []string{runner.LocalFunction}, Logger: slog.New(slog.DiscardHandler)}))
	return srv.URL, g
}
