// Package runner is the Go client of the resolve function for loop runners.
// It invokes the function through the AWS SDK's Lambda client, the same code
// against the deployed function on AWS and against `mobius serve`, which
// speaks the Lambda Invoke API on its own listener:
//
//	lc := lambda.NewFromConfig(awsCfg)                // on AWS
//	lc := lambda.New(lambda.Options{                  // against mobius serve
//		Region:       "us-east-1",
//		Credentials:  aws.AnonymousCredentials{},
//		BaseEndpoint: aws.String("http://127.0.0.1:8080"),
//	})
//	rc := runner.New(lc, resolveFunctionARN)          // or runner.LocalFunction
//	res, err := rc.Resolve(ctx, grant, params, step)
//
// Resolve sends the event {"grant", "input", "step"} and returns the
// substituted input (Result.Output, which holds plaintext: never log it) and
// the versions it came from. Every failure is an *Error whose Type is the
// function's errorType (NotFound, BadRequest, Unauthorized, Forbidden,
// Unavailable, Internal) or Lambda's (TooManyRequestsException,
// Sandbox.Timedout, Function.ResponseSizeTooLarge, a service exception);
// errors.Is matches it against ErrNotFound and the other sentinels.
//
// Retries: only the retryable failures (Unavailable, throttling, a timed-out
// function, a 5xx or a lost connection) are tried again, with jittered
// exponential backoff, and never past the context's deadline: when the next
// wait would end after it, Resolve returns the last error instead of
// sleeping. The SDK's own retryer is switched off for these calls so the
// policy here is the only one. A function error is recognised by its payload
// ({"errorType", "errorMessage"} and no "output") even when the
// X-Amz-Function-Error header is missing, as under aws-lambda-rie.
//
// It imports the AWS SDK's Lambda client and the standard library, and
// nothing of the server: no store, no HTTP handler.
package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// LocalFunction is the name `mobius serve` answers to on its Invoke API (it
// also answers to "ResolveFunction", the template's logical ID).
const LocalFunction = "mobius-resolve"

// LambdaAPI is the one method of the AWS SDK's Lambda client the runner
// calls; *lambda.Client implements it.
type LambdaAPI interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, optFns ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

var _ LambdaAPI = (*lambda.Client)(nil)

// Result is the resolve function's answer.
type Result struct {
	// Output is the input with every reference substituted. It holds
	// plaintext: pass it to the action, never to a log.
	Output json.RawMessage `json:"output"`
	// Resolved names each key substituted and the version it came from.
	Resolved []Resolved `json:"resolved"`
	// Raw is the whole payload the function returned.
	Raw json.RawMessage `json:"-"`
	// Attempts is how many invocations it took (1 without a retry).
	Attempts int `json:"-"`
}

// Resolved is one key that was substituted.
type Resolved struct {
	Secret  string `json:"secret"`
	Key     string `json:"key"`
	Version int    `json:"version"`
}

// Retry is the retry policy: at most MaxAttempts invocations, waiting a
// random time between 0 and min(Max, Base·2^n) after the n-th failure
// (full jitter), and at least what a throttling answer's Retry-After asks.
type Retry struct {
	MaxAttempts int
	Base, Max   time.Duration
}

// DefaultRetry is the policy of New.
var DefaultRetry = Retry{MaxAttempts: 5, Base: 100 * time.Millisecond, Max: 5 * time.Second}

// Client invokes one resolve function. It is safe for concurrent use.
type Client struct {
	api       LambdaAPI
	function  string
	qualifier string
	project   string
	retry     Retry
	now       func() time.Time
	sleep     func(context.Context, time.Duration) error
	jitter    func() float64
}

// Option configures a Client.
type Option func(*Client)

// WithQualifier invokes a version or alias of the function.
func WithQualifier(q string) Option { return func(c *Client) { c.qualifier = q } }

// WithProject adds "project" to every event; the function refuses it unless
// it is the grant's project.
func WithProject(p string) Option { return func(c *Client) { c.project = p } }

// WithRetry replaces DefaultRetry. MaxAttempts 1 never retries.
func WithRetry(r Retry) Option { return func(c *Client) { c.retry = r } }

