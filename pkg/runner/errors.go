package runner

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Error types: the errorType of a function error, Lambda's error code, or
// one of the runner's own.
const (
	// The resolve function's.
	TypeNotFound     = "NotFound"     // a secret or key that does not exist, or no ENABLED version
	TypeBadRequest   = "BadRequest"   // a malformed event or reference, or a limit exceeded
	TypeUnauthorized = "Unauthorized" // no grant, or one that is invalid or expired
	TypeForbidden    = "Forbidden"    // a reference the grant does not cover
	TypeUnavailable  = "Unavailable"  // the store or the key service failed; retryable
	TypeInternal     = "Internal"

	// Lambda's.
	TypeThrottled        = "TooManyRequestsException"      // retryable
	TypeTimedOut         = "Sandbox.Timedout"              // retryable
	TypeResponseTooLarge = "Function.ResponseSizeTooLarge" // final: the output is over 6 MB
	TypeFunctionNotFound = "ResourceNotFoundException"
	TypeRequestTooLarge  = "RequestEntityTooLargeException"
	TypeInvalidContent   = "InvalidRequestContentException"
	TypeResourceConflict = "ResourceConflictException" // the function is being updated; retryable
	TypeResourceNotReady = "ResourceNotReadyException" // retryable

	// The runner's.
	TypeConnection      = "ConnectionError" // no answer; retryable
	TypeInvalidResponse = "InvalidResponse" // an answer that is not the resolve function's
	TypeUnknownError    = "UnknownError"    // an HTTP error without a Lambda error code
)

// Source says where an Error comes from.
type Source string

const (
	SourceFunction Source = "function" // the function ran and failed
	SourceService  Source = "service"  // the Invoke call failed (Lambda, the network)
	SourceLocal    Source = "local"    // refused before anything was sent
)

// Error is a failed resolve. Message names secrets and keys, never a value.
type Error struct {
	Type       string
	Message    string
	Source     Source
	StatusCode int    // the HTTP status of the Invoke answer, 0 without one
	RequestID  string // Lambda's request ID of a service error, when known
	Retryable  bool   // whether it was, or would have been, retried
	Attempts   int    // invocations made, the failed one included

	retryAfter time.Duration
}

func (e *Error) Error() string {
	s := "resolve: " + e.Type
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (after %d attempts)", e.Attempts)
	}
	return s
}

// Is matches the sentinel of e's type: errors.Is(err, runner.ErrNotFound).
func (e *Error) Is(target error) bool {
	s, ok := target.(sentinel)
	return ok && string(s) == e.Type
}

type sentinel string

func (s sentinel) Error() string { return "resolve: " + string(s) }

// Sentinels for errors.Is.
var (
	ErrNotFound         error = sentinel(TypeNotFound)
	ErrBadRequest       error = sentinel(TypeBadRequest)
	ErrUnauthorized     error = sentinel(TypeUnauthorized)
	ErrForbidden        error = sentinel(TypeForbidden)
	ErrUnavailable      error = sentinel(TypeUnavailable)
	ErrInternal         error = sentinel(TypeInternal)
	ErrThrottled        error = sentinel(TypeThrottled)
	ErrTimedOut         error = sentinel(TypeTimedOut)
	ErrResponseTooLarge error = sentinel(TypeResponseTooLarge)
	ErrFunctionNotFound error = sentinel(TypeFunctionNotFound)
)

// retryableFunctionError: the function ran and failed in a way another try
// may not. Everything else (NotFound, BadRequest, Unauthorized, Forbidden,
// Internal, an oversized result, a crash) fails the same way again.
func retryableFunctionError(typ string) bool {
	return typ == TypeUnavailable || typ == TypeTimedOut
}

// retryableServiceError: throttling, a function being updated, and any 5xx.
func retryableServiceError(code string, status int) bool {
	switch code {
	case TypeThrottled, TypeResourceConflict, TypeResourceNotReady:
		return true
	}
	return status >= 500 || status == http.StatusTooManyRequests || strings.HasSuffix(code, "ThrottledException")
}
