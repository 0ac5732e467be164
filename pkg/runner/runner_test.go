package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/mobius-secrets/mobius/pkg/runner"
)

// reply is one answer of the scripted Invoke API.
type reply struct {
	status int
	header map[string]string
	body   string
}

// script is an httptest server speaking the Invoke API: it answers its
// replies in order (the last one again once they run out) and records each
// request.
type script struct {
	srv     *httptest.Server
	mu      sync.Mutex
	replies []reply
	reqs    []*http.Request
	bodies  []string
	onCall  func(n int)
}

func newScript(t *testing.T, replies ...reply) *script {
	t.Helper()
	s := &script{replies: replies}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.bodies = append(s.bodies, string(b))
		n := len(s.reqs)
		rp := s.replies[min(n, len(s.replies))-1]
		hook := s.onCall
		s.mu.Unlock()
		if hook != nil {
			hook(n)
		}
		w.Header().Set("X-Amzn-Requestid", "req-"+string(rune('0'+n)))
		for k, v := range rp.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(rp.status)
		io.WriteString(w, rp.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *script) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// lambdaClient is the SDK's client of url with its default retryer, as a
// runner builds it.
func lambdaClient(url string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:       "us-east-1",
		Credentials:  aws.AnonymousCredentials{},
		BaseEndpoint: aws.String(url),
	})
}

// fakeTime is the clock and the waits of a client: no test sleeps.
type fakeTime struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (f *fakeTime) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeTime) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, d)
	f.now = f.now.Add(d)
	return ctx.Err()
}

func newClient(url string, ft *fakeTime, opts ...runner.Option) *runner.Client {
	opts = append([]runner.Option{runner.WithClock(ft.Now, ft.Sleep, func() float64 { return 0.5 })}, opts...)
	return runner.New(lambdaClient(url), runner.LocalFunction, opts...)
}

const result = `{"output":{"auth":"Bearer sk-CANARY-runner"},"resolved":[{"secret":"openai","key":"api_key","version":3}]}`

func fnErr(typ string) string {
	return `{"errorType":"` + typ + `","errorMessage":"` + typ + ` as scripted"}`
}

var (
	ok         = reply{200, map[string]string{"X-Amz-Executed-Version": "$LATEST"}, result}
	unhandled  = map[string]string{"X-Amz-Function-Error": "Unhandled"}
	functionOf = func(typ string) reply { return reply{200, unhandled, fnErr(typ)} }
	serviceOf  = func(status int, code, body string) reply {
		return reply{status, map[string]string{"X-Amzn-Errortype": code, "Content-Type": "application/json"}, body}
	}
)

