package awstest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Counter counts SDK operations (not retry attempts) per service and
// operation. Add its Middleware to a client's APIOptions.
type Counter struct {
	mu sync.Mutex
	n  map[string]int
}

// Middleware registers the counter on an operation's stack.
func (c *Counter) Middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("awstestCounter",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			if c.n == nil {
				c.n = map[string]int{}
			}
			c.n[awsmiddleware.GetServiceID(ctx)+"."+awsmiddleware.GetOperationName(ctx)]++
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

// Reset forgets every count.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n = nil
}

// Counts returns the counts since the last Reset, keyed "Service.Operation"
// (e.g. "DynamoDB.GetItem", "KMS.Decrypt").
func (c *Counter) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// Fault is what a FaultTransport does to a matching request.
type Fault int

const (
	// Pass sends the request on untouched.
	Pass Fault = iota
	// Down fails the request as a network error; it never arrives.
	Down
	// Error500 answers 500 InternalServerError; the request never arrives.
	Error500
	// Throttle answers 400 ThrottlingException; the request never arrives.
	Throttle
	// LostReply sends the request on, then answers 500 instead of the
	// reply: the write happened, the caller cannot know it.
	LostReply
)

// FaultTransport is an http.RoundTripper that injects faults into AWS JSON
// requests by operation (the X-Amz-Target suffix, e.g. "TransactWriteItems").
// Use it as the HTTPClient of a client from NewDynamoClient or NewKMSClient.
type FaultTransport struct {
	Next http.RoundTripper // http.DefaultTransport if nil

	mu    sync.Mutex
	rules map[string]Fault
	hits  map[string]int
}

// Set makes every later request for op meet f ("" matches every op).
func (ft *FaultTransport) Set(op string, f Fault) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if ft.rules == nil {
		ft.rules = map[string]Fault{}
	}
	ft.rules[op] = f
}

// Clear removes every rule.
func (ft *FaultTransport) Clear() {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.rules = nil
}

// Hits returns how many requests (attempts, retries included) for op met a
// fault.
func (ft *FaultTransport) Hits(op string) int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.hits[op]
}

// Do makes ft usable as an HTTP client for the SDK.
func (ft *FaultTransport) Do(r *http.Request) (*http.Response, error) { return ft.RoundTrip(r) }

// RoundTrip applies the rule for the request's operation.
func (ft *FaultTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	target := r.Header.Get("X-Amz-Target")
	op := target[strings.LastIndex(target, ".")+1:]
	ft.mu.Lock()
	f, ok := ft.rules[op]
	if !ok {
		f = ft.rules[""]
	}
	if f != Pass {
		if ft.hits == nil {
			ft.hits = map[string]int{}
		}
		ft.hits[op]++
	}
	ft.mu.Unlock()
	next := ft.Next
	if next == nil {
		next = http.DefaultTransport
	}
	switch f {
	case Down:
		return nil, errors.New("injected fault: connection refused")
	case Error500:
		return reply(r, http.StatusInternalServerError, "InternalServerError"), nil
	case Throttle:
		return reply(r, http.StatusBadRequest, "ThrottlingException"), nil
	case LostReply:
		resp, err := next.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return reply(r, http.StatusInternalServerError, "InternalServerError"), nil
	}
	return next.RoundTrip(r)
}

func reply(r *http.Request, status int, code string) *http.Response {
	body := `{"__type":"` + code + `","message":"injected fault"}`
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: r,
	}
}
