package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// What a handler writes becomes the HTTP API's payload format 2.0
// response: status, headers with multiple values joined by commas, each
// Set-Cookie its own entry of cookies, the body as text or base64.
func TestResponseWriter(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
	for _, c := range []struct {
		name    string
		method  string
		handler http.HandlerFunc
		want    events.APIGatewayV2HTTPResponse
	}{
		{"JSON body with its status", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Request-Id", "req_1")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"sec_1"}`+"\n")
		}, events.APIGatewayV2HTTPResponse{StatusCode: 201,
			Headers: map[string]string{"Content-Type": "application/json", "X-Request-Id": "req_1"},
			Body:    `{"id":"sec_1"}` + "\n", Cookies: []string{}}},
		{"Write without WriteHeader is 200", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "ok")
			io.WriteString(w, "!")
		}, events.APIGatewayV2HTTPResponse{StatusCode: 200,
			Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}, Body: "ok!", Cookies: []string{}}},
		{"nothing written is 200 with no body", "GET", func(w http.ResponseWriter, r *http.Request) {},
			events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{}, Cookies: []string{}}},
		{"multi-value header joined by commas", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Vary", "Accept")
			w.Header().Add("Vary", "Authorization")
			w.WriteHeader(http.StatusNoContent)
		}, events.APIGatewayV2HTTPResponse{StatusCode: 204, Headers: map[string]string{"Vary": "Accept,Authorization"}, Cookies: []string{}}},
		{"each Set-Cookie its own cookie, commas kept", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Set-Cookie", "a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Secure")
			w.Header().Add("Set-Cookie", "b=2; HttpOnly")
			w.WriteHeader(http.StatusOK)
		}, events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{},
			Cookies: []string{"a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Secure", "b=2; HttpOnly"}}},
		{"binary body in base64, type sniffed", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.Write(png)
		}, events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "image/png"},
			Body: "iVBORw0KGgoAAAANSUhEUv/+", IsBase64Encoded: true, Cookies: []string{}}},
		{"text sniffed as text", "GET", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<!DOCTYPE html><title>x</title>")
		}, events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "text/html; charset=utf-8"},
			Body: "<!DOCTYPE html><title>x</title>", Cookies: []string{}}},
		{"Content-Type set to nil is not sniffed", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil
			io.WriteString(w, "plain")
		}, events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{}, Body: "plain", Cookies: []string{}}},
		{"the first WriteHeader wins", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusConflict)
			w.WriteHeader(http.StatusOK)
		}, events.APIGatewayV2HTTPResponse{StatusCode: 409, Headers: map[string]string{}, Cookies: []string{}}},
		{"headers set after WriteHeader are not sent", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusAccepted)
			w.Header().Set("X-Late", "1")
		}, events.APIGatewayV2HTTPResponse{StatusCode: 202, Headers: map[string]string{"Cache-Control": "no-store"}, Cookies: []string{}}},
		{"informational status is not final", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusTeapot)
		}, events.APIGatewayV2HTTPResponse{StatusCode: 418, Headers: map[string]string{}, Cookies: []string{}}},
		{"no body for 304", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotModified)
			if _, err := io.WriteString(w, "ignored"); err != http.ErrBodyNotAllowed {
				panic("Write after a 304 did not refuse")
			}
		}, events.APIGatewayV2HTTPResponse{StatusCode: 304, Headers: map[string]string{}, Cookies: []string{}}},
		{"no body for HEAD, its type still sniffed", "HEAD", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"status":"ok"}`)
		}, events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}, Cookies: []string{}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newResponseWriter(c.method)
			c.handler(w, httptest.NewRequest(c.method, "/", nil))
			got := w.response()
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("response\n got %#v\nwant %#v", got, c.want)
			}
			// The same handler served by net/http (as `mobius serve`
			// serves it) answers the same status, type, cookies and body.
			srv := httptest.NewServer(c.handler)
			defer srv.Close()
			req, err := http.NewRequest(c.method, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != got.StatusCode {
				t.Errorf("status %d, net/http %d", got.StatusCode, res.StatusCode)
			}
			if ct := res.Header.Get("Content-Type"); ct != got.Headers["Content-Type"] {
				t.Errorf("Content-Type %q, net/http %q", got.Headers["Content-Type"], ct)
			}
			if !reflect.DeepEqual(res.Header.Values("Set-Cookie"), nonEmpty(got.Cookies)) {
				t.Errorf("cookies %q, net/http %q", got.Cookies, res.Header.Values("Set-Cookie"))
			}
			gotBody := []byte(got.Body)
			if got.IsBase64Encoded {
				if gotBody, err = base64.StdEncoding.DecodeString(got.Body); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(gotBody, body) {
				t.Errorf("body %q, net/http %q", gotBody, body)
			}
		})
	}
}

func nonEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// The response is the JSON of payload format 2.0 that API Gateway reads.
func TestResponseJSON(t *testing.T) {
	w := newResponseWriter("GET")
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Add("Set-Cookie", "s=1; Path=/")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte{0xff, 0x00, 0x01})
	b, err := json.Marshal(w.response())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"statusCode":        float64(200),
		"headers":           map[string]any{"Content-Type": "application/octet-stream"},
		"multiValueHeaders": nil,
		"body":              "/wAB",
		"isBase64Encoded":   true,
		"cookies":           []any{"s=1; Path=/"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("JSON %s\nwant %v", b, want)
	}
}
