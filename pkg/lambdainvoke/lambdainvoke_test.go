package lambdainvoke_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/internal/testsupport"

	"github.com/mobius-secrets/mobius/pkg/lambdainvoke"
)

// testErr is the echo function's error: its own errorType and message.
type testErr struct{ typ, msg string }

func (e testErr) Error() string { return e.typ + ": " + e.msg }

func errorFunc(err error) (string, string) {
	var te testErr
	if errors.As(err, &te) {
		return te.typ, te.msg
	}
	return "Internal", "internal error"
}

// event drives the echo function.
type event struct {
	Fail   string          `json:"fail,omitempty"`   // fail with this errorType
	Log    []string        `json:"log,omitempty"`    // log these lines first
	Size   int             `json:"size,omitempty"`   // answer a result of this many bytes
	Block  bool            `json:"block,omitempty"`  // run until the context ends
	Panic  bool            `json:"panic,omitempty"`  // panic
	Plain  string          `json:"plain,omitempty"`  // a plaintext the result holds and nothing else may
	Input  json.RawMessage `json:"input,omitempty"`  // echoed as output
	Opaque json.RawMessage `json:"opaque,omitempty"` // ignored
}

// fixture is an adapter over the echo function, with its server log, the
// payloads the function received and fixed request IDs.
type fixture struct {
	srv      *httptest.Server
	log      *testsupport.SyncBuffer
	mu       sync.Mutex
	payloads [][]byte
	ids      int
}

func newFixture(t *testing.T, opts lambdainvoke.Options) *fixture {
	t.Helper()
	f := &fixture{log: &testsupport.SyncBuffer{}}
	base := slog.NewJSONHandler(f.log, nil)
	fnLog := slog.New(lambdainvoke.TeeHandler(base)).With("fn", "echo")
	fn := func(ctx context.Context, payload []byte) ([]byte, error) {
		f.mu.Lock()
		f.payloads = append(f.payloads, append([]byte(nil), payload...))
		f.mu.Unlock()
		var ev event
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, testErr{"BadRequest", "not an event"}
		}
		for _, l := range ev.Log {
			fnLog.InfoContext(ctx, l)
		}
		fnLog.DebugContext(ctx, "debug lines stay out of an info log")
		switch {
		case ev.Panic:
			panic("a panic value " + ev.Plain)
		case ev.Block:
			<-ctx.Done()
			return nil, testErr{"Unavailable", "gave up"}
		case ev.Fail != "":
			return nil, testErr{ev.Fail, "it failed as asked"}
		case ev.Size > 0:
			return bytes.Repeat([]byte("x"), ev.Size), nil
		}
		return json.Marshal(map[string]any{"output": ev.Input, "plain": ev.Plain})
	}
	if opts.Names == nil {
		opts.Names = []string{"mobius-resolve", "ResolveFunction"}
	}
	opts.Logger = slog.New(base)
	opts.NewRequestID = func() string {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.ids++
		return fmt.Sprintf("00000000-0000-4000-8000-%012d", f.ids)
	}
	f.srv = httptest.NewServer(lambdainvoke.NewHandler(fn, errorFunc, opts))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.payloads)
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) post(t *testing.T, path string, header map[string]string, body io.Reader) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return f.do(t, req)
}

func (f *fixture) do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func invocations(name string) string { return "/2015-03-31/functions/" + name + "/invocations" }

func jsonEqual(t *testing.T, got, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		return false
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %s", want)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return bytes.Equal(gb, wb)
}

