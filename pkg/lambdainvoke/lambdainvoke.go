package lambdainvoke

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Limits of Lambda's synchronous invocation.
const (
	MaxPayloadBytes   = 6_291_456 // the request payload, and the function's result
	MaxLogResultBytes = 4096      // the tail of the log in X-Amz-Log-Result
)

// PathPrefix is the prefix of every Lambda API path of this version.
const PathPrefix = "/2015-03-31/"

// Header names of the Invoke API.
const (
	HeaderInvocationType  = "X-Amz-Invocation-Type"
	HeaderLogType         = "X-Amz-Log-Type"
	HeaderFunctionError   = "X-Amz-Function-Error"
	HeaderExecutedVersion = "X-Amz-Executed-Version"
	HeaderLogResult       = "X-Amz-Log-Result"
	HeaderErrorType       = "X-Amzn-Errortype"
	HeaderRequestID       = "X-Amzn-Requestid"
	HeaderAmzRequestID    = "X-Amz-Request-Id"
)

// Invocation types.
const (
	RequestResponse = "RequestResponse"
	Event           = "Event"
	DryRun          = "DryRun"
)

// Function error types the adapter itself reports, as Lambda does.
const (
	ErrorTypeTimedOut          = "Sandbox.Timedout"
	ErrorTypeResponseSizeLimit = "Function.ResponseSizeTooLarge"
	ErrorTypeExited            = "Runtime.ExitError"
)

// Function is the code an invocation runs: the payload (a JSON document) in,
// the result out. A non-nil error becomes a function error through the
// ErrorFunc; the result is then ignored.
type Function func(ctx context.Context, payload []byte) ([]byte, error)

// ErrorFunc turns the error of a Function into the errorType and
// errorMessage of the function error. The message goes to the caller as it
// is.
type ErrorFunc func(error) (errorType, errorMessage string)

// Options configure a Handler.
type Options struct {
	// Names are the function names served (at least one).
	Names []string
	// Region and Account make the ARNs in error messages when the request
	// names the function without an ARN; default: the region of the
	// request's SigV4 credential scope, else us-east-1, and 000000000000.
	Region, Account string
	// Timeout bounds one invocation, as the function's timeout does on
	// Lambda; 0 means none.
	Timeout time.Duration
	// Logger receives one line per invocation (never a payload); nil is
	// slog.Default.
	Logger *slog.Logger
	// Now and NewRequestID replace the clock and the request IDs in tests.
	Now          func() time.Time
	NewRequestID func() string
}

// Handler serves the Invoke API for one function. It is safe for
// concurrent use.
type Handler struct {
	fn      Function
	errf    ErrorFunc
	opts    Options
	names   map[string]bool
	workers *workers
}

