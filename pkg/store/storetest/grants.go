package storetest

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// minter returns a Service on e's store and keys whose clock is *now, and an
// API key of e.Project with every scope, made through it.
func (e *Env) minter(now *time.Time, cacheTTL time.Duration) (*secrets.Service, *secrets.APIKey) {
	e.T.Helper()
	svc := secrets.NewService(e.KV, e.Keys, secrets.Options{Now: func() time.Time { return *now }, AuthCacheTTL: cacheTTL, Logger: quietLogger()})
	k, _, err := svc.CreateAPIKey(e.Ctx, e.Project, "scheduler", secrets.AllScopes)
	if err != nil {
		e.T.Fatal(err)
	}
	return svc, k
}

// testGrantMintAndVerify: a grant covers the secrets it names, by ID; it
// carries its run; every changed byte is refused.
func testGrantMintAndVerify(t *testing.T, e *Env) {
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	svc, by := e.minter(&now, 0)
	a := e.create(e.Project, "alpha")
	e.create(e.Project, "beta")
	g, token, err := svc.MintGrant(e.Ctx, e.Project, by, secrets.MintGrantInput{
		Secrets: []string{"alpha", a.ID, "beta"}, Run: json.RawMessage(`{ "run_id": "r-1" }`), TTL: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, secrets.GrantPrefix) || !secrets.IsGrantID(g.ID) || len(g.Secrets) != 2 ||
		g.Secrets[0].Name != "alpha" || string(g.Run) != `{"run_id":"r-1"}` || g.KeyID != by.ID || !g.ExpiresAt.Equal(now.Add(15*time.Minute)) {
		t.Fatalf("minted grant: %+v", g)
	}
	v, err := svc.VerifyGrant(e.Ctx, token)
	if err != nil || v.ID != g.ID || v.Project != e.Project || !v.Covers(a.ID) || string(v.Run) != `{"run_id":"r-1"}` || v.KeyID != by.ID {
		t.Fatalf("VerifyGrant: %+v, %v", v, err)
	}
	// Any changed byte of the string is refused.
	for i := len(secrets.GrantPrefix); i < len(token); i += 7 {
		b := []byte(token)
		b[i] ^= 0x01
		if _, err := svc.VerifyGrant(e.Ctx, string(b)); secrets.ErrorCode(err) != secrets.Unauthorized {
			t.Fatalf("a grant with byte %d changed: %v, want Unauthorized", i, err)
		}
	}
	// A payload re-encoded for another project, with the old MAC, is refused.
	body := strings.TrimPrefix(token, secrets.GrantPrefix)
	p64, mac, _ := strings.Cut(body, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(p64)
	forged := strings.Replace(string(raw), `"p":"acme"`, `"p":"bravo"`, 1)
	_, err = svc.VerifyGrant(e.Ctx, secrets.GrantPrefix+base64.RawURLEncoding.EncodeToString([]byte(forged))+"."+mac)
	WantCode(t, "a grant moved to another project", err, secrets.Unauthorized)
	for _, junk := range []string{"", "mbg_", "mbg_.", "mbs_x.y", "mbg_!!.!!", token + "x"} {
		_, err := svc.VerifyGrant(e.Ctx, junk)
		WantCode(t, "junk grant "+junk, err, secrets.Unauthorized)
	}
	// Another installation (another key, so another grant key) refuses it.
	_, err = e.otherKeyService().VerifyGrant(e.Ctx, token)
	if code := secrets.ErrorCode(err); code != secrets.Unauthorized && code != secrets.Misconfigured {
		t.Fatalf("a grant on another installation: %v", err)
	}
}

func testGrantMintRefusals(t *testing.T, e *Env) {
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	svc, by := e.minter(&now, 0)
	e.create(e.Project, "alpha")
	e.create("bravo", "theirs")
	many := make([]string, secrets.MaxGrantSecrets+1)
	for i := range many {
		many[i] = "alpha"
	}
	for _, c := range []struct {
		what string
		in   secrets.MintGrantInput
		code secrets.Code
	}{
		{"no secrets", secrets.MintGrantInput{}, secrets.Invalid},
		{"too many secrets", secrets.MintGrantInput{Secrets: many}, secrets.Invalid},
		{"a missing secret", secrets.MintGrantInput{Secrets: []string{"alpha", "nope"}}, secrets.NotFound},
		{"another project's secret", secrets.MintGrantInput{Secrets: []string{"theirs"}}, secrets.NotFound},
		{"a TTL too long", secrets.MintGrantInput{Secrets: []string{"alpha"}, TTL: 25 * time.Hour}, secrets.Invalid},
		{"a TTL too short", secrets.MintGrantInput{Secrets: []string{"alpha"}, TTL: time.Millisecond}, secrets.Invalid},
		{"a run that is not an object", secrets.MintGrantInput{Secrets: []string{"alpha"}, Run: json.RawMessage(`[1]`)}, secrets.Invalid},
		{"a run over 4 KiB", secrets.MintGrantInput{Secrets: []string{"alpha"}, Run: json.RawMessage(`{"x":"` + strings.Repeat("a", 5000) + `"}`)}, secrets.Invalid},
	} {
		_, _, err := svc.MintGrant(e.Ctx, e.Project, by, c.in)
		WantCode(t, c.what, err, c.code)
	}
	if list, _, _ := svc.ListGrants(e.Ctx, e.Project, "", 0); len(list) != 0 {
		t.Fatalf("refused mints left %d grants", len(list))
	}
}

// testGrantLifetime: expiry, revocation (at once here, within the cache
// bound elsewhere), and the minting key's revocation.
func testGrantLifetime(t *testing.T, e *Env) {
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	const bound = 30 * time.Second
	svc, by := e.minter(&now, bound)
	other := secrets.NewService(e.KV, e.Keys, secrets.Options{Now: func() time.Time { return now }, AuthCacheTTL: bound, Logger: quietLogger()})
	e.create(e.Project, "alpha")
	mint := func(ttl time.Duration) (*secrets.Grant, string) {
		g, tok, err := svc.MintGrant(e.Ctx, e.Project, by, secrets.MintGrantInput{Secrets: []string{"alpha"}, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return g, tok
	}
	short, shortTok := mint(time.Minute)
	g, tok := mint(time.Hour)
	for _, s := range []*secrets.Service{svc, other} {
		if _, err := s.VerifyGrant(e.Ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	list, _, err := svc.ListGrants(e.Ctx, e.Project, "", 0)
	if err != nil || len(list) != 2 || list[0].ID > list[1].ID || (list[0].ID != short.ID && list[1].ID != short.ID) {
		t.Fatalf("live grants (in ID order): %v, %v", list, err)
	}
	now = now.Add(time.Minute)
	_, err = svc.VerifyGrant(e.Ctx, shortTok)
	WantCode(t, "an expired grant", err, secrets.Unauthorized)
	if list, _, _ := svc.ListGrants(e.Ctx, e.Project, "", 0); len(list) != 1 {
		t.Fatalf("an expired grant is listed as live")
	}
	WantCode(t, "revoking an expired grant", svc.RevokeGrant(e.Ctx, e.Project, short.ID), secrets.NotFound)
	if _, err := other.VerifyGrant(e.Ctx, tok); err != nil { // warms other's cache
		t.Fatal(err)
	}
	WantCode(t, "revoke", svc.RevokeGrant(e.Ctx, e.Project, g.ID), "")
	_, err = svc.VerifyGrant(e.Ctx, tok)
	WantCode(t, "a revoked grant on the revoking server", err, secrets.Unauthorized)
	// A warm verification reads nothing from the store, so another server
	// learns of the revocation only when its cache entry ends.
	if _, err := other.VerifyGrant(e.Ctx, tok); err != nil {
		t.Fatalf("another server within its cache bound re-read the grant: %v", err)
	}
	now = now.Add(bound)
	_, err = other.VerifyGrant(e.Ctx, tok)
	WantCode(t, "a revoked grant on another server after the bound", err, secrets.Unauthorized)
	WantCode(t, "revoke again", svc.RevokeGrant(e.Ctx, e.Project, g.ID), secrets.NotFound)

	// Revoking the minting key refuses its grants.
	_, tok2 := mint(time.Hour)
	if _, err := other.VerifyGrant(e.Ctx, tok2); err != nil {
		t.Fatal(err)
	}
	if list, _, err := svc.ListGrants(e.Ctx, e.Project, "", 0); err != nil || len(list) != 1 {
		t.Fatalf("grants listed before the minting key is revoked: %d, %v", len(list), err)
	}
	WantCode(t, "revoke the minting key", svc.RevokeAPIKey(e.Ctx, e.Project, by.ID), "")
	if list, _, err := svc.ListGrants(e.Ctx, e.Project, "", 0); err != nil || len(list) != 0 {
		t.Fatalf("a grant of a revoked key is still listed: %d, %v", len(list), err)
	}
	_, err = svc.VerifyGrant(e.Ctx, tok2)
	WantCode(t, "a grant of a revoked key, on the revoking server", err, secrets.Unauthorized)
	now = now.Add(bound)
	_, err = other.VerifyGrant(e.Ctx, tok2)
	WantCode(t, "a grant of a revoked key, elsewhere after the bound", err, secrets.Unauthorized)
	_, _, err = svc.MintGrant(e.Ctx, e.Project, by, secrets.MintGrantInput{Secrets: []string{"alpha"}})
	WantCode(t, "minting with a revoked key", err, secrets.Unauthorized)
}

// testGrantBindsIDs: a rename keeps a grant's coverage; a new secret that
// takes the old name is not covered.
func testGrantBindsIDs(t *testing.T, e *Env) {
	now := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	svc, by := e.minter(&now, 0)
	a := e.create(e.Project, "alpha")
	_, tok, err := svc.MintGrant(e.Ctx, e.Project, by, secrets.MintGrantInput{Secrets: []string{"alpha"}})
	if err != nil {
		t.Fatal(err)
	}
	to := "renamed"
	if _, err := e.Svc.UpdateSecret(e.Ctx, e.Project, "alpha", secrets.UpdateSecretInput{Name: &to}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Svc.DeleteAlias(e.Ctx, e.Project, "renamed", "alpha"); err != nil {
		t.Fatal(err)
	}
	taker := e.create(e.Project, "alpha")
	g, err := svc.VerifyGrant(e.Ctx, tok)
	if err != nil || !g.Covers(a.ID) || g.Covers(taker.ID) {
		t.Fatalf("after a rename and a re-take: %v, covers renamed %v, covers the new alpha %v", err, g.Covers(a.ID), g.Covers(taker.ID))
	}
	out, err := svc.Reveal(e.Ctx, e.Project, []string{"renamed", "alpha"}, func(s *secrets.Secret) bool { return g.Covers(s.ID) })
	if err != nil || !out["renamed"].Covered || out["renamed"].Values == nil || out["alpha"].Covered || out["alpha"].Values != nil {
		t.Fatalf("Reveal under the grant: %v", err)
	}
}