// TestRawHTTP pins the wire behaviour: status codes, headers and bodies as
// Lambda's Invoke API answers them.
func TestRawHTTP(t *testing.T) {
	f := newFixture(t, lambdainvoke.Options{Timeout: time.Minute})
	big := strings.Repeat("a", lambdainvoke.MaxPayloadBytes-len(`{"opaque":""}`))
	cases := []struct {
		name    string
		path    string
		header  map[string]string
		body    string
		status  int
		headers map[string]string // exact values; "" means absent
		want    string            // the JSON body, compared as JSON
		runs    bool              // the function ran
	}{
		{"result", invocations("mobius-resolve"), nil, `{"input":{"a":"b"}}`, 200,
			map[string]string{"X-Amz-Executed-Version": "$LATEST", "X-Amz-Function-Error": "", "Content-Type": "application/json", "X-Amzn-Errortype": ""},
			`{"output":{"a":"b"},"plain":""}`, true},
		{"the logical ID", invocations("ResolveFunction"), nil, `{"input":1}`, 200, nil, `{"output":1,"plain":""}`, true},
		{"RequestResponse said", invocations("mobius-resolve"), map[string]string{"X-Amz-Invocation-Type": "RequestResponse"}, `{"input":2}`, 200, nil, `{"output":2,"plain":""}`, true},
		{"an ARN", invocations("arn:aws:lambda:eu-west-1:123456789012:function:mobius-resolve"), nil, `{"input":3}`, 200,
			map[string]string{"X-Amz-Executed-Version": "$LATEST"}, `{"output":3,"plain":""}`, true},
		{"an escaped ARN", invocations("arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Amobius-resolve"), nil, `{"input":3}`, 200, nil, `{"output":3,"plain":""}`, true},
		{"a partial ARN", invocations("123456789012:function:ResolveFunction"), nil, `{"input":4}`, 200, nil, `{"output":4,"plain":""}`, true},
		{"a qualifier in the name", invocations("mobius-resolve:prod"), nil, `{}`, 200,
			map[string]string{"X-Amz-Executed-Version": "prod"}, `{"output":null,"plain":""}`, true},
		{"an ARN with a qualifier", invocations("arn:aws:lambda:us-east-1:123456789012:function:mobius-resolve:7"), nil, `{}`, 200,
			map[string]string{"X-Amz-Executed-Version": "7"}, `{"output":null,"plain":""}`, true},
		{"a qualifier in the query", invocations("mobius-resolve") + "?Qualifier=live", nil, `{}`, 200,
			map[string]string{"X-Amz-Executed-Version": "live"}, `{"output":null,"plain":""}`, true},
		{"the same qualifier twice", invocations("mobius-resolve:live") + "?Qualifier=live", nil, `{}`, 200,
			map[string]string{"X-Amz-Executed-Version": "live"}, `{"output":null,"plain":""}`, true},
		{"an empty payload is {}", invocations("mobius-resolve"), nil, ``, 200, nil, `{"output":null,"plain":""}`, true},
		{"a payload of exactly 6 MB", invocations("mobius-resolve"), nil, `{"opaque":"` + big + `"}`, 200, nil, `{"output":null,"plain":""}`, true},

		{"a function error", invocations("mobius-resolve"), nil, `{"fail":"NotFound"}`, 200,
			map[string]string{"X-Amz-Function-Error": "Unhandled", "X-Amz-Executed-Version": "$LATEST", "Content-Type": "application/json"},
			`{"errorType":"NotFound","errorMessage":"it failed as asked"}`, true},
		{"a result over 6 MB", invocations("mobius-resolve"), nil, fmt.Sprintf(`{"size":%d}`, lambdainvoke.MaxPayloadBytes+1), 200,
			map[string]string{"X-Amz-Function-Error": "Unhandled"},
			`{"errorType":"Function.ResponseSizeTooLarge","errorMessage":"Response payload size exceeded maximum allowed payload size (6291456 bytes)."}`, true},
		{"a panic", invocations("mobius-resolve"), nil, `{"panic":true}`, 200,
			map[string]string{"X-Amz-Function-Error": "Unhandled"},
			`{"errorType":"Runtime.ExitError","errorMessage":"RequestId: ID Error: Runtime exited with error: the function panicked"}`, true},

		{"DryRun", invocations("mobius-resolve"), map[string]string{"X-Amz-Invocation-Type": "DryRun"}, `{"input":1}`, 204,
			map[string]string{"X-Amz-Function-Error": "", "X-Amz-Executed-Version": ""}, ``, false},
		{"DryRun of an unknown function", invocations("other"), map[string]string{"X-Amz-Invocation-Type": "DryRun"}, `{}`, 404,
			map[string]string{"X-Amzn-Errortype": "ResourceNotFoundException"},
			`{"Type":"User","Message":"Function not found: arn:aws:lambda:us-east-1:000000000000:function:other"}`, false},
		{"Event", invocations("mobius-resolve"), map[string]string{"X-Amz-Invocation-Type": "Event"}, `{}`, 400,
			map[string]string{"X-Amzn-Errortype": "InvalidParameterValueException"},
			`{"Type":"User","message":"this server does not run Event (asynchronous) invocations: the function's result is all it produces, and an asynchronous invocation discards it; invoke with RequestResponse (the default)"}`, false},
		{"an unknown invocation type", invocations("mobius-resolve"), map[string]string{"X-Amz-Invocation-Type": "Later"}, `{}`, 400,
			map[string]string{"X-Amzn-Errortype": "ValidationException"},
			`{"message":"1 validation error detected: Value 'Later' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [RequestResponse, Event, DryRun]"}`, false},
		{"an unknown log type", invocations("mobius-resolve"), map[string]string{"X-Amz-Log-Type": "All"}, `{}`, 400,
			map[string]string{"X-Amzn-Errortype": "ValidationException"},
			`{"message":"1 validation error detected: Value 'All' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [Tail, None]"}`, false},

		{"an unknown function", invocations("other-function"), nil, `{}`, 404,
			map[string]string{"X-Amzn-Errortype": "ResourceNotFoundException", "Content-Type": "application/json"},
			`{"Type":"User","Message":"Function not found: arn:aws:lambda:us-east-1:000000000000:function:other-function"}`, false},
		{"an unknown function by ARN", invocations("arn:aws:lambda:eu-west-1:123456789012:function:other:prod"), nil, `{}`, 404,
			map[string]string{"X-Amzn-Errortype": "ResourceNotFoundException"},
			`{"Type":"User","Message":"Function not found: arn:aws:lambda:eu-west-1:123456789012:function:other:prod"}`, false},
		{"an unknown function in the signing region", invocations("other"),
			map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20261128/ap-southeast-2/lambda/aws4_request, SignedHeaders=host, Signature=00"}, `{}`, 404,
			nil, `{"Type":"User","Message":"Function not found: arn:aws:lambda:ap-southeast-2:000000000000:function:other"}`, false},
		{"a malformed function name", invocations("bad%20name"), nil, `{}`, 400,
			map[string]string{"X-Amzn-Errortype": "ValidationException"}, ``, false},
		{"a name too long", invocations(strings.Repeat("n", 65)), nil, `{}`, 400,
			map[string]string{"X-Amzn-Errortype": "ValidationException"}, ``, false},
		{"qualifiers that disagree", invocations("mobius-resolve:a") + "?Qualifier=b", nil, `{}`, 400,
			map[string]string{"X-Amzn-Errortype": "InvalidParameterValueException"},
			`{"Type":"User","message":"The derived qualifier from the function name does not match the specified qualifier."}`, false},
		{"a malformed qualifier", invocations("mobius-resolve") + "?Qualifier=a%2Fb", nil, `{}`, 400,
			map[string]string{"X-Amzn-Errortype": "ValidationException"}, ``, false},

		{"a payload over 6 MB", invocations("mobius-resolve"), nil, `{"opaque":"` + big + `x"}`, 413,
			map[string]string{"X-Amzn-Errortype": "RequestEntityTooLargeException"},
			`{"message":"Request must be smaller than 6291456 bytes for the InvokeFunction operation"}`, false},
		{"not JSON", invocations("mobius-resolve"), nil, `{"input": secret}`, 400,
			map[string]string{"X-Amzn-Errortype": "InvalidRequestContentException"},
			`{"Type":"User","message":"Could not parse request body into json: Could not parse payload into json: invalid JSON at byte 11"}`, false},
		{"JSON cut short", invocations("mobius-resolve"), nil, `{"input": [1,`, 400,
			map[string]string{"X-Amzn-Errortype": "InvalidRequestContentException"},
			`{"Type":"User","message":"Could not parse request body into json: Could not parse payload into json: the JSON ends early"}`, false},
		{"two JSON values", invocations("mobius-resolve"), nil, `{} {}`, 400,
			map[string]string{"X-Amzn-Errortype": "InvalidRequestContentException"},
			`{"Type":"User","message":"Could not parse request body into json: Could not parse payload into json: more than one JSON value"}`, false},

		{"another operation", "/2015-03-31/functions/mobius-resolve", nil, `{}`, 404,
			map[string]string{"X-Amzn-Errortype": "UnknownOperationException"}, ``, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := f.calls()
			a := f.post(t, c.path, c.header, strings.NewReader(c.body))
			if a.status != c.status {
				t.Fatalf("status %d, want %d; body %.300s", a.status, c.status, a.body)
			}
			id := a.header.Get("X-Amzn-Requestid")
			if id == "" || a.header.Get("X-Amz-Request-Id") != id {
				t.Errorf("request IDs %q and %q", id, a.header.Get("X-Amz-Request-Id"))
			}
			for k, v := range c.headers {
				if got := a.header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			want := strings.ReplaceAll(c.want, "RequestId: ID", "RequestId: "+id)
			switch {
			case c.status == 204:
				if a.body != "" {
					t.Errorf("204 with a body %q", a.body)
				}
			case c.want == "" && c.status >= 400:
				var e struct{ Message, Message2 string }
				if json.Unmarshal([]byte(a.body), &e) != nil || e.Message == "" {
					t.Errorf("error body %q has no message", a.body)
				}
			case !jsonEqual(t, a.body, want):
				t.Errorf("body\n got %.300s\nwant %.300s", a.body, want)
			}
			if ran := f.calls() > before; ran != c.runs {
				t.Errorf("the function ran: %v, want %v", ran, c.runs)
			}
		})
	}

	t.Run("a payload reaches the function as sent", func(t *testing.T) {
		payload := `{"input":{"n":1.000000000000000000001,"s":"\u00e9"}}`
		f.post(t, invocations("mobius-resolve"), nil, strings.NewReader(payload))
		f.mu.Lock()
		got := string(f.payloads[len(f.payloads)-1])
		f.mu.Unlock()
		if got != payload {
			t.Errorf("the function got %s", got)
		}
	})
	t.Run("another method", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+invocations("mobius-resolve"), nil)
		a := f.do(t, req)
		if a.status != 405 || a.header.Get("Allow") != "POST" || a.header.Get("X-Amzn-Errortype") != "UnknownOperationException" {
			t.Errorf("%d %v %s", a.status, a.header, a.body)
		}
	})
	t.Run("an oversized body announced by Content-Length is refused unread", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+invocations("mobius-resolve"), strings.NewReader("{}"))
		req.ContentLength = lambdainvoke.MaxPayloadBytes + 1
		req.Body = io.NopCloser(io.MultiReader(strings.NewReader(`{"opaque":"`), strings.NewReader(strings.Repeat("a", lambdainvoke.MaxPayloadBytes))))
		a := f.do(t, req)
		if a.status != 413 || a.header.Get("X-Amzn-Errortype") != "RequestEntityTooLargeException" {
			t.Errorf("%d %s", a.status, a.body)
		}
	})
	t.Run("a streamed oversized body", func(t *testing.T) {
		// No Content-Length: the limit holds as the body is read.
		pr, pw := io.Pipe()
		go func() {
			pw.Write([]byte(`{"opaque":"`))
			pw.Write(bytes.Repeat([]byte("a"), lambdainvoke.MaxPayloadBytes))
			pw.Write([]byte(`"}`))
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+invocations("mobius-resolve"), pr)
		a := f.do(t, req)
		if a.status != 413 {
			t.Errorf("%d %s", a.status, a.body)
		}
	})
	t.Run("the server log has one line per invocation, never a payload", func(t *testing.T) {
		f.post(t, invocations("mobius-resolve"), nil, strings.NewReader(`{"plain":"CANARY-server-log-77","input":"CANARY-server-log-77"}`))
		log := f.log.String()
		if strings.Contains(log, "CANARY-server-log-77") {
			t.Errorf("a payload reached the server log:\n%s", log)
		}
		if !strings.Contains(log, `"msg":"invoked"`) || !strings.Contains(log, `"function_error":"NotFound"`) {
			t.Errorf("no invocation lines in the server log:\n%s", log)
		}
	})
}