func TestErrorClasses(t *testing.T) {
	cases := []struct {
		name      string
		replies   []reply
		sentinel  error  // nil: success
		typ       string // the Error's Type
		source    runner.Source
		retryable bool
		calls     int // requests the server saw
	}{
		{"a result", []reply{ok}, nil, "", "", false, 1},
		{"NotFound is final", []reply{functionOf("NotFound"), ok}, runner.ErrNotFound, "NotFound", runner.SourceFunction, false, 1},
		{"BadRequest is final", []reply{functionOf("BadRequest"), ok}, runner.ErrBadRequest, "BadRequest", runner.SourceFunction, false, 1},
		{"Unauthorized is final", []reply{functionOf("Unauthorized"), ok}, runner.ErrUnauthorized, "Unauthorized", runner.SourceFunction, false, 1},
		{"Forbidden is final", []reply{functionOf("Forbidden"), ok}, runner.ErrForbidden, "Forbidden", runner.SourceFunction, false, 1},
		{"Internal is final", []reply{functionOf("Internal"), ok}, runner.ErrInternal, "Internal", runner.SourceFunction, false, 1},
		{"an oversized result is final", []reply{functionOf("Function.ResponseSizeTooLarge"), ok}, runner.ErrResponseTooLarge, "Function.ResponseSizeTooLarge", runner.SourceFunction, false, 1},
		{"a runtime crash is final", []reply{functionOf("Runtime.ExitError"), ok}, nil, "Runtime.ExitError", runner.SourceFunction, false, 1},
		{"a function error without the header", []reply{{200, nil, fnErr("NotFound")}, ok}, runner.ErrNotFound, "NotFound", runner.SourceFunction, false, 1},
		{"a function error with a stack trace and no header", []reply{{200, nil, `{"errorType":"Forbidden","errorMessage":"m","stackTrace":[]}`}}, runner.ErrForbidden, "Forbidden", runner.SourceFunction, false, 1},
		{"a header without a payload", []reply{{200, unhandled, ``}}, nil, "Unhandled", runner.SourceFunction, false, 1},

		{"Unavailable is retried", []reply{functionOf("Unavailable"), functionOf("Unavailable"), ok}, nil, "", "", false, 3},
		{"Unavailable without the header is retried", []reply{{200, nil, fnErr("Unavailable")}, ok}, nil, "", "", false, 2},
		{"Unavailable until the attempts run out", []reply{functionOf("Unavailable")}, runner.ErrUnavailable, "Unavailable", runner.SourceFunction, true, 5},
		{"a timed-out function is retried", []reply{functionOf("Sandbox.Timedout"), ok}, nil, "", "", false, 2},
		{"a timed-out function until the attempts run out", []reply{functionOf("Sandbox.Timedout")}, runner.ErrTimedOut, "Sandbox.Timedout", runner.SourceFunction, true, 5},
		{"throttling is retried", []reply{serviceOf(429, "TooManyRequestsException", `{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}`), ok}, nil, "", "", false, 2},
		{"throttling until the attempts run out", []reply{serviceOf(429, "TooManyRequestsException", `{"Type":"User","message":"Rate Exceeded."}`)}, runner.ErrThrottled, "TooManyRequestsException", runner.SourceService, true, 5},
		{"a ServiceException is retried", []reply{serviceOf(500, "ServiceException", `{"Type":"Service","Message":"boom"}`), ok}, nil, "", "", false, 2},
		{"a 502 is retried", []reply{serviceOf(502, "EC2ThrottledException", `{"Type":"Service","Message":"x"}`), ok}, nil, "", "", false, 2},
		{"a 503 without a Lambda error is retried", []reply{{503, nil, `<html>unavailable</html>`}, ok}, nil, "", "", false, 2},
		{"a function being updated is retried", []reply{serviceOf(409, "ResourceConflictException", `{"Type":"User","message":"The operation cannot be performed at this time."}`), ok}, nil, "", "", false, 2},

		{"an unknown function is final", []reply{serviceOf(404, "ResourceNotFoundException", `{"Type":"User","Message":"Function not found: arn:aws:lambda:us-east-1:000000000000:function:mobius-resolve"}`), ok},
			runner.ErrFunctionNotFound, "ResourceNotFoundException", runner.SourceService, false, 1},
		{"a payload too large is final", []reply{serviceOf(413, "RequestEntityTooLargeException", `{"message":"Request must be smaller than 6291456 bytes for the InvokeFunction operation"}`), ok},
			nil, "RequestEntityTooLargeException", runner.SourceService, false, 1},
		{"invalid content is final", []reply{serviceOf(400, "InvalidRequestContentException", `{"Type":"User","message":"Could not parse"}`), ok},
			nil, "InvalidRequestContentException", runner.SourceService, false, 1},
		{"access denied is final", []reply{serviceOf(403, "AccessDeniedException", `{"Message":"not allowed"}`), ok},
			nil, "AccessDeniedException", runner.SourceService, false, 1},
		{"an endpoint that is not the Invoke API", []reply{{404, map[string]string{"Content-Type": "application/json"}, `{"error":{"code":"Not Found","status":404,"message":"no such route"}}`}, ok},
			nil, "UnknownError", runner.SourceService, false, 1},
		{"an answer that is not a result", []reply{{200, nil, `{"something":"else"}`}, ok}, nil, "InvalidResponse", runner.SourceFunction, false, 1},
		{"an answer that is not an object", []reply{{200, nil, `"text"`}, ok}, nil, "InvalidResponse", runner.SourceFunction, false, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newScript(t, c.replies...)
			ft := &fakeTime{now: time.Unix(1_800_000_000, 0)}
			res, err := newClient(s.srv.URL, ft).Resolve(context.Background(), "mbg_test", map[string]string{"auth": "Bearer ${secret:openai.api_key}"}, nil)
			if got := s.calls(); got != c.calls {
				t.Errorf("%d requests, want %d", got, c.calls)
			}
			if len(ft.waits) != c.calls-1 {
				t.Errorf("%d waits for %d requests", len(ft.waits), c.calls)
			}
			if c.typ == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if string(res.Output) != `{"auth":"Bearer sk-CANARY-runner"}` || len(res.Resolved) != 1 || res.Resolved[0] != (runner.Resolved{Secret: "openai", Key: "api_key", Version: 3}) ||
					string(res.Raw) != result || res.Attempts != c.calls {
					t.Errorf("result %+v", res)
				}
				return
			}
			var e *runner.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v, want *runner.Error", err, err)
			}
			if res != nil {
				t.Errorf("a result with an error: %+v", res)
			}
			if e.Type != c.typ || e.Source != c.source || e.Retryable != c.retryable || e.Attempts != c.calls || e.Message == "" {
				t.Errorf("got %+v", e)
			}
			if c.sentinel != nil && !errors.Is(err, c.sentinel) {
				t.Errorf("errors.Is(%v, %v) is false", err, c.sentinel)
			}
			if errors.Is(err, runner.ErrInternal) && c.typ != "Internal" {
				t.Errorf("%v matches ErrInternal", err)
			}
			if strings.Contains(err.Error(), "CANARY") {
				t.Errorf("a value in the error: %v", err)
			}
		})
	}
}

