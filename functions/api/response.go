package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// responseWriter is the http.ResponseWriter the handler answers an
// invocation through; response turns what it wrote into an API Gateway
// HTTP API response of payload format 2.0. It keeps net/http's rules, so
// that the handler answers as it does under `mobius serve`:
//
//   - the first WriteHeader wins; a Write before any is a 200, and so is a
//     handler that writes nothing;
//   - the headers sent are those set before WriteHeader;
//   - without a Content-Type (and unless it is set to nil), one is sniffed
//     from the first 512 bytes of the body, as http.DetectContentType does;
//   - there is no body for HEAD, 1xx, 204 and 304.
type responseWriter struct {
	header http.Header
	head   bool // a HEAD request: the body is not sent
	status int  // 0 until WriteHeader
	sent   http.Header
	body   bytes.Buffer
}

func newResponseWriter(method string) *responseWriter {
	return &responseWriter{header: http.Header{}, head: method == http.MethodHead}
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code)) // as net/http
	}
	if w.status != 0 || code < 200 {
		return // a second call, or an informational status API Gateway cannot send
	}
	w.status = code
	w.sent = w.header.Clone()
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	return w.body.Write(p)
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// response is what the handler wrote, in payload format 2.0: each
// Set-Cookie value one entry of Cookies (API Gateway sends each as its own
// set-cookie header; joined with commas they would not parse), every other
// header's values joined with commas, and the body as it is when it is
// UTF-8 text, else base64 with IsBase64Encoded.
func (w *responseWriter) response() events.APIGatewayV2HTTPResponse {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	body := w.body.Bytes()
	resp := events.APIGatewayV2HTTPResponse{StatusCode: w.status, Headers: map[string]string{}, Cookies: []string{}}
	for k, vs := range w.sent {
		switch {
		case len(vs) == 0:
		case http.CanonicalHeaderKey(k) == "Set-Cookie":
			resp.Cookies = append(resp.Cookies, vs...)
		default:
			resp.Headers[k] = strings.Join(vs, ",")
		}
	}
	if _, set := w.sent["Content-Type"]; !set && len(body) > 0 {
		resp.Headers["Content-Type"] = http.DetectContentType(body[:min(len(body), 512)])
	}
	if w.head {
		body = nil
	}
	if utf8.Valid(body) {
		resp.Body = string(body)
	} else {
		resp.Body, resp.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return resp
}
