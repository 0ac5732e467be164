package dynamo

import (
	"context"
	"errors"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/mobius-secrets/mobius/pkg/secrets"
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

// transient lists the error codes that mean "try again later".
var transient = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"RequestLimitExceeded":                   true,
	"InternalServerError":                    true,
	"ServiceUnavailable":                     true,
	"LimitExceededException":                 true,
}

// fail translates an error of a DynamoDB call that has no domain meaning
// (conditions are read before this): transient failures, throttling, 5xx
// and network errors become Unavailable with the cause kept; anything else
// is Internal (a request this store should never make).
func fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *secrets.Error
	if errors.As(err, &e) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return secrets.WrapError(secrets.Unavailable, err, "the database did not answer in time (%s)", op)
	}
	code, _ := apiError(err)
	var rnf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &rnf):
		return secrets.WrapError(secrets.Unavailable, err, "the database table is missing (%s)", op)
	case code == "":
		// Not an answer from DynamoDB: the network, or a timeout.
		return secrets.WrapError(secrets.Unavailable, err, "the database is unreachable (%s)", op)
	case transient[code] || statusCode(err) >= 500:
		return secrets.WrapError(secrets.Unavailable, err, "the database is unavailable (%s)", op)
	}
	return secrets.WrapError(secrets.Internal, err, "database request failed (%s)", op)
}

func statusCode(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return http.StatusOK
}

// cancelled returns the cancellation reason codes of a cancelled
// transaction, or nil if err is not a cancelled transaction.
func cancelled(err error) ([]types.CancellationReason, bool) {
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		return tce.CancellationReasons, true
	}
	return nil, false
}

func reasonCode(rs []types.CancellationReason, i int) string {
	if i < 0 || i >= len(rs) || rs[i].Code == nil {
		return ""
	}
	return *rs[i].Code
}

// raced reports whether a cancelled transaction lost a race with another
// writer (TransactionConflict), rather than failing a condition.
func raced(err error, rs []types.CancellationReason) bool {
	code, _ := apiError(err)
	if code == "TransactionConflictException" || code == "TransactionInProgressException" {
		return true
	}
	for i := range rs {
		if reasonCode(rs, i) == "TransactionConflict" {
			return true
		}
	}
	return false
}

// throttledReason reports whether a cancelled transaction was throttled.
func throttledReason(rs []types.CancellationReason) bool {
	for i := range rs {
		switch reasonCode(rs, i) {
		case "ThrottlingError", "ProvisionedThroughputExceeded":
			return true
		}
	}
	return false
}
