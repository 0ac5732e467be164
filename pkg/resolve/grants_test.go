package resolve_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/resolve"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// TestGrantMatrix: resolve reads only what a valid grant covers. Each case
// gives the exact errorType, no value in the answer or the log, and no
// audit record.
func TestGrantMatrix(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	e.create(t, "bravo", "openai", map[string]string{"api_key": canaryOther})
	in := `{"auth":"Bearer ${secret:openai.api_key}"}`
	valid := e.grant(t, "acme", "", "openai")

	flip := func(g string, at int) string {
		b := []byte(g)
		b[at] ^= 0x04
		return string(b)
	}
	type tc struct {
		name  string
		grant func() string
		input string
		typ   string
	}
	cases := []tc{
		{"no grant", func() string { return "" }, in, "Unauthorized"},
		{"malformed", func() string { return "mbg_not-a-grant" }, in, "Unauthorized"},
		{"an API key instead", func() string { return "mbs_" + strings.Repeat("a", 52) }, in, "Unauthorized"},
		{"one byte of the payload changed", func() string { return flip(valid, 10) }, in, "Unauthorized"},
		{"one byte of the MAC changed", func() string { return flip(valid, len(valid)-3) }, in, "Unauthorized"},
		{"expired", func() string {
			g := e.grant(t, "acme", "", "openai")
			e.now = e.now.Add(secrets.DefaultGrantTTL)
			return g
		}, in, "Unauthorized"},
		{"revoked", func() string {
			g := e.grant(t, "acme", "", "openai")
			list, _, _ := e.svc.ListGrants(e.ctx, "acme", "", 0)
			for _, lg := range list {
				if err := e.svc.RevokeGrant(e.ctx, "acme", lg.ID); err != nil {
					t.Fatal(err)
				}
			}
			return g
		}, in, "Unauthorized"},
		{"minted by a revoked key", func() string {
			e.key = nil
			g := e.grant(t, "acme", "", "openai")
			if err := e.svc.RevokeAPIKey(e.ctx, "acme", e.key.ID); err != nil {
				t.Fatal(err)
			}
			e.key = nil
			return g
		}, in, "Unauthorized"},
		{"another project's grant", func() string { e.key = nil; g := e.grant(t, "bravo", "", "openai"); e.key = nil; return g }, `{"p":"acme","x":"${secret:db.user}"}`, "Forbidden"},
		{"a grant for one secret used for another", func() string { return e.grant(t, "acme", "", "openai") }, `"${secret:db.password}"`, "Forbidden"},
		{"a name that does not exist", func() string { return e.grant(t, "acme", "", "openai") }, `"${secret:nothing.k}"`, "Forbidden"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			g := c.grant()
			res, err := e.r.Resolve(e.ctx, resolve.Event{Grant: g, Input: json.RawMessage(c.input)})
			re := asError(t, err)
			if res != nil || re.Type != c.typ {
				t.Fatalf("got %s: %s, want %s", re.Type, re.Message, c.typ)
			}
			if strings.Contains(re.Message, "CANARY") || (g != "" && strings.Contains(re.Message, g)) {
				t.Fatalf("the error holds a value or the grant: %s", re.Message)
			}
			if c.typ == "Forbidden" && !strings.Contains(re.Message, "not covered by the resolve grant") {
				t.Fatalf("a Forbidden that does not say why: %s", re.Message)
			}
		})
	}
	for _, name := range []string{"openai", "db"} {
		if rs, _, _ := e.svc.ListResolutions(e.ctx, "acme", name, "", 100); len(rs) != 0 {
			t.Errorf("refused calls left %d audit records on %s", len(rs), name)
		}
	}
	if g := valid; strings.Contains(e.logs.String(), g[len(secrets.GrantPrefix):]) {
		t.Error("a grant string reached the log")
	}
}

