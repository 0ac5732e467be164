package awsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"log"
	"log/slog"
	"strings"
	"testing"
)

// lines decodes every line of buf as one JSON object.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("a log line is not a JSON object: %q", l)
		}
		out = append(out, m)
	}
	return out
}

func TestLoggerCarriesInvocation(t *testing.T) {
	var buf bytes.Buffer
	logger := NewLogger(&buf, slog.LevelInfo)
	first := Invocation{LambdaRequestID: "lambda-1", GatewayRequestID: "gw-1", RequestID: "req-1"}
	ctx1 := BeginInvocation(context.Background(), first)
	logger.InfoContext(ctx1, "with its context")
	logger.Info("without a context")
	logger.InfoContext(ctx1, "the handler's own request ID", "request_id", "req-own")

	// A second invocation: lines without a context now carry its IDs; a
	// context of the first still carries the first's.
	ctx2 := BeginInvocation(context.Background(), Invocation{LambdaRequestID: "lambda-2"})
	logger.Info("second, without a context")
	logger.InfoContext(ctx1, "first's context")
	logger.InfoContext(ctx2, "second's context")

	// The standard log package, once the logger is the default.
	prev := slog.Default()
	slog.SetDefault(logger)
	log.Printf("printed by %s", "a library")
	slog.SetDefault(prev)

	want := []struct {
		msg, lambda, gw, req string
	}{
		{"with its context", "lambda-1", "gw-1", "req-1"},
		{"without a context", "lambda-1", "gw-1", "req-1"},
		{"the handler's own request ID", "lambda-1", "gw-1", "req-own"},
		{"second, without a context", "lambda-2", "", ""},
		{"first's context", "lambda-1", "gw-1", "req-1"},
		{"second's context", "lambda-2", "", ""},
		{"printed by a library", "lambda-2", "", ""},
	}
	got := lines(t, &buf)
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), buf.String())
	}
	for i, w := range want {
		g := got[i]
		if g["msg"] != w.msg || str(g[LambdaRequestIDKey]) != w.lambda || str(g[GatewayRequestIDKey]) != w.gw || str(g[RequestIDKey]) != w.req {
			t.Errorf("line %d: %v\nwant msg %q, %s %q, %s %q, %s %q", i, g, w.msg,
				LambdaRequestIDKey, w.lambda, GatewayRequestIDKey, w.gw, RequestIDKey, w.req)
		}
	}
	// One key once: the handler's request_id was not added a second time.
	if n := strings.Count(strings.Split(buf.String(), "\n")[2], `"request_id"`); n != 1 {
		t.Errorf("request_id appears %d times in one line", n)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