func TestTimeout(t *testing.T) {
	f := newFixture(t, lambdainvoke.Options{Timeout: 50 * time.Millisecond})
	a := f.post(t, invocations("mobius-resolve"), nil, strings.NewReader(`{"block":true}`))
	id := a.header.Get("X-Amzn-Requestid")
	want := `{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: ` + id + ` Error: Task timed out after 0.05 seconds"}`
	if a.status != 200 || a.header.Get("X-Amz-Function-Error") != "Unhandled" || !jsonEqual(t, a.body, want) {
		t.Errorf("%d %v %s", a.status, a.header, a.body)
	}
}

func TestLogTail(t *testing.T) {
	f := newFixture(t, lambdainvoke.Options{})
	decode := func(t *testing.T, a answer) string {
		t.Helper()
		raw := a.header.Get("X-Amz-Log-Result")
		if raw == "" {
			t.Fatalf("no X-Amz-Log-Result: %v", a.header)
		}
		b, err := base64.StdEncoding.DecodeString(raw)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > lambdainvoke.MaxLogResultBytes {
			t.Errorf("the tail is %d bytes", len(b))
		}
		return string(b)
	}
	tail := map[string]string{"X-Amz-Log-Type": "Tail"}

	t.Run("the lines of this call, framed", func(t *testing.T) {
		a := f.post(t, invocations("mobius-resolve:v2"), tail, strings.NewReader(`{"log":["first","second"]}`))
		id := a.header.Get("X-Amzn-Requestid")
		log := decode(t, a)
		lines := strings.Split(strings.TrimSuffix(log, "\n"), "\n")
		if len(lines) != 5 {
			t.Fatalf("want START, 2 lines, END, REPORT; got\n%s", log)
		}
		if lines[0] != "START RequestId: "+id+" Version: v2" || lines[3] != "END RequestId: "+id || !strings.HasPrefix(lines[4], "REPORT RequestId: "+id+"\tDuration: ") {
			t.Errorf("framing:\n%s", log)
		}
		for i, msg := range []string{"first", "second"} {
			var rec struct{ Msg, Fn, Level string }
			if err := json.Unmarshal([]byte(lines[1+i]), &rec); err != nil || rec.Msg != msg || rec.Fn != "echo" || rec.Level != "INFO" {
				t.Errorf("line %d: %s", i+1, lines[1+i])
			}
		}
	})
	t.Run("a function error has its tail too", func(t *testing.T) {
		a := f.post(t, invocations("mobius-resolve"), tail, strings.NewReader(`{"fail":"NotFound","log":["looking"]}`))
		if a.header.Get("X-Amz-Function-Error") != "Unhandled" || !strings.Contains(decode(t, a), `"msg":"looking"`) {
			t.Errorf("%v", a.header)
		}
	})
	t.Run("only this call's lines", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.post(t, invocations("mobius-resolve"), nil, strings.NewReader(fmt.Sprintf(`{"log":["other-%d"]}`, i)))
			}()
		}
		a := f.post(t, invocations("mobius-resolve"), tail, strings.NewReader(`{"log":["mine"]}`))
		wg.Wait()
		log := decode(t, a)
		if strings.Contains(log, "other-") || !strings.Contains(log, `"msg":"mine"`) {
			t.Errorf("tail:\n%s", log)
		}
	})
	t.Run("the last 4 KB", func(t *testing.T) {
		var lines []string
		for i := range 200 {
			lines = append(lines, fmt.Sprintf("line-%03d-é", i))
		}
		ev, _ := json.Marshal(event{Log: lines})
		a := f.post(t, invocations("mobius-resolve"), tail, bytes.NewReader(ev))
		log := decode(t, a)
		if !strings.Contains(log, "line-199-é") || strings.Contains(log, "line-000-") || strings.Contains(log, "START") || !strings.Contains(log, "REPORT") {
			t.Errorf("tail of %d bytes:\n%s", len(log), log)
		}
		if !utf8Valid(log) {
			t.Error("the tail was cut inside a UTF-8 sequence")
		}
	})
	t.Run("no tail unless asked", func(t *testing.T) {
		a := f.post(t, invocations("mobius-resolve"), map[string]string{"X-Amz-Log-Type": "None"}, strings.NewReader(`{"log":["x"]}`))
		if _, ok := a.header["X-Amz-Log-Result"]; ok || a.status != 200 {
			t.Errorf("%d %v", a.status, a.header)
		}
	})
	t.Run("a plaintext in the result is not in the tail", func(t *testing.T) {
		const canary = "CANARY-tail-5e1d"
		a := f.post(t, invocations("mobius-resolve"), tail, strings.NewReader(`{"plain":"`+canary+`","log":["working"]}`))
		if !strings.Contains(a.body, canary) {
			t.Fatalf("the result lacks the value: %s", a.body)
		}
		if log := decode(t, a); strings.Contains(log, canary) {
			t.Errorf("the value reached the tail:\n%s", log)
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestNewHandlerNeedsAFunctionAndAName(t *testing.T) {
	fn := func(context.Context, []byte) ([]byte, error) { return nil, nil }
	for name, build := range map[string]func(){
		"no names":     func() { lambdainvoke.NewHandler(fn, errorFunc, lambdainvoke.Options{}) },
		"no function":  func() { lambdainvoke.NewHandler(nil, errorFunc, lambdainvoke.Options{Names: []string{"f"}}) },
		"no ErrorFunc": func() { lambdainvoke.NewHandler(fn, nil, lambdainvoke.Options{Names: []string{"f"}}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			build()
		})
	}
}
