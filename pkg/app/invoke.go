package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mobius-secrets/mobius/pkg/lambdainvoke"
	"github.com/mobius-secrets/mobius/pkg/resolve"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// ResolveFunctionNames are the names the resolve function answers to on
// the Lambda Invoke API of `mobius serve`: the name runners configure
// locally, and the template's logical ID (an ARN ending in either works
// too).
var ResolveFunctionNames = []string{"mobius-resolve", "ResolveFunction"}

// ResolveTimeout is the resolve function's timeout, as template.yaml sets
// it for the deployed function.
const ResolveTimeout = 15 * time.Second

// withInvoke serves the Lambda Invoke API of the resolve function
// (POST /2015-03-31/functions/{FunctionName}/invocations) next to api, on
// the same listener: runners invoke `mobius serve` with the AWS SDK's
// Lambda client exactly as they invoke the deployed function. Requests
// carry no SigV4 check: the listener is meant to be loopback, and each
// invocation is authorized by the resolve grant in its payload.
func withInvoke(api http.Handler, svc *secrets.Service, logger *slog.Logger) http.Handler {
	r := resolve.New(svc, slog.New(lambdainvoke.TeeHandler(logger.Handler())))
	fn := func(ctx context.Context, payload []byte) ([]byte, error) {
		res, err := r.Invoke(ctx, payload)
		if err != nil {
			return nil, err
		}
		return json.Marshal(res)
	}
	inv := lambdainvoke.NewHandler(fn, resolveFunctionError, lambdainvoke.Options{
		Names:   ResolveFunctionNames,
		Timeout: ResolveTimeout,
		Logger:  logger,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, lambdainvoke.PathPrefix) {
			inv.ServeHTTP(w, req)
			return
		}
		api.ServeHTTP(w, req)
	})
}

// resolveFunctionError is the function error of a failed resolve, as the
// Lambda function (functions/resolve) reports it: the stable resolve.Error
// type, never a Go type name.
func resolveFunctionError(err error) (string, string) {
	var e *resolve.Error
	if errors.As(err, &e) {
		return e.Type, e.Message
	}
	return resolve.TypeInternal, "internal error"
}
