package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/internal/strictjson"
	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/httpapi"
	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// fuzzServer is the real handler over a bolt store, with an all-scope key
// of project "acme".
func fuzzServer(f *testing.F) (http.Handler, string) {
	f.Helper()
	st, err := bolt.Open(filepath.Join(f.TempDir(), "fuzz.db"), bolt.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	w, err := local.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := secrets.NewService(st, w, secrets.Options{Logger: logger})
	_, key, err := svc.CreateAPIKey(context.Background(), "acme", "fuzz", secrets.AllScopes)
	if err != nil {
		f.Fatal(err)
	}
	return httpapi.NewHandler(svc, httpapi.Options{Logger: logger, PageTokenKey: []byte("fuzz page token key")}), key
}

func serve(h http.Handler, method, target, key string, body []byte) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	r.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// checkAnswer fails unless the answer is a 2xx, or a 4xx with a well-formed
// error envelope that carries no stack trace.
func checkAnswer(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if w.Code >= 400 {
		var e api.Error
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Status != w.Code || e.Error.Message == "" {
			t.Fatalf("status %d: not an error envelope: %q", w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), "goroutine ") || strings.Contains(w.Body.String(), ".go:") {
			t.Fatalf("status %d: the body looks like a stack trace: %q", w.Code, w.Body)
		}
	}
}

// FuzzCreateBody sends any bytes as the body of a create through the real
// handler: never a 5xx, never a panic, always an answer the contract knows.
func FuzzCreateBody(f *testing.F) {
	for _, s := range []string{
		`{"name":"db","values":{"password":"p"}}`,
		`{"name":"db","description":"d","values":{"a":"1","b":"2"}}`,
		`{"name":"db","values":{}}`,
		`{"name":"","values":{"a":"b"}}`,
		`{"name":"sec_01J9Z8Y7X6W5V4T3S2R1Q0P9N8","values":{"a":"b"}}`,
		`{"name":"db","values":{"a":"b"},"extra":1}`,
		`{"name":"db","values":{"a":1}}`,
		`{"name":"db","values":{"a":null}}`,
		`{"name":"db","values":{"a":"b"}}{"x":1}`,
		`{"name":"db","values":{"a":"\ud800"}}`,
		`{"name":"db","name":"db2","values":{"a":"b"}}`,
		`[]`, `null`, `""`, `{`, ``, `{"name":` + strings.Repeat(`[`, 10000),
		`{"name":"x","values":{"` + strings.Repeat("k", 200) + `":"v"}}`,
		"\xff\xfe{}",
		`{"name":"db","values":{"a":"\udc00"}}`, `{"name":"db","values":{"a":"\ud800\u0041"}}`,
		`{"name":"db","values":{"a":"\ud83d\ude00\u2028\uffff\u0000"}}`, "{\"name\":\"db\",\"values\":{\"a\":\"\xed\xa0\x80\"}}",
		`{"name":"db","values":{"a":"b","a":"c"}}`, `{"name":"db","values":{"a":"b","\u0061":"c"}}`,
		`{"NAME":"db","values":{"a":"b"}}`, `{"name":"db","Values":{"a":"b"}}`, `{"name":"db","values":{"a":"b"},"name":"x"}`,
	} {
		f.Add([]byte(s))
	}
	h, key := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		w := serve(h, "POST", "/v1/projects/acme/secrets", key, body)
		checkAnswer(t, w)
		switch w.Code {
		case 201, 400, 409, 413:
		default:
			t.Fatalf("status %d for a create: %s", w.Code, w.Body)
		}
		if w.Code != 201 {
			return
		}
		// Only strict JSON is accepted, with field names exactly as the
		// schema has them.
		if err := strictjson.Valid(body); err != nil {
			t.Fatalf("created from a body the strict decoder refuses (%v): %q", err, body)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			t.Fatalf("created from %q: %v", body, err)
		}
		for name := range fields {
			if name != "name" && name != "description" && name != "values" {
				t.Fatalf("created from a body with field %q: %q", name, body)
			}
		}
	})
}

// FuzzPageToken sends any string as the page_token of every kind of list:
// a token the server did not make is 400 (field page_token), never a 5xx.
func FuzzPageToken(f *testing.F) {
	h, key := fuzzServer(f)
	for _, n := range []string{"a", "b", "c"} {
		if w := serve(h, "POST", "/v1/projects/acme/secrets", key, []byte(`{"name":"`+n+`","values":{"k":"v"}}`)); w.Code != 201 {
			f.Fatalf("create: %d %s", w.Code, w.Body)
		}
	}
	w := serve(h, "GET", "/v1/projects/acme/secrets?limit=1", key, nil)
	var page api.SecretList
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || page.NextPageToken == "" {
		f.Fatalf("list: %d %s", w.Code, w.Body)
	}
	genuine := page.NextPageToken
	raw, _ := base64.RawURLEncoding.DecodeString(genuine)
	flipped := bytes.Clone(raw)
	flipped[0] ^= 1
	for _, s := range []string{
		genuine, genuine + "A", genuine[:len(genuine)-1], base64.RawURLEncoding.EncodeToString(flipped),
		base64.RawURLEncoding.EncodeToString(raw[:len(raw)-32]), "x", "====", strings.Repeat("A", 5000),
		base64.RawURLEncoding.EncodeToString([]byte(`["v1","secrets","acme","","","b"]` + strings.Repeat("\x00", 32))),
	} {
		f.Add(s)
	}
	paths := []string{"/v1/projects/acme/secrets", "/v1/projects/acme/secrets/a/versions", "/v1/projects/acme/secrets/a/resolutions"}
	f.Fuzz(func(t *testing.T, token string) {
		for i, p := range paths {
			w := serve(h, "GET", p+"?page_token="+url.QueryEscape(token), key, nil)
			checkAnswer(t, w)
			valid := token == "" || (i == 0 && token == genuine)
			switch {
			case valid && w.Code != 200:
				t.Fatalf("%s with a genuine token: %d %s", p, w.Code, w.Body)
			case !valid && w.Code != 400:
				t.Fatalf("%s with forged token %q: %d %s", p, token, w.Code, w.Body)
			case !valid:
				var e api.Error
				json.Unmarshal(w.Body.Bytes(), &e)
				if e.Error.Field != "page_token" {
					t.Fatalf("%s: field %q, want page_token", p, e.Error.Field)
				}
			}
		}
	})
}