func TestConnectionErrorsAreRetried(t *testing.T) {
	s := newScript(t, ok)
	url := s.srv.URL
	s.srv.Close()
	ft := &fakeTime{now: time.Unix(1_800_000_000, 0)}
	_, err := newClient(url, ft, runner.WithRetry(runner.Retry{MaxAttempts: 3, Base: time.Millisecond, Max: time.Second})).
		Resolve(context.Background(), "mbg_test", "x", nil)
	var e *runner.Error
	if !errors.As(err, &e) || e.Type != runner.TypeConnection || !e.Retryable || e.Attempts != 3 || len(ft.waits) != 2 || !strings.Contains(e.Message, "refused") {
		t.Fatalf("%+v (%v), waits %v", e, err, ft.waits)
	}
}

// The waits grow exponentially from Base to Max, scaled by the jitter.
func TestBackoff(t *testing.T) {
	s := newScript(t, functionOf("Unavailable"))
	ft := &fakeTime{now: time.Unix(1_800_000_000, 0)}
	c := runner.New(lambdaClient(s.srv.URL), runner.LocalFunction,
		runner.WithRetry(runner.Retry{MaxAttempts: 6, Base: 100 * time.Millisecond, Max: 500 * time.Millisecond}),
		runner.WithClock(ft.Now, ft.Sleep, func() float64 { return 0.5 }))
	c.Resolve(context.Background(), "mbg_test", "x", nil)
	want := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond}
	if len(ft.waits) != len(want) {
		t.Fatalf("waits %v, want %v", ft.waits, want)
	}
	for i := range want {
		if ft.waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", ft.waits, want)
		}
	}

	t.Run("the jitter spreads the waits", func(t *testing.T) {
		s := newScript(t, functionOf("Unavailable"))
		ft := &fakeTime{now: time.Unix(1_800_000_000, 0)}
		draws := []float64{0, 0.999}
		i := 0
		c := runner.New(lambdaClient(s.srv.URL), runner.LocalFunction,
			runner.WithRetry(runner.Retry{MaxAttempts: 3, Base: time.Second, Max: time.Minute}),
			runner.WithClock(ft.Now, ft.Sleep, func() float64 { d := draws[i]; i++; return d }))
		c.Resolve(context.Background(), "mbg_test", "x", nil)
		if len(ft.waits) != 2 || ft.waits[0] != 0 || ft.waits[1] != time.Duration(0.999*float64(2*time.Second)) {
			t.Errorf("waits %v", ft.waits)
		}
	})
	t.Run("Retry-After is honoured", func(t *testing.T) {
		throttled := serviceOf(429, "TooManyRequestsException", `{"Type":"User","message":"Rate Exceeded."}`)
		throttled.header["Retry-After"] = "3"
		s := newScript(t, throttled, ok)
		ft := &fakeTime{now: time.Unix(1_800_000_000, 0)}
		if _, err := newClient(s.srv.URL, ft).Resolve(context.Background(), "mbg_test", "x", nil); err != nil {
			t.Fatal(err)
		}
		if len(ft.waits) != 1 || ft.waits[0] != 3*time.Second {
			t.Errorf("waits %v", ft.waits)
		}
	})
}

// A wait that would end past the context's deadline is not slept: the last
// error comes back at once.
func TestDeadlineIsRespected(t *testing.T) {
	s := newScript(t, functionOf("Unavailable"))
	start := time.Now()
	ft := &fakeTime{now: start}
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(time.Hour))
	defer cancel()
	c := runner.New(lambdaClient(s.srv.URL), runner.LocalFunction,
		runner.WithRetry(runner.Retry{MaxAttempts: 10, Base: 20 * time.Minute, Max: 10 * time.Hour}),
		runner.WithClock(ft.Now, ft.Sleep, func() float64 { return 1 }))
	_, err := c.Resolve(ctx, "mbg_test", "x", nil)
	var e *runner.Error
	if !errors.As(err, &e) || e.Type != "Unavailable" || e.Attempts != 2 || !strings.Contains(e.Message, "no time for another attempt before the deadline") {
		t.Fatalf("%v", err)
	}
	// 20 minutes after the first attempt; the next 40 would reach the deadline.
	if len(ft.waits) != 1 || ft.waits[0] != 20*time.Minute || s.calls() != 2 {
		t.Errorf("waits %v, calls %d", ft.waits, s.calls())
	}

	t.Run("a context that ends during a wait stops it", func(t *testing.T) {
		s := newScript(t, functionOf("Unavailable"))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s.onCall = func(int) { cancel() }
		c := runner.New(lambdaClient(s.srv.URL), runner.LocalFunction,
			runner.WithRetry(runner.Retry{MaxAttempts: 3, Base: time.Hour, Max: time.Hour}))
		_, err := c.Resolve(ctx, "mbg_test", "x", nil)
		if err == nil || s.calls() != 1 {
			t.Fatalf("%v after %d calls", err, s.calls())
		}
		var e *runner.Error
		if errors.As(err, &e) && !strings.Contains(e.Message, "context canceled") {
			t.Errorf("%v", err)
		}
	})
	t.Run("a context already done sends nothing", func(t *testing.T) {
		s := newScript(t, ok)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := runner.New(lambdaClient(s.srv.URL), runner.LocalFunction).Resolve(ctx, "mbg_test", "x", nil)
		if !errors.Is(err, context.Canceled) || s.calls() != 0 {
			t.Errorf("%v after %d calls", err, s.calls())
		}
	})
}

