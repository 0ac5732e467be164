// Command resolve is the resolve function, invoked directly by loop runners
// (lambda:InvokeFunction), never through API Gateway. It is wiring only:
// configuration from the environment and the service on DynamoDB and KMS
// (pkg/app/awsapp), clients built once per container, before lambda.Start;
// the logic is pkg/resolve. It links no HTTP handler and no embedded store.
//
// A failure is returned as the function error {"errorType", "errorMessage"}
// with errorType NotFound, BadRequest, Unavailable or Internal.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/mobius-secrets/mobius/pkg/app/awsapp"
	"github.com/mobius-secrets/mobius/pkg/resolve"
)

func main() {
	cfg, err := awsapp.ConfigFromEnv(os.Getenv)
	if err != nil {
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("configuration", "err", err.Error())
		os.Exit(1)
	}
	logger := awsapp.NewLogger(os.Stderr, cfg.LogLevel)
	b, err := awsapp.Open(context.Background(), cfg, logger)
	if err != nil {
		logger.Error("starting", "err", err.Error())
		os.Exit(1)
	}
	lambda.Start(handler{resolve.New(b.Service, logger)})
}

// handler takes the raw payload (lambda.Handler), so that an event that is
// not even JSON is a BadRequest from pkg/resolve, not a runtime error.
type handler struct{ r *resolve.Resolver }

func (h handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	res, err := h.r.Invoke(ctx, payload)
	if err != nil {
		return nil, functionError(err)
	}
	return json.Marshal(res)
}

// functionError gives the runtime a messages.InvokeResponse_Error value
// (not a pointer: the runtime recognises the value type), so errorType is
// the stable resolve.Error type instead of a Go type name.
func functionError(err error) error {
	var e *resolve.Error
	if errors.As(err, &e) {
		return messages.InvokeResponse_Error{Type: e.Type, Message: e.Message}
	}
	return messages.InvokeResponse_Error{Type: resolve.TypeInternal, Message: "internal error"}
}
