// Package client is a Go client for the Mobius Secrets HTTP API.
//
// It speaks only the HTTP contract: it imports the standard library and
// the API's wire types (pkg/api), nothing of the server. Requests take the
// pkg/api request types; each result embeds the pkg/api type of its answer
// together with the exact JSON the API sent (its Raw field), so a caller
// can show either. A failed request returns an *Error carrying the
// API's error envelope, or a *ConnError when the server could not be reached.
//
// Plaintext values are only ever sent (create, update); no response holds
// one, and no error this package returns includes a request body.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mobius-secrets/mobius/pkg/api"
)

// DefaultTimeout bounds one request, from dialling to the end of the body.
const DefaultTimeout = 30 * time.Second

// maxBody bounds a response body read into memory.
const maxBody = 32 << 20

// Client calls one Mobius endpoint with one API key. It is safe for
// concurrent use.
type Client struct {
	endpoint  string
	apiKey    string
	project   string
	http      *http.Client
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithProject sets the project used by every call that is given "" as its
// project.
func WithProject(project string) Option { return func(c *Client) { c.project = project } }

// WithHTTPClient replaces the HTTP client (and so its timeouts and transport).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithTimeout sets the timeout of each request.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		h := *c.http
		h.Timeout = d
		c.http = &h
	}
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client of the API at endpoint (for example
// "http://127.0.0.1:8080"), authenticating with apiKey.
func New(endpoint, apiKey string, opts ...Option) *Client {
	c := &Client{
		endpoint:  strings.TrimRight(endpoint, "/"),
		apiKey:    apiKey,
		userAgent: "mobius-go-client",
		http: &http.Client{
			Timeout: DefaultTimeout,
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout:   10 * time.Second,
				ResponseHeaderTimeout: DefaultTimeout,
				IdleConnTimeout:       90 * time.Second,
				MaxIdleConnsPerHost:   4,
				ForceAttemptHTTP2:     true,
			},
		},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Endpoint returns the endpoint the client calls.
func (c *Client) Endpoint() string { return c.endpoint }

// Project returns the client's default project.
func (c *Client) Project() string { return c.project }

// Error is an error answered by the API: its status and the fields of its
// error envelope. Message never contains a plaintext value.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
}

// Error reads like `Conflict (409): secret "openai" already exists`.
func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s (%d)", e.Code, e.Status)
	}
	return fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.Message)
}

// IsStatus reports whether err is an *Error with the given HTTP status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// ConnError is returned when the request did not get an answer from the
// server: it could not be reached, the connection broke, or it timed out.
type ConnError struct {
	Endpoint string
	Err      error
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("cannot reach the Mobius server at %s: %s", e.Endpoint, describeNetErr(e.Err))
}

func (e *ConnError) Unwrap() error { return e.Err }

// describeNetErr reduces a transport error to its cause, without the URL
// (which the ConnError already names) and never with a request body.
func describeNetErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		msg := oe.Err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg, "connect") {
			msg = msg[i+2:]
		}
		return msg
	}
	return err.Error()
}

// CallOption sets a header or a query parameter of one request.
type CallOption func(r *http.Request)

// IfMatch makes a write conditional on the secret's ETag (412 when stale).
func IfMatch(etag string) CallOption { return func(r *http.Request) { r.Header.Set("If-Match", etag) } }

// IdempotencyKey makes a create or update safe to retry: a retry with the
// same key and body replays the first response.
func IdempotencyKey(key string) CallOption {
	return func(r *http.Request) { r.Header.Set("Idempotency-Key", key) }
}

// Force makes DisableVersion or DestroyVersion act on a version that was
// resolved in the last hour, which the API otherwise refuses (409, field
// "force", naming the last consumer).
func Force() CallOption {
	return func(r *http.Request) {
		q := r.URL.Query()
		q.Set("force", "true")
		r.URL.RawQuery = q.Encode()
	}
}

// Response is an answer of the API that succeeded.
type Response struct {
	Status int
	Header http.Header
	Body   []byte // the JSON exactly as the API sent it; empty for 204
}