// The SDK's own retries are off: the runner's policy is the only one.
func TestNoSDKRetries(t *testing.T) {
	s := newScript(t, serviceOf(500, "ServiceException", `{"Message":"boom"}`))
	_, err := runner.New(lambdaClient(s.srv.URL), runner.LocalFunction, runner.WithRetry(runner.Retry{MaxAttempts: 1})).
		Resolve(context.Background(), "mbg_test", "x", nil)
	if s.calls() != 1 || !strings.Contains(err.Error(), "ServiceException") {
		t.Errorf("%d requests for one attempt: %v", s.calls(), err)
	}
}

func TestTheEvent(t *testing.T) {
	s := newScript(t, ok)
	ft := &fakeTime{now: time.Unix(1_800_000_000, 0)}
	ctx := context.Background()
	cases := []struct {
		name  string
		opts  []runner.Option
		input any
		step  any
		want  string
		query string
	}{
		{"a value and a map step", nil, map[string]any{"n": 1}, map[string]string{"run_id": "r1", "step": "s1"},
			`{"grant":"mbg_test","input":{"n":1},"step":{"run_id":"r1","step":"s1"}}`, ""},
		{"raw JSON sent as it is, no step", nil, json.RawMessage(`{"n":1.000000000000000000001}`), nil,
			`{"grant":"mbg_test","input":{"n":1.000000000000000000001}}`, ""},
		{"bytes, a struct step", nil, []byte(`["${secret:a.b}"]`), struct {
			Run string `json:"run_id"`
		}{"r2"}, `{"grant":"mbg_test","input":["${secret:a.b}"],"step":{"run_id":"r2"}}`, ""},
		{"a null step is none", nil, "s", json.RawMessage(`null`), `{"grant":"mbg_test","input":"s"}`, ""},
		{"a project and a qualifier", []runner.Option{runner.WithProject("acme"), runner.WithQualifier("prod")}, "s", nil,
			`{"grant":"mbg_test","project":"acme","input":"s"}`, "Qualifier=prod"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := newClient(s.srv.URL, ft, c.opts...).Resolve(ctx, "mbg_test", c.input, c.step); err != nil {
				t.Fatal(err)
			}
			s.mu.Lock()
			body, req := s.bodies[len(s.bodies)-1], s.reqs[len(s.reqs)-1]
			s.mu.Unlock()
			if body != c.want {
				t.Errorf("event\n got %s\nwant %s", body, c.want)
			}
			if req.URL.Path != "/2015-03-31/functions/mobius-resolve/invocations" || req.URL.RawQuery != c.query ||
				req.Header.Get("X-Amz-Invocation-Type") != "RequestResponse" {
				t.Errorf("request %s %s %v", req.URL.Path, req.URL.RawQuery, req.Header)
			}
		})
	}

	refused := []struct {
		name, grant string
		input, step any
		sentinel    error
	}{
		{"no grant", "", "x", nil, runner.ErrUnauthorized},
		{"input that is not JSON", "mbg_test", json.RawMessage(`{"a":`), nil, runner.ErrBadRequest},
		{"input that cannot be JSON", "mbg_test", make(chan int), nil, runner.ErrBadRequest},
		{"a step that is not an object", "mbg_test", "x", []string{"r1"}, runner.ErrBadRequest},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			before := s.calls()
			_, err := newClient(s.srv.URL, ft).Resolve(ctx, c.grant, c.input, c.step)
			var e *runner.Error
			if !errors.Is(err, c.sentinel) || !errors.As(err, &e) || e.Source != runner.SourceLocal || s.calls() != before {
				t.Errorf("%v (sent %d)", err, s.calls()-before)
			}
		})
	}
}
