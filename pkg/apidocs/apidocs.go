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
	"bytes"
	"compress/gzip"
	"embed"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

// The document is embedded compressed (openapi.json.gz, written with
// openapi.json by `go generate`): 25 KB in every binary instead of 156.
//
//go:embed openapi.json.gz
var specGz []byte

var spec = sync.OnceValue(func() []byte {
	b, err := gunzip(specGz)
	if err != nil {
		panic("apidocs: the embedded openapi.json.gz does not decompress: " + err.Error())
	}
	return b
})

//go:embed assets/index.html assets/init.js assets/docs.css assets/swagger-ui
var assets embed.FS

// The two large files of the renderer are stored gzip-compressed (NAME.gz),
// a quarter of their size: that keeps the binaries, the Lambda function's
// among them, small, and is what a browser is sent; a client that does not
// accept gzip gets them decompressed.

// Spec returns the OpenAPI document as JSON.
func Spec() []byte { return spec() }

// OpenAPIHandler serves the OpenAPI document (GET /openapi.json),
// gzip-compressed to a client that accepts it.
func OpenAPIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Vary", "Accept-Encoding")
		b := specGz
		if acceptsGzip(r.Header.Values("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
		} else {
			b = spec()
		}
		h.Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
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
			serveAsset(w, r, "index.html", "no-cache")
			return
		}
		name := strings.TrimPrefix(rest, "/")
		if !fs.ValidPath(name) {
			notFound(w)
			return
		}
		serveAsset(w, r, name, "public, max-age=3600")
	})
}

func serveAsset(w http.ResponseWriter, r *http.Request, name, cacheControl string) {
	ctype, ok := contentTypes[path.Ext(name)]
	if !ok {
		notFound(w)
		return
	}
	h := w.Header()
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		if b, err = assets.ReadFile("assets/" + name + ".gz"); err != nil {
			notFound(w)
			return
		}
		h.Set("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Values("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
		} else if b, err = gunzip(b); err != nil {
			http.Error(w, "500 internal error", http.StatusInternalServerError)
			return
		}
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(b)))
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

// acceptsGzip tells whether Accept-Encoding values accept gzip: named, or
// through "*", with a q-value above zero.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(item, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding != "gzip" && coding != "x-gzip" && coding != "*" {
				continue
			}
			if q, ok := strings.CutPrefix(strings.ReplaceAll(strings.ToLower(params), " ", ""), "q="); ok {
				if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
