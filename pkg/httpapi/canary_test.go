package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// Plaintext values never appear in a response, a log line, or the data
// file.
func TestCanary(t *testing.T) {
	ts := newTestServer(t)
	const canary = "CANARY-q7Zx9Vw3"
	val := func(i int) string { return fmt.Sprintf("%s-%d-value", canary, i) }
	var responses []*response
	rec := func(r *response) *response { responses = append(responses, r); return r }

	rec(ts.do("POST", "/v1/projects/acme/secrets", map[string]any{"name": "db", "values": map[string]string{"password": val(1)}})).want(t, 201)
	rec(ts.serve(req{method: "POST", path: "/v1/projects/acme/secrets", key: ts.key,
		body:   map[string]any{"name": "api", "values": map[string]string{"token": val(2)}},
		header: map[string]string{"Idempotency-Key": "k1"}})).want(t, 201)
	rec(ts.serve(req{method: "POST", path: "/v1/projects/acme/secrets", key: ts.key,
		body:   map[string]any{"name": "api", "values": map[string]string{"token": val(2)}},
		header: map[string]string{"Idempotency-Key": "k1"}})).want(t, 201)
	rec(ts.do("PATCH", "/v1/projects/acme/secrets/db", map[string]any{"values": map[string]string{"password": val(3), "user": val(4)}})).want(t, 200)
	rec(ts.serve(req{method: "PATCH", path: "/v1/projects/acme/secrets/db", key: ts.key,
		body:   map[string]any{"values": map[string]string{"password": val(5)}},
		header: map[string]string{"Idempotency-Key": "k2"}})).want(t, 200)
	for _, path := range []string{"/secrets", "/secrets/db", "/secrets/db/versions", "/secrets/db/versions/1", "/secrets/db/versions/current", "/secrets/db/resolutions"} {
		rec(ts.do("GET", "/v1/projects/acme"+path, nil)).want(t, 200)
	}
	rec(ts.do("POST", "/v1/projects/acme/secrets/db/versions/1/destroy", nil)).want(t, 200)

	// Failures, each with a value that must not be echoed.
	for _, c := range []struct {
		name   string
		method string
		path   string
		body   string
		header map[string]string
	}{
		{"bad name", "POST", "/secrets", `{"name":"bad name","values":{"k":"` + val(10) + `"}}`, nil},
		{"taken name", "POST", "/secrets", `{"name":"db","values":{"k":"` + val(11) + `"}}`, nil},
		{"non-string value", "POST", "/secrets", `{"name":"x","values":{"k":` + "1234567890123" + `,"j":"` + val(12) + `"}}`, nil},
		{"object value", "POST", "/secrets", `{"name":"x","values":{"k":{"nested":"` + val(13) + `"}}}`, nil},
		{"unknown field", "POST", "/secrets", `{"name":"x","values":{"k":"v"},"secret":"` + val(14) + `"}`, nil},
		{"bad key", "PATCH", "/secrets/db", `{"values":{"bad key":"` + val(15) + `"}}`, nil},
		{"syntax error", "PATCH", "/secrets/db", `{"values":{"k":"` + val(16) + `"`, nil},
		{"trailing data", "PATCH", "/secrets/db", `{"values":{"k":"v"}}"` + val(17) + `"`, nil},
		{"name of wrong type", "POST", "/secrets", `{"name":["` + val(18) + `"],"values":{"k":"v"}}`, nil},
		{"too large", "PATCH", "/secrets/db", `{"values":{"k":"` + val(19) + strings.Repeat("x", 70000) + `"}}`, nil},
		{"idempotency conflict", "PATCH", "/secrets/db", `{"values":{"password":"` + val(20) + `"}}`, map[string]string{"Idempotency-Key": "k2"}},
		{"stale If-Match", "PATCH", "/secrets/db", `{"values":{"password":"` + val(21) + `"}}`, map[string]string{"If-Match": `"1"`}},
		{"missing secret", "PATCH", "/secrets/nope", `{"values":{"password":"` + val(22) + `"}}`, nil},
		{"duplicate value key", "POST", "/secrets", `{"name":"x","values":{"k":"` + val(23) + `","k":"` + val(24) + `"}}`, nil},
		{"lone surrogate", "PATCH", "/secrets/db", `{"values":{"k":"` + val(25) + `\ud800"}}`, nil},
		{"raw invalid UTF-8", "PATCH", "/secrets/db", "{\"values\":{\"k\":\"" + val(26) + "\xff\"}}", nil},
		{"field in capitals", "POST", "/secrets", `{"name":"x","VALUES":{"k":"` + val(27) + `"}}`, nil},
		{"duplicate field", "POST", "/secrets", `{"name":"x","values":{"k":"` + val(28) + `"},"values":{"k":"` + val(29) + `"}}`, nil},
	} {
		r := rec(ts.serve(req{method: c.method, path: "/v1/projects/acme" + c.path, key: ts.key, body: c.body, header: c.header}))
		if r.Status < 400 {
			t.Fatalf("%s: status %d", c.name, r.Status)
		}
	}

	for i, r := range responses {
		var hdr bytes.Buffer
		r.Header.Write(&hdr)
		if bytes.Contains(r.Body, []byte(canary)) || bytes.Contains(hdr.Bytes(), []byte(canary)) {
			t.Errorf("response %d holds a value: %s", i, r.Body)
		}
	}
	logs := ts.logs.String()
	if strings.Contains(logs, canary) || strings.Contains(logs, "1234567890123") {
		t.Errorf("a log line holds a value:\n%s", logs)
	}
	raw, err := os.ReadFile(ts.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(canary)) {
		t.Error("the data file holds a plaintext value")
	}
}

func TestAccessLog(t *testing.T) {
	ts := newTestServer(t)
	ts.createSecret("db", map[string]string{"k": "v"})
	before := len(ts.logs.String())

	r := ts.serve(req{method: "GET", path: "/v1/projects/acme/secrets/db", key: ts.key, header: map[string]string{"X-Request-Id": "trace-123"}}).want(t, 200)
	if r.Header.Get("X-Request-Id") != "trace-123" {
		t.Fatalf("X-Request-Id %q", r.Header.Get("X-Request-Id"))
	}
	bad := ts.serve(req{method: "GET", path: "/v1/projects/acme/secrets/nope", key: ts.key, header: map[string]string{"X-Request-Id": "bad id\twith spaces"}})
	generated := bad.Header.Get("X-Request-Id")
	if generated == "" || strings.Contains(generated, " ") {
		t.Fatalf("X-Request-Id %q", generated)
	}

	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(ts.logs.String()[before:]))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d access lines", len(lines))
	}
	first := lines[0]
	for k, want := range map[string]any{
		"method": "GET", "route": "GET /v1/projects/{project}/secrets/{secret}", "path": "/v1/projects/acme/secrets/db",
		"status": float64(200), "request_id": "trace-123", "project": "acme",
	} {
		if first[k] != want {
			t.Errorf("%s = %v, want %v", k, first[k], want)
		}
	}
	if _, ok := first["duration_ms"]; !ok {
		t.Error("no duration_ms")
	}
	if lines[1]["request_id"] != generated || lines[1]["status"] != float64(404) || lines[1]["error"] != "not_found" {
		t.Errorf("second line %v", lines[1])
	}
	if strings.Contains(ts.logs.String(), ts.key) || strings.Contains(ts.logs.String(), "Bearer") {
		t.Error("a log line holds a credential")
	}
}
