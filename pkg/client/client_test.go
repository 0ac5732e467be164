package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/client"
)

// fake answers every request with status and body, and remembers the last
// request.
func fake(t *testing.T, status int, body string, last *http.Request, lastBody *string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if last != nil {
			*last = *r.Clone(context.Background())
		}
		if lastBody != nil {
			*lastBody = string(b)
		}
		w.Header().Set("ETag", `"r7"`)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestErrorEnvelope(t *testing.T) {
	cases := []struct {
		name, body string
		status     int
		want       client.Error
		line       string
	}{
		{"envelope", `{"error":{"code":"Conflict","status":409,"message":"secret \"openai\" already exists in project \"default\"","field":"name"}}`, 409,
			client.Error{Status: 409, Code: "Conflict", Message: `secret "openai" already exists in project "default"`, Field: "name"},
			`Conflict (409): secret "openai" already exists in project "default"`},
		{"a proxy's page", "<html>Bad Gateway</html>\nmore", 502,
			client.Error{Status: 502, Code: "Bad Gateway", Message: "<html>Bad Gateway</html>"}, "Bad Gateway (502): <html>Bad Gateway</html>"},
		{"an empty body", "", 503, client.Error{Status: 503, Code: "Service Unavailable"}, "Service Unavailable (503)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := fake(t, tc.status, tc.body, nil, nil)
			_, err := client.New(srv.URL, "k").GetSecret(context.Background(), "p", "s")
			var e *client.Error
			if !errors.As(err, &e) || *e != tc.want || e.Error() != tc.line {
				t.Fatalf("got %#v (%v), want %#v", e, err, tc.want)
			}
			if !client.IsStatus(err, tc.status) {
				t.Error("IsStatus is false")
			}
		})
	}
}

func TestRequestsAndRawJSON(t *testing.T) {
	var last http.Request
	var body string
	secret := `{"id":"sec_01","name":"a b","description":"","project":"p","current_version":null,"latest_version":2,"created_at":"2026-11-28T14:03:00Z","updated_at":"2026-11-28T14:03:00Z"}`
	srv := fake(t, 200, secret, &last, &body)
	c := client.New(srv.URL+"/", "mbs_key", client.WithProject("acme"), client.WithTimeout(5*time.Second))
	ctx := context.Background()

	s, err := c.GetSecret(ctx, "", "a b")
	if err != nil {
		t.Fatal(err)
	}
	if string(s.Raw) != secret || s.CurrentVersion != nil || s.LatestVersion != 2 || s.ETag != `"r7"` {
		t.Errorf("secret %+v", s)
	}
	if last.URL.EscapedPath() != "/v1/projects/acme/secrets/a%20b" || last.Header.Get("Authorization") != "Bearer mbs_key" {
		t.Errorf("request %s %q", last.URL.EscapedPath(), last.Header.Get("Authorization"))
	}
	// The project given to a call wins over the client's.
	name := "b"
	if _, err := c.UpdateSecret(ctx, "other", "a", api.UpdateSecretRequest{Name: &name}, client.IfMatch(`"r7"`), client.IdempotencyKey("k1")); err != nil {
		t.Fatal(err)
	}
	if last.Method != "PATCH" || last.URL.Path != "/v1/projects/other/secrets/a" || body != `{"name":"b"}` ||
		last.Header.Get("If-Match") != `"r7"` || last.Header.Get("Idempotency-Key") != "k1" || last.Header.Get("Content-Type") != "application/json" {
		t.Errorf("update sent %s %s %s %v", last.Method, last.URL.Path, body, last.Header)
	}
	if _, err := c.DestroyVersion(ctx, "", "a", "current"); err != nil {
		t.Fatal(err)
	}
	if last.Method != "POST" || last.URL.Path != "/v1/projects/acme/secrets/a/versions/current/destroy" {
		t.Errorf("destroy sent %s %s", last.Method, last.URL.Path)
	}
}

func TestListPages(t *testing.T) {
	var last http.Request
	page := `{"versions":[{"version":2,"state":"ENABLED","sha256":"ab","keys":["k"],"created_at":"2026-11-28T14:03:00Z","state_changed_at":"2026-11-28T14:03:00Z"},{"version":1,"state":"DESTROYED","sha256":"cd","keys":["k"],"created_at":"2026-11-28T14:03:00Z","state_changed_at":"2026-11-28T14:03:00Z"}],"next_page_token":"tok2"}`
	srv := fake(t, 200, page, &last, nil)
	p, err := client.New(srv.URL, "k").ListVersions(context.Background(), "p", "s", 2, "tok1")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Versions) != 2 || p.NextPageToken != "tok2" || p.Versions[1].State != api.StateDestroyed || string(p.Raw) != page ||
		!strings.HasPrefix(string(p.Versions[0].Raw), `{"version":2,`) {
		t.Errorf("page %+v", p)
	}
	if q := last.URL.Query(); q.Get("limit") != "2" || q.Get("page_token") != "tok1" {
		t.Errorf("query %v", q)
	}
	bad := fake(t, 200, `{"versions":{}}`, nil, nil)
	if _, err := client.New(bad.URL, "k").ListVersions(context.Background(), "p", "s", 0, ""); err == nil {
		t.Error("a malformed page decoded")
	}
}

func TestConnError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	secret := "sk-" + "never-in-errors"
	_, err = client.New("http://"+addr, "k").CreateSecret(context.Background(), "p", api.CreateSecretRequest{Name: "a", Values: map[string]string{"k": secret}})
	var ce *client.ConnError
	if !errors.As(err, &ce) || ce.Endpoint != "http://"+addr {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "http://"+addr) || !strings.Contains(err.Error(), "refused") || strings.Contains(err.Error(), secret) {
		t.Errorf("message %q", err.Error())
	}
}

func TestHealth(t *testing.T) {
	srv := fake(t, 200, `{"status":"ok"}`, nil, nil)
	if err := client.New(srv.URL, "").Health(context.Background()); err != nil {
		t.Fatal(err)
	}
}