// Do sends one request to path (which starts with "/") with body encoded as
// JSON (none if nil) and returns the answer, or an *Error for any status of
// 400 and above, or a *ConnError.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body any, opts ...CallOption) (*Response, error) {
	var rd io.Reader
	if raw, ok := body.(json.RawMessage); ok { // sent byte for byte
		rd = bytes.NewReader(raw)
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	u := c.endpoint + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("invalid endpoint %q: %w", c.endpoint, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &ConnError{Endpoint: c.endpoint, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, &ConnError{Endpoint: c.endpoint, Err: err}
	}
	if resp.StatusCode >= 400 {
		return nil, decodeError(resp.StatusCode, data)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// decodeError reads the error envelope, or makes one from the status for a
// body that is not one (a proxy's page, say).
func decodeError(status int, body []byte) *Error {
	var env struct {
		Error *api.ErrorBody `json:"error"` // nil when the body is no envelope
	}
	e := &Error{Status: status}
	if json.Unmarshal(body, &env) == nil && env.Error != nil {
		e.Code, e.Message, e.Field = env.Error.Code, env.Error.Message, env.Error.Field
	} else {
		e.Message = firstLine(body, 200)
	}
	if e.Code == "" {
		e.Code = http.StatusText(status)
		if e.Code == "" {
			e.Code = "HTTP error"
		}
	}
	return e
}

func firstLine(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if !utf8.ValidString(s) {
		return ""
	}
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return s
}

// call sends a request and decodes its JSON answer into out.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any, opts ...CallOption) (*Response, error) {
	resp, err := c.Do(ctx, method, path, query, body, opts...)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := json.Unmarshal(resp.Body, out); err != nil {
			return nil, &Error{Status: resp.Status, Code: "Invalid Response", Message: fmt.Sprintf("the server's answer to %s %s is not the expected JSON", method, path)}
		}
	}
	return resp, nil
}

func (c *Client) proj(project string) string {
	if project == "" {
		project = c.project
	}
	return url.PathEscape(project)
}

func (c *Client) secretsPath(project string) string {
	return "/v1/projects/" + c.proj(project) + "/secrets"
}

func (c *Client) secretPath(project, secret string) string {
	return c.secretsPath(project) + "/" + url.PathEscape(secret)
}

func (c *Client) versionPath(project, secret, version string) string {
	return c.secretPath(project, secret) + "/versions/" + url.PathEscape(version)
}

func (c *Client) keysPath(project string) string {
	return "/v1/projects/" + c.proj(project) + "/api-keys"
}

// pageQuery builds the query of a list call.
func pageQuery(limit int, pageToken string) url.Values {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	if pageToken != "" {
		q.Set("page_token", pageToken)
	}
	return q
}

// decodeList decodes a list answer: the array under field, each element
// keeping its own raw JSON, and the next page token.
func decodeList[T any](body []byte, field string, setRaw func(*T, json.RawMessage)) ([]*T, string, error) {
	var page map[string]json.RawMessage
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, "", err
	}
	var raws []json.RawMessage
	if r, ok := page[field]; ok && string(r) != "null" {
		if err := json.Unmarshal(r, &raws); err != nil {
			return nil, "", err
		}
	}
	var next string
	if r, ok := page["next_page_token"]; ok && string(r) != "null" {
		if err := json.Unmarshal(r, &next); err != nil {
			return nil, "", err
		}
	}
	items := make([]*T, 0, len(raws))
	for _, r := range raws {
		v := new(T)
		if err := json.Unmarshal(r, v); err != nil {
			return nil, "", err
		}
		setRaw(v, r)
		items = append(items, v)
	}
	return items, next, nil
}

func listCall[T any](ctx context.Context, c *Client, path string, q url.Values, field string, setRaw func(*T, json.RawMessage)) ([]*T, string, json.RawMessage, error) {
	resp, err := c.Do(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return nil, "", nil, err
	}
	items, next, err := decodeList(resp.Body, field, setRaw)
	if err != nil {
		return nil, "", nil, &Error{Status: resp.Status, Code: "Invalid Response", Message: fmt.Sprintf("the server's answer to GET %s is not the expected JSON", path)}
	}
	return items, next, resp.Body, nil
}
