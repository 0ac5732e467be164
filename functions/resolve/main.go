// Command resolve is the resolve function, invoked directly by loop runners
// (lambda:InvokeFunction), never through API Gateway. It is wiring only:
// configuration from the environment and the service on DynamoDB and KMS
// (pkg/app/awsapp), clients built once per container, before lambda.Start;
// the logic is pkg/resolve. It links no HTTP handler and no embedded store.
//
// A failure is returned as the function error {"errorType", "errorMessage"}
// with errorType NotFound, BadRequest, Unavailable or Internal. Each
// invocation gives up on the store and the key service
// MOBIUS_DEADLINE_MARGIN before the Lambda deadline, so a stalled
// dependency is an Unavailable error, not a timeout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/mobius-secrets/mobius/pkg/app/awsapp"
	"github.com/mobius-secrets/mobius/pkg/resolve"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func main() {
	cfg, logger, b := awsapp.Boot(secrets.KeyCheckVerify) // a reader: it never writes the key check
	lambda.Start(handler{r: resolve.New(b.Service, logger), margin: cfg.DeadlineMargin})
}

// handler takes the raw payload (lambda.Handler), so that an event that is
// not even JSON is a BadRequest from pkg/resolve, not a runtime error.
type handler struct {
	r      *resolve.Resolver
	margin time.Duration
}

func (h handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var inv awsapp.Invocation
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		inv.LambdaRequestID = lc.AwsRequestID
	}
	ctx = awsapp.BeginInvocation(ctx, inv)
	ctx, cancel := awsapp.WithDeadlineMargin(ctx, h.margin)
	defer cancel()
	res, err := h.r.Invoke(ctx, payload)
	if err != nil {
		var e *resolve.Error
		// Whatever failed because the invocation ran out of time is a
		// dependency that did not answer.
		if errors.As(err, &e) && e.Type == resolve.TypeInternal && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = &resolve.Error{Type: resolve.TypeUnavailable, Message: "the store or the key service did not answer in time; try again"}
		}
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
