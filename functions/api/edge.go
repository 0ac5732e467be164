package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/app/awsapp"
	"github.com/mobius-secrets/mobius/pkg/httpapi"
)

// edge turns an API Gateway HTTP API event (payload format 2.0) into an
// http.Request for the handler, and the handler's answer into the
// response event. It never fails the invocation: an event that cannot be
// a request is answered 400 or 413 with the API's error envelope.
//
// It builds the request itself, keeping each header whole (a proxy
// library that splits every header that may hold a list on its commas
// turned an Idempotency-Key "a,b" into "a"), and refuses a body that is not
// base64 or a path that is not percent-encoded with a 400 rather than a
// failed invocation (a 500 from API Gateway). responseWriter (response.go)
// makes the answer.
type edge struct {
	handler  http.Handler
	log      *slog.Logger
	basePath string        // stripped from paths on custom domains; "" or "/seg[/seg]"
	margin   time.Duration // the invocation gives up this long before the Lambda deadline
	maxBody  int64         // the handler's body limit
}

// Handle serves one invocation.
func (e *edge) Handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	inv := awsapp.Invocation{GatewayRequestID: ev.RequestContext.RequestID, RequestID: httpapi.RequestID(header(ev.Headers, "X-Request-Id"))}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		inv.LambdaRequestID = lc.AwsRequestID
	}
	ctx = awsapp.BeginInvocation(ctx, inv)
	ctx, cancel := awsapp.WithDeadlineMargin(ctx, e.margin)
	defer cancel()

	req, status, reason := e.request(ctx, ev, inv.RequestID)
	if req == nil {
		e.log.WarnContext(ctx, "request refused", "method", ev.RequestContext.HTTP.Method, "path", ev.RawPath,
			"status", status, "error", reason)
		return errorResponse(status, reason, inv.RequestID), nil
	}
	w := newResponseWriter(req.Method)
	e.handler.ServeHTTP(w, req)
	resp := w.response()
	// A request that ran out of time is a dependency that did not answer:
	// whatever failed because the context ended is Unavailable.
	if resp.StatusCode == http.StatusInternalServerError && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		e.log.ErrorContext(ctx, "request ran out of time", "status", resp.StatusCode)
		return errorResponse(http.StatusServiceUnavailable, "a dependency did not answer in time; try again", inv.RequestID), nil
	}
	return resp, nil
}

// request builds the handler's request, or says why it cannot (status and
// a client-safe reason).
func (e *edge) request(ctx context.Context, ev events.APIGatewayV2HTTPRequest, requestID string) (*http.Request, int, string) {
	rc := ev.RequestContext
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		if int64(len(ev.Body)) > int64(base64.StdEncoding.EncodedLen(int(e.maxBody))) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is over the limit of %d bytes", e.maxBody)
		}
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return nil, http.StatusBadRequest, "the request body is not valid base64 (the event says isBase64Encoded)"
		}
		body = b
	}
	if int64(len(body)) > e.maxBody {
		return nil, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is over the limit of %d bytes", e.maxBody)
	}

	raw := ev.RawPath
	if raw == "" {
		raw = rc.HTTP.Path
	}
	raw = e.stripPrefix(raw, rc)
	if !strings.HasPrefix(raw, "/") {
		raw = "/" + raw
	}
	u, err := url.ParseRequestURI(raw)
	if err != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, http.StatusBadRequest, "the request path is not a valid percent-encoded path"
	}
	u.RawQuery = ev.RawQueryString
	if u.RawQuery == "" && len(ev.QueryStringParameters) > 0 {
		q := url.Values{}
		for k, v := range ev.QueryStringParameters {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
	}

	method := strings.ToUpper(rc.HTTP.Method)
	req, err := http.NewRequestWithContext(ctx, method, "/", bytes.NewReader(body))
	if err != nil {
		return nil, http.StatusBadRequest, "the request method is not valid"
	}
	req.URL = u
	req.RequestURI = u.RequestURI()
	req.ContentLength = int64(len(body))
	req.RemoteAddr = rc.HTTP.SourceIP
	if p := rc.HTTP.Protocol; p != "" {
		if major, minor, ok := http.ParseHTTPVersion(p); ok {
			req.Proto, req.ProtoMajor, req.ProtoMinor = p, major, minor
		}
	}
	// Each header whole, as API Gateway passes it: duplicate headers are
	// already joined with commas, and a value's own commas stay in it.
	for k, v := range ev.Headers {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		req.Header[ck] = append(req.Header[ck], v)
	}
	if len(ev.Cookies) > 0 {
		req.Header["Cookie"] = []string{strings.Join(ev.Cookies, "; ")}
	}
	req.Header["X-Request-Id"] = []string{requestID}
	req.Host = req.Header.Get("Host")
	if req.Host == "" {
		req.Host = rc.DomainName
	}
	req.Header.Del("Host")
	return req, 0, ""
}

// stripPrefix removes what API Gateway adds before the API's own path: a
// named stage's name when the request came to the API's execute-api
// domain ("/prod/v1/..."), else the configured base path of a custom
// domain's API mapping ("/secrets/v1/...").
func (e *edge) stripPrefix(path string, rc events.APIGatewayV2HTTPRequestContext) string {
	prefix := e.basePath
	if rc.DomainPrefix != "" && rc.DomainPrefix == rc.APIID {
		prefix = ""
		if rc.Stage != "" && rc.Stage != "$default" {
			prefix = "/" + rc.Stage
		}
	}
	if prefix == "" {
		return path
	}
	if path == prefix {
		return "/"
	}
	if rest, ok := strings.CutPrefix(path, prefix+"/"); ok {
		return "/" + rest
	}
	return path
}

// errorResponse is the API's error envelope with status.
func errorResponse(status int, message, requestID string) events.APIGatewayV2HTTPResponse {
	code := http.StatusText(status)
	if status == http.StatusRequestEntityTooLarge {
		code = "Payload Too Large"
	}
	b, _ := json.Marshal(api.Error{Error: api.ErrorBody{Code: code, Status: status, Message: message}})
	h := map[string]string{
		"Content-Type": "application/json", "X-Request-Id": requestID,
		"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
	}
	if status == http.StatusServiceUnavailable {
		h["Retry-After"] = "1"
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: h, Body: string(b) + "\n"}
}

// header returns the value of header name in API Gateway's headers, which
// it sends in lower case; any case is accepted.
func header(h map[string]string, name string) string {
	if v, ok := h[strings.ToLower(name)]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// cleanBasePath checks MOBIUS_BASE_PATH (the API mapping's path on a
// custom domain, e.g. "secrets" or "/v2/secrets") and returns it as
// "/seg[/seg]"; "" if unset.
func cleanBasePath(v string) (string, error) {
	v = strings.Trim(strings.TrimSpace(v), "/")
	if v == "" {
		return "", nil
	}
	for _, seg := range strings.Split(v, "/") {
		ok := seg != "" && seg != "." && seg != ".."
		for i := 0; i < len(seg) && ok; i++ {
			c := seg[i]
			ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
		}
		if !ok {
			return "", fmt.Errorf("MOBIUS_BASE_PATH=%q: want the API mapping's path, segments of A-Z a-z 0-9 - _ . ~ separated by /", v)
		}
	}
	return "/" + v, nil
}
