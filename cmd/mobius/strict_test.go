package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// The values of --values, --file (after ${VAR} substitution) and digest are
// read strictly: a key twice at any depth, a string that is not valid
// Unicode (a lone surrogate escape, raw invalid UTF-8) or data after the
// object is a usage error (exit 2, one line) naming the key, before any
// request, with no value in it.
func TestStrictValues(t *testing.T) {
	ts := newTestServer(t)
	mustRun(t, ts.env(), "secrets", "create", "--name", "a", "--values", `{"k":"v"}`)
	before := ts.requests.Load()
	dir := t.TempDir()
	for _, c := range []struct{ name, json, want string }{
		{"duplicate key", `{"a":"` + canary + `","a":"x"}`, `key "a" appears twice`},
		{"duplicate key written with an escape", `{"a":"x","\u0061":"` + canary + `"}`, `key "a" appears twice`},
		{"duplicate key at depth", `{"a":{"k":"` + canary + `","k":"x"}}`, `key "k" appears twice (in /a)`},
		{"lone high surrogate", `{"a":"` + canary + `\ud800"}`, `a lone UTF-16 surrogate escape (\uD800-\uDFFF without its pair) is not a character (the value of "a")`},
		{"lone low surrogate", `{"b":"x","a":"\udc00` + canary + `"}`, `a lone UTF-16 surrogate escape (\uD800-\uDFFF without its pair) is not a character (the value of "a")`},
		{"high surrogate then not a low one", `{"a":"\ud800\u0041` + canary + `"}`, `a lone UTF-16 surrogate escape (\uD800-\uDFFF without its pair) is not a character (the value of "a")`},
		{"raw invalid UTF-8", "{\"a\":\"" + canary + "\xff\"}", `not valid UTF-8 text (the value of "a")`},
		{"raw encoded surrogate", "{\"a\":\"\xed\xa0\x80" + canary + "\"}", `not valid UTF-8 text (the value of "a")`},
		{"lone surrogate in a key", `{"\ud800":"` + canary + `"}`, `a lone UTF-16 surrogate escape (\uD800-\uDFFF without its pair) is not a character`},
		{"data after the object", `{"a":"x"} {"b":"` + canary + `"}`, `invalid JSON: data after the values object`},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := writeFile(t, dir, strings.ReplaceAll(c.name, " ", "-")+".json", c.json)
			for _, p := range []struct {
				via, where string
				args       []string
				stdin      string
			}{
				{"create --values", "--values: ", []string{"secrets", "create", "--name", "b", "--values", c.json}, ""},
				{"update --file", filepath.Base(file) + ":1: ", []string{"secrets", "update", "a", "--file", file}, ""},
				{"digest --values", "--values: ", []string{"secrets", "digest", "--values", c.json}, ""},
				{"digest --file -", "<stdin>:1: ", []string{"secrets", "digest", "--file", "-"}, c.json},
			} {
				r := runCLI(t, ts.env(), p.stdin, p.args...)
				if r.code != 2 || r.stdout != "" {
					t.Errorf("%s: exit %d, stdout %q; want 2 and nothing", p.via, r.code, r.stdout)
				}
				if !strings.HasPrefix(r.stderr, "error: ") || strings.Count(r.stderr, "\n") != 1 {
					t.Errorf("%s: stderr is not one error line: %q", p.via, r.stderr)
				}
				if !strings.Contains(r.stderr, p.where+c.want) {
					t.Errorf("%s: stderr %q does not say %q", p.via, r.stderr, p.where+c.want)
				}
				noCanary(t, r)
			}
		})
	}
	if n := ts.requests.Load() - before; n != 0 {
		t.Errorf("%d requests were sent for refused values", n)
	}
	var v struct {
		LatestVersion int `json:"latest_version"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, ts.env(), "secrets", "get", "a", "-o", "json")), &v); err != nil || v.LatestVersion != 1 {
		t.Errorf("secret a after refused updates: %+v (%v)", v, err)
	}
	out := mustRun(t, ts.env(), "secrets", "list", "-o", "json")
	if strings.Contains(out, `"name":"b"`) {
		t.Errorf("a refused create made secret b: %s", out)
	}
}

// ${VAR} substitution cannot make a string invalid: a value is escaped into
// the JSON, so "\ud800" given with --var is those six characters; a value
// that is not UTF-8 is refused, since it would reach the JSON as U+FFFD.
func TestStrictVars(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "v.json", `{"a":"${X}","A":"case is kept"}`)
	got := strings.TrimSpace(mustRun(t, nil, "secrets", "digest", "--file", file, "--var", `X=\ud800 "q" `+"\u2028"))
	if want := secrets.Digest(map[string]string{"a": `\ud800 "q" ` + "\u2028", "A": "case is kept"}); got != want {
		t.Errorf("digest %s, want %s", got, want)
	}
	r := runCLI(t, nil, "", "secrets", "digest", "--file", file, "--var", "X="+canary+"\xff")
	if r.code != 2 || !strings.Contains(r.stderr, "--var X: the value is not valid UTF-8 text") {
		t.Errorf("a --var that is not UTF-8: exit %d, stderr %q", r.code, r.stderr)
	}
	noCanary(t, r)
}