// WithClock replaces the clock, the wait between attempts and the jitter (a
// number in [0, 1)), for tests.
func WithClock(now func() time.Time, sleep func(context.Context, time.Duration) error, jitter func() float64) Option {
	return func(c *Client) {
		if now != nil {
			c.now = now
		}
		if sleep != nil {
			c.sleep = sleep
		}
		if jitter != nil {
			c.jitter = jitter
		}
	}
}

// New returns a client of the function named function (a name or an ARN)
// through api.
func New(api LambdaAPI, function string, opts ...Option) *Client {
	c := &Client{api: api, function: function, retry: DefaultRetry, now: time.Now, sleep: sleep, jitter: rand.Float64}
	for _, o := range opts {
		o(c)
	}
	if c.retry.MaxAttempts < 1 {
		c.retry.MaxAttempts = 1
	}
	return c
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Resolve substitutes the references in input under grant. input is any
// value json.Marshal accepts, or a json.RawMessage or []byte of JSON sent as
// it is; step (nil for none) is the caller's step identifiers, a map or
// struct that marshals to a JSON object, kept in the audit.
func (c *Client) Resolve(ctx context.Context, grant string, input any, step any) (*Result, error) {
	if grant == "" {
		return nil, &Error{Type: TypeUnauthorized, Message: "no grant: mint one for this run (POST /v1/projects/{project}/resolve-grants)", Source: SourceLocal}
	}
	in, err := rawJSON(input)
	if err != nil {
		return nil, &Error{Type: TypeBadRequest, Message: "input: " + err.Error(), Source: SourceLocal}
	}
	var st json.RawMessage
	if step != nil {
		if st, err = rawJSON(step); err != nil {
			return nil, &Error{Type: TypeBadRequest, Message: "step: " + err.Error(), Source: SourceLocal}
		}
		if t := bytes.TrimSpace(st); string(t) == "null" {
			st = nil
		} else if t[0] != '{' {
			return nil, &Error{Type: TypeBadRequest, Message: "step must be a JSON object", Source: SourceLocal}
		}
	}
	ev, err := json.Marshal(struct {
		Grant   string          `json:"grant"`
		Project string          `json:"project,omitempty"`
		Input   json.RawMessage `json:"input"`
		Step    json.RawMessage `json:"step,omitempty"`
	}{grant, c.project, in, st})
	if err != nil {
		return nil, &Error{Type: TypeBadRequest, Message: "the event: " + err.Error(), Source: SourceLocal}
	}
	return c.Invoke(ctx, ev)
}

// rawJSON is v as one JSON value, checked, without marshalling what already
// is JSON. The error never quotes the value.
func rawJSON(v any) (json.RawMessage, error) {
	var b []byte
	switch x := v.(type) {
	case json.RawMessage:
		b = x
	case []byte:
		b = x
	default:
		m, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("cannot be encoded as JSON (%T)", v)
		}
		return m, nil
	}
	if !json.Valid(b) {
		return nil, errors.New("not valid JSON")
	}
	return b, nil
}

// Invoke sends event, a resolve event built by the caller, as it is, with
// the same retries and error classification as Resolve.
func (c *Client) Invoke(ctx context.Context, event json.RawMessage) (*Result, error) {
	in := &lambda.InvokeInput{
		FunctionName:   aws.String(c.function),
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        event,
	}
	if c.qualifier != "" {
		in.Qualifier = aws.String(c.qualifier)
	}
	var last *Error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, stopped(last, err)
		}
		out, err := c.api.Invoke(ctx, in, noSDKRetries)
		var res *Result
		var e *Error
		if err != nil {
			if ctx.Err() != nil {
				return nil, stopped(last, ctx.Err())
			}
			e = serviceError(err)
		} else {
			res, e = decode(out)
		}
		if e == nil {
			res.Attempts = attempt
			return res, nil
		}
		e.Attempts = attempt
		last = e
		if !e.Retryable || attempt >= c.retry.MaxAttempts {
			return nil, e
		}
		wait := c.backoff(attempt, e.retryAfter)
		if dl, ok := ctx.Deadline(); ok && !c.now().Add(wait).Before(dl) {
			e.Message += "; no time for another attempt before the deadline"
			return nil, e
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, stopped(last, err)
		}
	}
}

