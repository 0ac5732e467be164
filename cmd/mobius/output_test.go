package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"
)

// What the server stored is shown, never obeyed: control characters in a
// description (stored before the server refused them, or by another
// server) or a resolution's run cannot drive the reader's terminal.
func TestTablesDoNotPassControlCharacters(t *testing.T) {
	hostile := "ok\x1b[2K\x1b[1ACurrent version:  99\x1b]52;c;cHduZWQ=\a\u009b2K\x7f\x00end"
	secret := map[string]any{
		"id": "sec_01ARZ3NDEKTSV4RRFFQ69G5FAV", "name": "db", "description": hostile, "project": "default",
		"current_version": 1, "latest_version": 1, "created_at": "2026-11-28T10:00:00Z", "updated_at": "2026-11-28T10:00:00Z",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/projects/default/secrets":
			json.NewEncoder(w).Encode(map[string]any{"secrets": []any{secret}, "next_page_token": ""})
		case "/v1/projects/default/secrets/db":
			json.NewEncoder(w).Encode(secret)
		case "/v1/projects/default/secrets/db/resolutions":
			json.NewEncoder(w).Encode(map[string]any{"resolutions": []any{map[string]any{
				"version": 1, "keys": []string{"password"}, "resolved_at": "2026-11-28T10:00:00Z",
				"run": map[string]string{"id": hostile},
			}}, "next_page_token": ""})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	env := map[string]string{"MOBIUS_ENDPOINT": srv.URL, "MOBIUS_API_KEY": "mbs_test", "MOBIUS_PROJECT": "default"}
	for _, args := range [][]string{{"secrets", "get", "db"}, {"secrets", "list"}, {"secrets", "resolutions", "db"}} {
		out := mustRun(t, env, args...)
		if !strings.Contains(out, "ok") {
			t.Errorf("%v: the description is not shown:\n%s", args, out)
		}
		if i := strings.IndexFunc(out, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }); i >= 0 {
			t.Errorf("%v: control character %q at %d in\n%q", args, out[i:i+1], i, out)
		}
	}
}

// An empty list says so on stderr; stdout is still the table (its header)
// for whatever reads it, and -o json says nothing extra.
func TestEmptyListSaysSo(t *testing.T) {
	ts := newTestServer(t)
	env := ts.env()
	r := runCLI(t, env, "", "secrets", "list", "--prefix", "nothing-here")
	if r.code != 0 || r.stderr != "No secrets.\n" || !strings.HasPrefix(r.stdout, "NAME") || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	mustRun(t, env, "secrets", "create", "--name", "openai", "--values", `{"k":"v"}`)
	if r := runCLI(t, env, "", "secrets", "resolutions", "openai"); r.code != 0 || r.stderr != "No resolutions.\n" {
		t.Fatalf("resolutions: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, env, "", "secrets", "list", "--prefix", "nothing-here", "-o", "json"); r.code != 0 || r.stderr != "" {
		t.Fatalf("-o json: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, env, "", "secrets", "list"); r.code != 0 || r.stderr != "" {
		t.Fatalf("a list with a secret: stderr %q", r.stderr)
	}
}

// A --var the file never uses is warned about by name (never by value),
// and the command still runs.
func TestUnusedVarIsWarned(t *testing.T) {
	ts := newTestServer(t)
	p := writeFile(t, t.TempDir(), "creds.json", `{"api_key":"${KEY}"}`)
	r := runCLI(t, ts.env(), "", "secrets", "digest", "--file", p, "--var", "KEY="+canary, "--var", "EVN="+canary+"-2", "--var", "A=x")
	want := "warning: --var A is not used by " + p + "\nwarning: --var EVN is not used by " + p + "\n"
	if r.code != 0 || r.stderr != want {
		t.Fatalf("exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	noCanary(t, r)
	if r := runCLI(t, ts.env(), "", "secrets", "digest", "--file", p, "--var", "KEY=x"); r.code != 0 || r.stderr != "" {
		t.Fatalf("every --var used: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestEndpointOf(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, "http://127.0.0.1:8080"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8080}, "http://127.0.0.1:8080"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, "http://127.0.0.1:8080"}, // how 0.0.0.0 reports itself
		{&net.TCPAddr{Port: 8080}, "http://127.0.0.1:8080"},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8080}, "http://[::1]:8080"},
		{&net.TCPAddr{IP: net.IPv4(192, 168, 1, 5), Port: 9000}, "http://192.168.1.5:9000"},
	} {
		if got := endpointOf(c.addr); got != c.want {
			t.Errorf("endpointOf(%v) = %s, want %s", c.addr, got, c.want)
		}
	}
}
