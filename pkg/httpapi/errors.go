package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// statusOf is the only map from a domain error code to an HTTP status.
// Misconfigured is a 500 whose message names the configuration problem
// (for the operator; it never names a value). Aborted, Integrity, Internal
// and anything unknown are 500 with "internal error": a bug, or a failure
// the client cannot act on.
func statusOf(code secrets.Code) int {
	switch code {
	case secrets.Invalid:
		return http.StatusBadRequest
	case secrets.Unauthorized:
		return http.StatusUnauthorized
	case secrets.Forbidden:
		return http.StatusForbidden
	case secrets.NotFound:
		return http.StatusNotFound
	case secrets.Conflict:
		return http.StatusConflict
	case secrets.PreconditionFailed:
		return http.StatusPreconditionFailed
	case secrets.TooLarge:
		return http.StatusRequestEntityTooLarge
	case secrets.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// statusCode is the envelope's code for a status: the contract's names,
// which follow RFC 9110 (413 is "Payload Too Large", where Go's table still
// says "Request Entity Too Large").
func statusCode(status int) string {
	if status == http.StatusRequestEntityTooLarge {
		return "Payload Too Large"
	}
	return http.StatusText(status)
}

// errorJSON turns err into its status and client-safe envelope. A 500 says
// only "internal error"; its detail belongs in the log.
func errorJSON(err error) (int, api.Error) {
	status := statusOf(secrets.ErrorCode(err))
	body := api.ErrorBody{Code: statusCode(status), Status: status}
	if status == http.StatusInternalServerError && secrets.ErrorCode(err) != secrets.Misconfigured {
		body.Message = "internal error"
	} else {
		body.Message = secrets.ErrorMessage(err)
		body.Field = secrets.ErrorField(err)
	}
	return status, api.Error{Error: body}
}

// writeError answers with the error envelope of err. Errors that are the
// server's fault are logged with the request ID.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := errorJSON(err)
	info := infoOf(w)
	info.errCode = string(secrets.ErrorCode(err))
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="mobius"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	var held *leaseHeldError
	if errors.As(err, &held) {
		w.Header().Set("Retry-After", strconv.FormatInt(held.retryAfter, 10))
	}
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed",
			"request_id", info.id, "code", string(secrets.ErrorCode(err)), "err", err.Error())
	}
	writeJSON(w, status, body)
}

// httpError is a plain error with a status, for the router's own answers
// (unknown route, wrong method), which have no domain code.
func writeStatus(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, api.Error{Error: api.ErrorBody{Code: statusCode(status), Status: status, Message: message}})
}

// isMaxBytes reports whether err says a body was over its limit.
func isMaxBytes(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
