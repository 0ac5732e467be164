// Package httpapi is the HTTP API of Mobius Secrets: one http.Handler that
// serves the routes of the contract over a *secrets.Service, for the local
// server, the Lambda function and tests alike.
//
// Every route is listed in routes.go; every mapping from a domain error code
// to an HTTP status is in errors.go. Handlers only decode a request, call the
// service and encode the answer. No response, error or log line ever holds a
// plaintext value.
//
// It imports pkg/secrets, pkg/apidocs and the standard library.
package httpapi
