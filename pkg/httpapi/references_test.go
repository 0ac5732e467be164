package httpapi

import (
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// A reference check reports every reference of any JSON document, with the
// version it selects and its digest, never a value, and writes nothing.
func TestReferenceCheck(t *testing.T) {
	ts := newTestServer(t)
	const canary = "CANARY-refcheck-5c1d"
	openai := ts.createSecret("openai", map[string]string{"api_key": canary})
	ts.do("PATCH", "/v1/projects/acme/secrets/openai", map[string]any{"values": map[string]string{"api_key": canary + "2", "org": canary + "3"}}).want(t, 200)
	ts.createSecret("db", map[string]string{"user": canary})
	ts.do("PATCH", "/v1/projects/acme/secrets/db", map[string]any{"name": "postgres"}).want(t, 200)
	var v2 api.Version
	ts.do("GET", "/v1/projects/acme/secrets/openai/versions/2", nil).want(t, 200).decode(t, &v2)
	const path = "/v1/projects/acme/references/check"
	reader := ts.newKey("acme", secrets.ScopeRead)

	doc := `{"steps":[{"headers":{"auth":"Bearer ${secret:openai.api_key} org ${secret:openai.org}"}},
		{"old":"${secret:openai.api_key@1}","gone":"${secret:nope.k}","key":"${secret:openai.missing}",
		 "bad":"${secret:openai}","alias":"${secret:db.user}","lit":"$${secret:openai.api_key}",
		 "${secret:openai.api_key}":1, "n": [1, true, null]}]}`
	var rep api.ReferenceReport
	ts.serve(req{method: "POST", path: path, key: reader, body: doc}).want(t, 200).decode(t, &rep)
	type row struct{ at, ref, problem string }
	var got []row
	byAt := map[string]api.ReferenceCheck{}
	for _, c := range rep.References {
		p := ""
		if c.Problem != nil {
			p = *c.Problem
		}
		got = append(got, row{c.At, c.Reference, p})
		byAt[c.At+" "+c.Reference] = c
	}
	want := []row{
		{"/steps/0/headers/auth", "${secret:openai.api_key}", ""},
		{"/steps/0/headers/auth", "${secret:openai.org}", ""},
		{"/steps/1/old", "${secret:openai.api_key@1}", `version 1 of secret "openai" is DISABLED`},
		{"/steps/1/gone", "${secret:nope.k}", `secret "nope" not found`},
		{"/steps/1/key", "${secret:openai.missing}", `key "missing" not found in secret "openai" (version 2)`},
		{"/steps/1/bad", "${secret:openai}", "malformed: no key"},
		{"/steps/1/alias", "${secret:db.user}", ""},
		{"/steps/1/${secret:openai.api_key}", "${secret:openai.api_key}", "an object key holds a reference"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d references reported, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].at != w.at || got[i].ref != w.ref || !strings.HasPrefix(got[i].problem, w.problem) || (w.problem == "") != (got[i].problem == "") {
			t.Errorf("reference %d: %+v, want %+v", i, got[i], w)
		}
	}
	if rep.OK || rep.Problems != 5 {
		t.Errorf("ok %v with %d problems, want false and 5", rep.OK, rep.Problems)
	}
	ok := byAt["/steps/0/headers/auth ${secret:openai.api_key}"]
	if !ok.WellFormed || !ok.SecretExists || *ok.SecretID != openai.ID || *ok.Version != 2 || *ok.State != "ENABLED" || *ok.SHA256 != v2.SHA256 || !ok.KeyFound || ok.Warning != nil {
		t.Errorf("a good reference: %+v", ok)
	}
	if a := byAt["/steps/1/alias ${secret:db.user}"]; a.Warning == nil || !strings.Contains(*a.Warning, `old name of secret "postgres"`) {
		t.Errorf("an alias: %+v", a)
	}
	if k := byAt["/steps/1/key ${secret:openai.missing}"]; k.KeyFound || *k.Version != 2 {
		t.Errorf("a missing key: %+v", k)
	}
	if b := byAt["/steps/1/${secret:openai.api_key} ${secret:openai.api_key}"]; !b.InKey || b.WellFormed {
		t.Errorf("a reference in a key: %+v", b)
	}

	t.Run("all good", func(t *testing.T) {
		var rep api.ReferenceReport
		ts.serve(req{method: "POST", path: path, key: reader, body: `["${secret:openai.org}", "no references"]`}).want(t, 200).decode(t, &rep)
		if !rep.OK || rep.Problems != 0 || len(rep.References) != 1 {
			t.Fatalf("%+v", rep)
		}
	})
	t.Run("no references", func(t *testing.T) {
		var rep api.ReferenceReport
		ts.serve(req{method: "POST", path: path, key: reader, body: `"plain"`}).want(t, 200).decode(t, &rep)
		if !rep.OK || rep.References == nil || len(rep.References) != 0 {
			t.Fatalf("%+v", rep)
		}
	})
	t.Run("refused documents", func(t *testing.T) {
		for _, c := range []struct{ name, body, says string }{
			{"empty", ``, "the request body is empty"},
			{"duplicate member", `{"a":"${secret:openai.org}","a":1}`, `member "a" appears more than once`},
			{"lone surrogate", `["\ud800${secret:openai.org}"]`, "lone UTF-16 surrogate"},
			{"trailing", `[] []`, "data after the JSON value"},
			{"too deep", strings.Repeat("[", secrets.MaxReferenceDepth+1) + strings.Repeat("]", secrets.MaxReferenceDepth+1), "nested more than 64 levels"},
			{"too many", `["` + strings.Repeat("${secret:openai.org}", secrets.MaxReferences+1) + `"]`, "more than 1000 secret references"},
		} {
			t.Run(c.name, func(t *testing.T) {
				e := wantError(t, ts.serve(req{method: "POST", path: path, key: reader, body: c.body}), 400, "-")
				if !strings.Contains(e.Message, c.says) {
					t.Errorf("message %q, want %q", e.Message, c.says)
				}
			})
		}
	})
	t.Run("needs secrets:read", func(t *testing.T) {
		writer := ts.newKey("acme", secrets.ScopeWrite)
		wantError(t, ts.serve(req{method: "POST", path: path, key: writer, body: `[]`}), 403, "-")
	})
	if strings.Contains(ts.logs.String(), canary) {
		t.Errorf("a value reached the log")
	}
}