// NewHandler returns the Invoke API of fn. It panics if opts names no
// function or fn or errf is nil: that is a wiring mistake.
func NewHandler(fn Function, errf ErrorFunc, opts Options) *Handler {
	if fn == nil || errf == nil || len(opts.Names) == 0 {
		panic("lambdainvoke: NewHandler needs a function, an ErrorFunc and at least one name")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NewRequestID == nil {
		opts.NewRequestID = newUUID
	}
	if opts.Account == "" {
		opts.Account = "000000000000"
	}
	h := &Handler{fn: fn, errf: errf, opts: opts, names: map[string]bool{}, workers: newWorkers(workerIdle)}
	for _, n := range opts.Names {
		h.names[n] = true
	}
	return h
}

// ServeHTTP answers every request under PathPrefix.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := h.opts.NewRequestID()
	w.Header().Set(HeaderRequestID, id)
	w.Header().Set(HeaderAmzRequestID, id)

	rawName, ok := invocationsPath(r.URL)
	if !ok {
		writeError(w, http.StatusNotFound, "UnknownOperationException", "message", "", "Unknown operation "+r.Method+" "+r.URL.EscapedPath())
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "UnknownOperationException", "message", "", "Invoke takes POST, not "+r.Method)
		return
	}
	fname, ferr := parseFunctionName(rawName)
	if ferr != "" {
		writeError(w, http.StatusBadRequest, "ValidationException", "message", "", ferr)
		return
	}
	if q, given := r.URL.Query()["Qualifier"]; given {
		qual := q[0]
		if !validQualifier(qual) {
			writeError(w, http.StatusBadRequest, "ValidationException", "message", "",
				fmt.Sprintf("1 validation error detected: Value '%s' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", qual, qualifierPattern))
			return
		}
		if fname.qualifier != "" && fname.qualifier != qual {
			writeError(w, http.StatusBadRequest, "InvalidParameterValueException", "message", "User",
				"The derived qualifier from the function name does not match the specified qualifier.")
			return
		}
		fname.qualifier = qual
	}
	if !h.names[fname.name] {
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", "Message", "User", "Function not found: "+h.arn(r, fname))
		return
	}
	invType := r.Header.Get(HeaderInvocationType)
	switch invType {
	case "", RequestResponse:
	case DryRun:
		w.WriteHeader(http.StatusNoContent)
		return
	case Event:
		writeError(w, http.StatusBadRequest, "InvalidParameterValueException", "message", "User",
			"this server does not run Event (asynchronous) invocations: the function's result is all it produces, and an asynchronous invocation discards it; invoke with RequestResponse (the default)")
		return
	default:
		writeError(w, http.StatusBadRequest, "ValidationException", "message", "",
			fmt.Sprintf("1 validation error detected: Value '%s' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [RequestResponse, Event, DryRun]", clip(invType)))
		return
	}
	tail := false
	switch lt := r.Header.Get(HeaderLogType); lt {
	case "", "None":
	case "Tail":
		tail = true
	default:
		writeError(w, http.StatusBadRequest, "ValidationException", "message", "",
			fmt.Sprintf("1 validation error detected: Value '%s' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [Tail, None]", clip(lt)))
		return
	}

	if r.ContentLength > MaxPayloadBytes {
		writeTooLarge(w)
		return
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, MaxPayloadBytes+1))
	if err != nil {
		// The client went away or sent a broken body: nothing ran.
		writeError(w, http.StatusBadRequest, "InvalidRequestContentException", "message", "User", "Could not read the request body")
		return
	}
	if len(payload) > MaxPayloadBytes {
		writeTooLarge(w)
		return
	}
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte("{}")
	}
	if problem := jsonProblem(payload); problem != "" {
		writeError(w, http.StatusBadRequest, "InvalidRequestContentException", "message", "User",
			"Could not parse request body into json: Could not parse payload into json: "+problem)
		return
	}

	version := fname.qualifier
	if version == "" {
		version = "$LATEST"
	}
	start := h.opts.Now()
	var logs *capture
	ctx := r.Context()
	if tail {
		logs = &capture{}
		ctx = context.WithValue(ctx, captureKey{}, logs)
	}
	body, errType := h.run(ctx, id, payload)
	elapsed := h.opts.Now().Sub(start)

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(HeaderExecutedVersion, version)
	if errType != "" {
		w.Header().Set(HeaderFunctionError, "Unhandled")
	}
	if tail {
		w.Header().Set(HeaderLogResult, logs.result(id, version, elapsed))
	}
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	h.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "invoked",
		slog.String("request_id", id), slog.String("function", fname.name), slog.String("version", version),
		slog.String("function_error", errType), slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000))
}

