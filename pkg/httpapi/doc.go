// Package httpapi is the HTTP API of Mobius Secrets: one http.Handler that
// serves the routes of the contract over a *secrets.Service, for the local
// server, the Lambda function and tests alike.
//
// Every route is listed in routes.go; every mapping from a domain error code
// to an HTTP status is in errors.go. Handlers only decode a request, call the
// service and encode the answer. No response, error or log line ever holds a
// plaintext value.
//
// Request bodies are read strictly (internal/strictjson): one JSON
// object; field names exactly as documented, any other (`NAME` for `name`)
// an unknown field, refused; no member named twice and no string that is
// not valid Unicode (invalid UTF-8, a lone surrogate escape such as
// `\ud800`), at any depth. Each is a 400 that names the field and quotes no
// value, so what is stored and digested is exactly what was sent.
//
// The bodies it writes and reads are the wire types of pkg/api, which the
// Go client shares. It imports pkg/secrets, pkg/api, pkg/apidocs,
// internal/strictjson and the standard library.
package httpapi