// TestGrantFollowsIDs: a grant keeps working after a rename (its new name
// and its old name, an alias, both resolve and the audit says which was
// used); a new secret that takes the old name is not covered.
func TestGrantFollowsIDs(t *testing.T) {
	e := mustOpen(t, nil)
	e.seed(t)
	g := e.grant(t, "acme", `{"run_id":"r9"}`, "openai")
	to := "llm"
	if _, err := e.svc.UpdateSecret(e.ctx, "acme", "openai", secrets.UpdateSecretInput{Name: &to}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"llm", "openai"} {
		res, err := e.r.Resolve(e.ctx, resolve.Event{Grant: g, Input: json.RawMessage(`"${secret:` + ref + `.api_key}"`)})
		if err != nil || string(res.Output) != `"`+canaryOpenAI+`"` {
			t.Fatalf("after the rename, %s: %v", ref, err)
		}
	}
	rs, _, _ := e.svc.ListResolutions(e.ctx, "acme", "llm", "", 10)
	aliases := map[string]bool{}
	for _, r := range rs {
		aliases[r.Alias] = true
		if r.SecretName != "llm" || string(r.Run) != `{"run_id":"r9"}` {
			t.Fatalf("audit after the rename: %+v", r)
		}
	}
	if len(rs) != 2 || !aliases["openai"] || !aliases[""] {
		t.Fatalf("audit after the rename: one read through the alias and one by the new name, got %v", aliases)
	}
	if _, err := e.svc.DeleteAlias(e.ctx, "acme", "llm", "openai"); err != nil {
		t.Fatal(err)
	}
	e.create(t, "acme", "openai", map[string]string{"api_key": "CANARY-taker"})
	_, err := e.r.Resolve(e.ctx, resolve.Event{Grant: g, Input: json.RawMessage(`"${secret:openai.api_key}"`)})
	if re := asError(t, err); re.Type != "Forbidden" {
		t.Fatalf("the new holder of the old name: %s: %s", re.Type, re.Message)
	}
}

// TestSelectors: @pending, @previous and @N through resolve, with the
// version each read reported and audited.
func TestSelectors(t *testing.T) {
	e := mustOpen(t, nil)
	grace := time.Hour
	if _, err := e.svc.CreateSecret(e.ctx, "acme", secrets.CreateSecretInput{Name: "hook", Values: map[string]string{"s": "CANARY-one"}, PreviousGrace: &grace}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.UpdateSecret(e.ctx, "acme", "hook", secrets.UpdateSecretInput{Values: map[string]string{"s": "CANARY-two"}, Stage: secrets.Pending}); err != nil {
		t.Fatal(err)
	}
	_, g, err := e.svc.MintGrant(e.ctx, "acme", e.apiKey(t, "acme"), secrets.MintGrantInput{Secrets: []string{"hook"}, TTL: secrets.MaxGrantTTL})
	if err != nil {
		t.Fatal(err)
	}
	resolveIn := func(in string) (*resolve.Result, error) {
		return e.r.Resolve(e.ctx, resolve.Event{Grant: g, Input: json.RawMessage(in)})
	}
	res, err := resolveIn(`["${secret:hook.s}","${secret:hook.s@pending}","${secret:hook.s@1}","${secret:hook.s@2}"]`)
	if err != nil || string(res.Output) != `["CANARY-one","CANARY-two","CANARY-one","CANARY-two"]` {
		t.Fatalf("before promote: %v", err)
	}
	if len(res.Resolved) != 4 || res.Resolved[0].Selector != "" || res.Resolved[3].Selector != "pending" || res.Resolved[3].Version != 2 {
		t.Fatalf("resolved: %+v", res.Resolved)
	}
	if _, _, err := e.svc.ChangeVersionState(e.ctx, "acme", "hook", "2", secrets.ActionPromote, nil); err != nil {
		t.Fatal(err)
	}
	res, err = resolveIn(`["${secret:hook.s}","${secret:hook.s@previous}"]`)
	if err != nil || string(res.Output) != `["CANARY-two","CANARY-one"]` {
		t.Fatalf("in the grace: %v", err)
	}
	e.now = e.now.Add(grace)
	_, err = resolveIn(`"${secret:hook.s@previous}"`)
	if re := asError(t, err); re.Type != "NotFound" || !strings.Contains(re.Message, "grace ended") {
		t.Fatalf("after the grace: %s: %s", re.Type, re.Message)
	}
	_, err = resolveIn(`"${secret:hook.s@1}"`)
	if re := asError(t, err); re.Type != "NotFound" || !strings.Contains(re.Message, "DISABLED") {
		t.Fatalf("a pin to a retired version: %s: %s", re.Type, re.Message)
	}
	// One audit record per version read.
	rs, _, _ := e.svc.ListResolutions(e.ctx, "acme", "hook", "", 10)
	versions := map[int]int{}
	for _, r := range rs {
		versions[r.Version]++
	}
	if versions[1] != 2 || versions[2] != 2 {
		t.Fatalf("audit per version: %v", versions)
	}
}