// run runs the function under the timeout and returns the response body
// and, for a function error, its type.
func (h *Handler) run(ctx context.Context, id string, payload []byte) (body []byte, errType string) {
	var cancel context.CancelFunc = func() {}
	if h.opts.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, h.opts.Timeout)
	}
	defer cancel()
	type outcome struct {
		out      []byte
		err      error
		panicked bool
	}
	done := make(chan outcome, 1)
	h.workers.run(func() {
		defer func() {
			if p := recover(); p != nil {
				// The panic value may hold anything: it is not logged.
				done <- outcome{panicked: true}
			}
		}()
		out, err := h.fn(ctx, payload)
		done <- outcome{out: out, err: err}
	})
	var o outcome
	select {
	case o = <-done:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return functionError(ErrorTypeTimedOut, fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", id, h.opts.Timeout.Seconds())), ErrorTypeTimedOut
		}
		// The caller went away; nothing will read the answer.
		return functionError(ErrorTypeExited, fmt.Sprintf("RequestId: %s Error: the invocation was canceled", id)), ErrorTypeExited
	}
	switch {
	case o.panicked:
		h.opts.Logger.ErrorContext(ctx, "the function panicked", "request_id", id)
		return functionError(ErrorTypeExited, fmt.Sprintf("RequestId: %s Error: Runtime exited with error: the function panicked", id)), ErrorTypeExited
	case o.err != nil:
		typ, msg := h.errf(o.err)
		return functionError(typ, msg), typ
	case len(o.out) > MaxPayloadBytes:
		return functionError(ErrorTypeResponseSizeLimit, fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxPayloadBytes)), ErrorTypeResponseSizeLimit
	}
	return o.out, ""
}

// functionError is the payload of a function error, as Lambda's runtimes
// write it.
func functionError(typ, msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}{typ, msg})
	return b
}

// writeError writes a Lambda service error: the x-amzn-ErrorType header
// and a JSON body whose message member is named as the SDK's shape of that
// error names it ("message" or "Message"), with "Type" when Lambda sends it.
func writeError(w http.ResponseWriter, status int, code, messageMember, typ, msg string) {
	body := map[string]string{messageMember: msg}
	if typ != "" {
		body["Type"] = typ
	}
	b, _ := json.Marshal(body)
	w.Header().Set(HeaderErrorType, code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func writeTooLarge(w http.ResponseWriter) {
	w.Header().Set("Connection", "close") // the rest of the body is not read
	writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException", "message", "",
		fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", MaxPayloadBytes))
}

// invocationsPath returns the {FunctionName} of
// /2015-03-31/functions/{FunctionName}/invocations, unescaped.
func invocationsPath(u *url.URL) (string, bool) {
	p := u.EscapedPath()
	rest, ok := strings.CutPrefix(p, PathPrefix+"functions/")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, "/invocations")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	n, err := url.PathUnescape(name)
	if err != nil {
		return "", false
	}
	return n, true
}

// arn is the function's ARN as Lambda writes it in messages.
func (h *Handler) arn(r *http.Request, f functionName) string {
	region, account := f.region, f.account
	if region == "" {
		region = h.opts.Region
	}
	if region == "" {
		region = signingRegion(r.Header.Get("Authorization"))
	}
	if region == "" {
		region = "us-east-1"
	}
	if account == "" {
		account = h.opts.Account
	}
	s := "arn:aws:lambda:" + region + ":" + account + ":function:" + f.name
	if f.qualifier != "" {
		s += ":" + f.qualifier
	}
	return s
}

// signingRegion reads the region of a SigV4 Authorization header's
// credential scope (Credential=AKID/DATE/REGION/SERVICE/aws4_request).
func signingRegion(auth string) string {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(strings.TrimSpace(cred), "/")
	if len(parts) != 5 || !regionRE.MatchString(parts[2]) {
		return ""
	}
	return parts[2]
}

// jsonProblem says why payload is not one JSON document, without quoting
// it; "" if it is one.
func jsonProblem(payload []byte) string {
	dec := json.NewDecoder(bytes.NewReader(payload))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return "invalid JSON at byte " + strconv.FormatInt(se.Offset, 10)
		}
		return "the JSON ends early"
	}
	if _, err := dec.Token(); err != io.EOF {
		return "more than one JSON value"
	}
	return ""
}

// clip keeps an echoed header value short.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// newUUID is a random (version 4) UUID, as Lambda's request IDs are.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// encodeLog is the X-Amz-Log-Result of log: the base64 of its last
// MaxLogResultBytes, cut at the start of a UTF-8 sequence.
func encodeLog(log []byte) string {
	if len(log) > MaxLogResultBytes {
		log = log[len(log)-MaxLogResultBytes:]
		for len(log) > 0 && log[0]&0xc0 == 0x80 {
			log = log[1:]
		}
	}
	return base64.StdEncoding.EncodeToString(log)
}
