// Package apidocs holds the OpenAPI document of the HTTP API and the
// interactive reference page that renders it, both embedded in the binary so
// they work with no network access.
//
// It imports only the standard library.
package apidocs

import (
	_ "embed"
	"net/http"
)

//go:embed openapi.json
var spec []byte

// Spec returns the OpenAPI document as JSON.
func Spec() []byte { return spec }

// OpenAPIHandler serves the OpenAPI document (GET /openapi.json).
func OpenAPIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(spec)
	})
}

// DocsHandler serves the interactive reference (GET /docs and its assets
// under /docs/).
func DocsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><html><head><meta charset="utf-8"><title>Mobius Secrets API</title></head>` +
			`<body><h1>Mobius Secrets API</h1><p>The OpenAPI document is at <a href="/openapi.json">/openapi.json</a>.</p></body></html>`))
	})
}
