// Package apidocs holds the OpenAPI document of the HTTP API and the
// interactive reference page that renders it, both embedded in the binary so
// they work with no network access.
//
// openapi.yaml is the hand-edited source; openapi.json, generated from it by
// `go generate`, is what is embedded and served. The reference page is
// Swagger UI, vendored under assets/swagger-ui (see assets/README.md).
//
// It imports only the standard library. Its test-support package apitest
// validates requests and responses against the document.
package apidocs

//go:generate go run ./internal/genspec

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed openapi.json
var spec []byte

//go:embed assets/index.html assets/init.js assets/docs.css assets/swagger-ui
var assets embed.FS

// Spec returns the OpenAPI document as JSON.
func Spec() []byte { return spec }

// OpenAPIHandler serves the OpenAPI document (GET /openapi.json).
func OpenAPIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Write(spec)
	})
}

// DocsPath is where the reference page is served; its assets are under
// DocsPath + "/".
const DocsPath = "/docs"

// contentSecurityPolicy keeps the page to its own origin: scripts, styles,
// images and API calls ("Try it out") from this server only.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".png":  "image/png",
}

// DocsHandler serves the interactive reference: the page at GET /docs (and
// /docs/) and its assets under /docs/; mount it on both patterns. The page
// loads /openapi.json from the same origin. Any other path under /docs/ is
// 404.
func DocsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, DocsPath)
		switch {
		case !ok:
			notFound(w)
			return
		case rest == "" || rest == "/" || rest == "/index.html":
			serveAsset(w, "index.html", "no-cache")
			return
		}
		name := strings.TrimPrefix(rest, "/")
		if !fs.ValidPath(name) {
			notFound(w)
			return
		}
		serveAsset(w, name, "public, max-age=3600")
	})
}

func serveAsset(w http.ResponseWriter, name, cacheControl string) {
	ctype, ok := contentTypes[path.Ext(name)]
	if !ok {
		notFound(w)
		return
	}
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		notFound(w)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	if path.Ext(name) == ".html" {
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Referrer-Policy", "no-referrer")
	}
	w.Write(b)
}

func notFound(w http.ResponseWriter) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.Error(w, "404 page not found", http.StatusNotFound)
}
