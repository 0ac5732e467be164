package secrets

import (
	"errors"
	"fmt"
)

// Code classifies an Error. Codes are neutral names; the HTTP layer maps
// each to one status in exactly one place (pkg/httpapi/errors.go), and the
// resolve function to its error types.
type Code string

const (
	Invalid            Code = "invalid"             // malformed input; Field names the culprit
	Unauthorized       Code = "unauthorized"        // missing, malformed, unknown or revoked credentials
	Forbidden          Code = "forbidden"           // authenticated, but not allowed
	NotFound           Code = "not_found"           // unknown, or not visible to the caller
	Conflict           Code = "conflict"            // name taken, or state change not allowed
	PreconditionFailed Code = "precondition_failed" // a condition of the caller (If-Match) did not hold
	TooLarge           Code = "too_large"           // input over a size limit
	Unavailable        Code = "unavailable"         // a dependency failed or timed out; nothing was written
	// Misconfigured: a dependency refuses the service for a reason only an
	// operator can fix (a disabled or missing KMS key, access denied, no
	// such table); Message names it.
	Misconfigured Code = "misconfigured"
	Internal      Code = "internal"

	// Aborted is returned when a conditional write lost a race (the
	// secret's revision moved on, or a version already exists). The
	// Service re-reads and retries; it never reaches a client as such.
	Aborted Code = "aborted"
	// Integrity is returned when a ciphertext fails authentication: it was
	// tampered with, swapped, or sealed under another key or context.
	Integrity Code = "integrity"
)

// Error is the one error type of the domain. Message is safe to show to a
// client: it never contains a plaintext value. Err, if set, is the underlying
// cause, for logs only.
type Error struct {
	Code    Code
	Message string
	Field   string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted, client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an Invalid (or other) error naming the offending field.
func FieldErrorf(code Code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error with code and message whose cause is err.
func WrapError(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns the Code of err: the code of the first *Error in its
// chain, or Internal for any other non-nil error, or "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the client-safe message of err; any error that is not
// an *Error yields "internal error".
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != Internal {
		return e.Message
	}
	return "internal error"
}

// ErrorField returns the field named by err, if any.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