// noSDKRetries leaves every retry to Invoke's own policy.
func noSDKRetries(o *lambda.Options) { o.Retryer = aws.NopRetryer{} }

// backoff is the wait after the n-th failed attempt.
func (c *Client) backoff(n int, retryAfter time.Duration) time.Duration {
	ceiling := c.retry.Max
	if exp := c.retry.Base << min(n-1, 30); exp > 0 && exp < ceiling {
		ceiling = exp
	}
	d := time.Duration(c.jitter() * float64(ceiling))
	return max(d, retryAfter)
}

// stopped is the error of a call whose context ended: the last failure, if
// there was one, else the context's error.
func stopped(last *Error, ctxErr error) error {
	if last != nil {
		last.Message += "; stopped: " + ctxErr.Error()
		return last
	}
	return fmt.Errorf("resolve: %w", ctxErr)
}

// decode reads an Invoke answer: the result, or the function error, which
// is recognised by its payload when the header is missing.
func decode(out *lambda.InvokeOutput) (*Result, *Error) {
	var fields map[string]json.RawMessage
	objErr := json.Unmarshal(out.Payload, &fields)
	_, hasOutput := fields["output"]
	var fe struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	isFnErr := out.FunctionError != nil
	if !isFnErr && objErr == nil && !hasOutput {
		if json.Unmarshal(out.Payload, &fe) == nil && fe.ErrorType != "" {
			isFnErr = true
		}
	}
	if isFnErr {
		if json.Unmarshal(out.Payload, &fe) != nil || fe.ErrorType == "" {
			fe.ErrorType = "Unhandled"
			if out.FunctionError != nil {
				fe.ErrorType = *out.FunctionError
			}
			fe.ErrorMessage = "the function failed without an error payload"
		}
		return nil, &Error{Type: fe.ErrorType, Message: fe.ErrorMessage, Source: SourceFunction,
			StatusCode: int(out.StatusCode), Retryable: retryableFunctionError(fe.ErrorType)}
	}
	if objErr != nil || !hasOutput {
		return nil, &Error{Type: TypeInvalidResponse, Source: SourceFunction, StatusCode: int(out.StatusCode),
			Message: "the function's answer is neither a result {\"output\", \"resolved\"} nor a function error"}
	}
	var r Result
	if err := json.Unmarshal(out.Payload, &r); err != nil {
		return nil, &Error{Type: TypeInvalidResponse, Source: SourceFunction, StatusCode: int(out.StatusCode),
			Message: "the function's result does not have the form {\"output\", \"resolved\": [{\"secret\", \"key\", \"version\"}]}"}
	}
	r.Raw = out.Payload
	return &r, nil
}

// serviceError classifies an error of the Invoke call itself.
func serviceError(err error) *Error {
	e := &Error{Source: SourceService}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.StatusCode = re.HTTPStatusCode()
		e.RequestID = re.ServiceRequestID()
	}
	var ae smithy.APIError
	switch {
	case errors.As(err, &ae):
		e.Type, e.Message = ae.ErrorCode(), ae.ErrorMessage()
		if e.Type == "UnknownError" || e.Type == "" {
			e.Type = TypeUnknownError
			e.Message = fmt.Sprintf("HTTP %d from an endpoint that did not answer in the Lambda API's form (is it a Lambda Invoke API?)", e.StatusCode)
		}
	case e.StatusCode != 0:
		e.Type, e.Message = TypeUnknownError, fmt.Sprintf("HTTP %d: %v", e.StatusCode, unwrapAll(err))
	default:
		var se *smithyhttp.RequestSendError
		e.Type = TypeConnection
		if errors.As(err, &se) {
			err = se.Err
		}
		e.Message = err.Error()
		e.Retryable = true
		return e
	}
	e.Retryable = retryableServiceError(e.Type, e.StatusCode)
	var tm *types.TooManyRequestsException
	if errors.As(err, &tm) && tm.RetryAfterSeconds != nil {
		if s, perr := strconv.Atoi(*tm.RetryAfterSeconds); perr == nil && s > 0 {
			e.retryAfter = time.Duration(s) * time.Second
		}
	}
	return e
}

// unwrapAll is the innermost cause of err.
func unwrapAll(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}
