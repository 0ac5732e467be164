// Package apitest checks an HTTP handler against the OpenAPI document of
// pkg/apidocs, from tests. Wrap a handler and every request and response
// that passes through is validated; a mismatch fails the test:
//
//	v := apitest.NewValidator(t)
//	srv := httptest.NewServer(v.Wrap(handler))
//
// The rules a response must follow:
//   - its route (method and path) is in the document, or it is 404 or 405;
//   - its status is documented for the operation, and its headers and body
//     match that response's schema (required headers, content type, fields);
//   - a request the document rejects (a bad parameter or body, no bearer
//     credential) is answered with a 4xx, never a success.
//
// Bearer authentication is taken as satisfied by the presence of an
// "Authorization: Bearer …" header; whether the key is valid is the
// server's business. The reference page's own assets (under /docs/) are not
// part of the API and pass unchecked.
//
// It is for tests only: it imports testing and kin-openapi.
package apitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/mobius-secrets/mobius/pkg/apidocs"
)

// Validator validates traffic against the OpenAPI document. It is safe for
// concurrent use.
type Validator struct {
	tb     testing.TB
	doc    *openapi3.T
	router routers.Router
}

var registerDecoders sync.Once

// NewValidator loads the embedded OpenAPI document (apidocs.Spec) and fails
// tb at once if it does not parse or validate.
func NewValidator(tb testing.TB) *Validator {
	tb.Helper()
	registerDecoders.Do(func() {
		// The reference page is HTML; validate it as the plain string it is.
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	})
	doc, err := LoadSpec()
	if err != nil {
		tb.Fatalf("apitest: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		tb.Fatalf("apitest: routing the OpenAPI document: %v", err)
	}
	return &Validator{tb: tb, doc: doc, router: router}
}

// LoadSpec parses the embedded OpenAPI document and validates it.
func LoadSpec() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(apidocs.Spec())
	if err != nil {
		return nil, fmt.Errorf("loading the OpenAPI document: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is invalid: %w", err)
	}
	return doc, nil
}

// Routes lists every operation of the document as "METHOD /path/{param}",
// sorted: the form of a Go 1.22 ServeMux pattern, for route-parity tests.
func (v *Validator) Routes() []string {
	var out []string
	for path, item := range v.doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

// Wrap returns h with every request and response checked against the
// document. A mismatch is reported with tb.Errorf (naming the method, path,
// status and what is wrong); the response reaches the client unchanged.
func (v *Validator) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			v.tb.Errorf("apitest: %s %s: reading the request body: %v", r.Method, r.URL.Path, err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))

		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)

		for k, vals := range rec.Header() {
			w.Header()[k] = vals
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())

		if problem := v.Check(r, body, rec.Result()); problem != "" {
			v.tb.Errorf("apitest: %s %s → %d: %s", r.Method, r.URL.RequestURI(), rec.Code, problem)
		}
	})
}

// Check validates one exchange: the request r with its body, and the
// response resp (whose body it reads). It returns what is wrong, or "".
func (v *Validator) Check(r *http.Request, body []byte, resp *http.Response) string {
	respBody, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Sprintf("reading the response body: %v", err)
	}
	if r.Method == http.MethodHead {
		return "" // the document describes GET; HEAD is the server's courtesy
	}

	req := r.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		switch {
		case strings.HasPrefix(r.URL.Path, apidocs.DocsPath+"/"):
			return "" // the reference page's assets
		case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
			return ""
		case errors.Is(err, routers.ErrMethodNotAllowed):
			return fmt.Sprintf("the method is not documented for this path, yet the server answered %d (want 405)", resp.StatusCode)
		default:
			return fmt.Sprintf("the path is not in the OpenAPI document, yet the server answered %d (want 404)", resp.StatusCode)
		}
	}

	opts := &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		SkipSettingDefaults:   true,
		AuthenticationFunc:    bearerPresent,
	}
	// Name the place and the rule, not the schema and the value: a request
	// body's values must not be echoed into test logs.
	opts.WithCustomSchemaErrorFunc(func(err *openapi3.SchemaError) string {
		return fmt.Sprintf("at /%s: %s", strings.Join(err.JSONPointer(), "/"), err.Reason)
	})
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	ctx := context.Background()
	var problems []string
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && resp.StatusCode < 400 {
		problems = append(problems, fmt.Sprintf("the request does not conform to the document, yet the server answered %d: %v", resp.StatusCode, err))
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(respBody)),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		problems = append(problems, fmt.Sprintf("the response does not conform to operation %s: %v", route.Operation.OperationID, err))
	}
	return strings.Join(problems, "; ")
}

// bearerPresent accepts any request that carries a bearer credential: the
// document's security requirement is about its presence, the server decides
// whether it is valid.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecurityScheme == nil || in.SecurityScheme.Type != "http" || !strings.EqualFold(in.SecurityScheme.Scheme, "bearer") {
		return fmt.Errorf("apitest: unexpected security scheme %q", in.SecuritySchemeName)
	}
	auth := in.RequestValidationInput.Request.Header.Get("Authorization")
	scheme, cred, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(cred) == "" {
		return errors.New("no bearer credential in the Authorization header")
	}
	return nil
}
