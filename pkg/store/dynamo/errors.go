package dynamo

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/mobius-secrets/mobius/pkg/kv"
)

// apiError returns the error code and message of a DynamoDB API error, or
// "" if err is not one.
func apiError(err error) (code, msg string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "", ""
}

// Error codes by what they mean for the caller. Codes not listed are
// taken as Unavailable, like any failure the driver cannot name.
var (
	// The service is overloaded or failing: try again later.
	transient = map[string]bool{
		"ProvisionedThroughputExceededException": true,
		"ThrottlingException":                    true,
		"RequestLimitExceeded":                   true,
		"InternalServerError":                    true,
		"ServiceUnavailable":                     true,
		"LimitExceededException":                 true,
		// An earlier attempt of the same transaction (same request token,
		// a retry by the SDK) is still running: its outcome is unknown.
		"TransactionInProgressException": true,
	}
	// The credentials are refused: an operator must fix them.
	badCredentials = map[string]bool{
		"UnrecognizedClientException":         true,
		"InvalidSignatureException":           true,
		"IncompleteSignatureException":        true,
		"MissingAuthenticationTokenException": true,
		"ExpiredTokenException":               true,
		"InvalidClientTokenId":                true,
		"ExpiredToken":                        true,
	}
)

// fail translates the error of a DynamoDB call (call) made for the
// driver's method op, once conditions and conflicts are handled: an ended
// context, throttling, 5xx and network errors are Unavailable; a missing
// table, denied access or refused credentials are Misconfigured; a
// ValidationException is Invalid. The SDK error is kept as the cause (it
// carries DynamoDB's request ID); the message is the driver's and names
// the table, never a value.
func (d *Driver) fail(ctx context.Context, op, call string, err error) error {
	var ke *kv.Error
	if errors.As(err, &ke) {
		return err
	}
	if ctx.Err() != nil {
		return kv.Errorf(kv.Unavailable, op, ctx.Err(), "the request ended before the store answered")
	}
	code, _ := apiError(err)
	switch {
	case code == "ResourceNotFoundException":
		return kv.Errorf(kv.Misconfigured, op, err,
			"DynamoDB %s: table %q does not exist in this account and region, or is not active", call, d.table)
	case code == "AccessDeniedException":
		return kv.Errorf(kv.Misconfigured, op, err,
			"DynamoDB %s: these AWS credentials are not allowed to call it on table %q", call, d.table)
	case badCredentials[code]:
		return kv.Errorf(kv.Misconfigured, op, err,
			"DynamoDB %s: the AWS credentials are refused (invalid or expired security token)", call)
	case code == "ValidationException":
		return kv.Errorf(kv.Invalid, op, err, "DynamoDB %s on table %q: the request is invalid", call, d.table)
	case code == "":
		// Not an answer from DynamoDB: the network, or a timeout.
		return kv.Errorf(kv.Unavailable, op, err, "DynamoDB %s on table %q: the service could not be reached", call, d.table)
	case transient[code] || statusCode(err) >= 500:
		return kv.Errorf(kv.Unavailable, op, err, "DynamoDB %s on table %q: the service is unavailable or throttling", call, d.table)
	}
	return kv.Errorf(kv.Unavailable, op, err, "DynamoDB %s on table %q failed (%s)", call, d.table, code)
}

func statusCode(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// attemptTrace watches the attempts the SDK makes for one call (its
// retries included): maybeApplied is set once an attempt failed in a way
// that leaves unknown whether DynamoDB applied it. Only an error answer
// (an API error with a 4xx status: throttling, a failed condition, a
// refusal) says that nothing was applied; no answer, a 5xx, or a 200 whose
// body was lost leaves it unknown.
type attemptTrace struct{ maybeApplied bool }

// option adds the trace to one call. It sits at the end of the finalize
// step, after the SDK's retry loop, so it sees every attempt. The SDK
// runs the attempts of one call one after another.
func (tr *attemptTrace) option(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("mobiusAttemptTrace",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleFinalize(ctx, in)
				if err != nil && !refused(err) {
					tr.maybeApplied = true
				}
				return out, md, err
			}), middleware.After)
	})
}

// refused reports whether err is DynamoDB's answer that it did not apply
// the request: an API error with a 4xx status.
func refused(err error) bool {
	var ae smithy.APIError
	s := statusCode(err)
	return errors.As(err, &ae) && s >= 400 && s < 500
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
