package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func TestGrants(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	if _, err := ts.Svc.CreateSecret(ctx, "default", secrets.CreateSecretInput{Name: "db", Values: map[string]string{"password": canary}}); err != nil {
		t.Fatal(err)
	}
	env := ts.env()

	var minted struct {
		ID, Grant string
		Secrets   []struct{ Name string }
		Run       json.RawMessage
	}
	out := mustRun(t, env, "grants", "create", "--secrets", "db", "--run", `{"run_id":"r1"}`, "--ttl", "10m", "-o", "json")
	if err := json.Unmarshal([]byte(out), &minted); err != nil || !strings.HasPrefix(minted.Grant, secrets.GrantPrefix) || len(minted.Secrets) != 1 || string(minted.Run) != `{"run_id":"r1"}` {
		t.Fatalf("create -o json: %s (%v)", out, err)
	}
	g, err := ts.Svc.VerifyGrant(ctx, minted.Grant)
	if err != nil || g.ExpiresAt.Sub(g.CreatedAt).Minutes() != 10 {
		t.Fatalf("the minted grant: %+v, %v", g, err)
	}
	table := mustRun(t, env, "grants", "create", "--secrets", "db")
	if !strings.Contains(table, "Grant:") || !strings.Contains(table, secrets.GrantPrefix) || !strings.Contains(table, "Secrets:  db") {
		t.Errorf("create table:\n%s", table)
	}

	list := mustRun(t, env, "grants", "list")
	if !strings.Contains(list, minted.ID) || !strings.Contains(list, `{"run_id":"r1"}`) || strings.Contains(list, secrets.GrantPrefix) {
		t.Errorf("list (never a grant string):\n%s", list)
	}
	if lines := strings.Count(strings.TrimSpace(list), "\n"); lines != 2 {
		t.Errorf("list: %d rows, want 2:\n%s", lines, list)
	}

	if r := runCLI(t, env, "", "grants", "revoke", minted.ID, "--yes"); r.code != 0 || !strings.Contains(r.stdout, "Revoked resolve grant "+minted.ID) {
		t.Fatalf("revoke: %+v", r)
	}
	if _, err := ts.Svc.VerifyGrant(ctx, minted.Grant); secrets.ErrorCode(err) != secrets.Unauthorized {
		t.Fatalf("a revoked grant verifies: %v", err)
	}
	if list := mustRun(t, env, "grants", "list"); strings.Contains(list, minted.ID) {
		t.Errorf("a revoked grant is listed:\n%s", list)
	}

	for _, c := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"no secrets", []string{"grants", "create"}, 2, "--secrets"},
		{"run not an object", []string{"grants", "create", "--secrets", "db", "--run", `[1]`}, 2, "--run"},
		{"run not JSON", []string{"grants", "create", "--secrets", "db", "--run", `{`}, 2, "--run"},
		{"ttl too short", []string{"grants", "create", "--secrets", "db", "--ttl", "500ms"}, 2, "--ttl"},
		{"ttl too long", []string{"grants", "create", "--secrets", "db", "--ttl", "25h"}, 1, "ttl_seconds"},
		{"no such secret", []string{"grants", "create", "--secrets", "ghost"}, 1, "ghost"},
		{"revoke unknown", []string{"grants", "revoke", "grt_01JNQ7Z8K2M4P6R8T0V2X4Z6B8", "--yes"}, 1, "not found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, env, "", c.args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.says) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit %d (want %d), stderr %q (want one line with %q)", r.code, c.code, r.stderr, c.says)
			}
		})
	}
}

func TestRefsCheck(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	if _, err := ts.Svc.CreateSecret(ctx, "default", secrets.CreateSecretInput{Name: "db", Values: map[string]string{"password": canary}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := writeFile(t, dir, "good.json", `{"dsn":"postgres://app:${secret:db.password}@db/app"}`)
	bad := writeFile(t, dir, "bad.json", `{"a":"${secret:db.password}","b":"${secret:db.nope}","c":["${secret:ghost.k}"]}`)
	none := writeFile(t, dir, "none.json", `{"a":"plain"}`)
	env := ts.env()
	before := ts.requests.Load()

	r := runCLI(t, env, "", "refs", "check", good)
	if r.code != 0 || !strings.Contains(r.stdout, "/dsn") || !strings.Contains(r.stdout, "${secret:db.password}") || !strings.Contains(r.stdout, " ok") {
		t.Fatalf("good: %+v", r)
	}
	noCanary(t, r)
	r = runCLI(t, env, "", "refs", "check", bad)
	if r.code != 1 || !strings.Contains(r.stdout, `key "nope" not found in secret "db" (version 1)`) || !strings.Contains(r.stdout, `secret "ghost" not found`) ||
		!strings.Contains(r.stderr, "2 of 3 references would not resolve") {
		t.Fatalf("bad: %+v", r)
	}
	// --file, as resolve takes it, is the same as FILE; both at once is a usage error.
	if r := runCLI(t, env, "", "refs", "check", "--file", bad); r.code != 1 || !strings.Contains(r.stderr, "2 of 3 references would not resolve") {
		t.Fatalf("--file: %+v", r)
	}
	if r := runCLI(t, env, "", "refs", "check", "--file", bad, good); r.code != 2 || !strings.Contains(r.stderr, "not both") {
		t.Fatalf("FILE and --file: %+v", r)
	}
	if r := runCLI(t, env, "", "refs", "check", "-"); r.code != 2 || !strings.Contains(r.stderr, "<stdin>") {
		t.Fatalf("empty stdin is a usage error: %+v", r)
	}
	r = runCLIFrom(t, env, strings.NewReader(`["${secret:db.password}"]`), "refs", "check", "-", "-o", "json")
	var rep struct {
		OK         bool
		References []struct{ SHA256 *string }
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil || !rep.OK || len(rep.References) != 1 || rep.References[0].SHA256 == nil {
		t.Fatalf("stdin -o json: %+v", r)
	}
	if r := runCLI(t, env, "", "refs", "check", none); r.code != 0 || !strings.Contains(r.stdout, "holds no secret references") {
		t.Fatalf("none: %+v", r)
	}
	if r := runCLI(t, env, "", "refs", "check", writeFile(t, dir, "broken.json", `{"a":`)); r.code != 2 || ts.requests.Load() != before+5 {
		t.Fatalf("a broken file is a usage error, sent nowhere: %+v (%d requests)", r, ts.requests.Load()-before)
	}
	if r := runCLI(t, env, "", "refs", "check", writeFile(t, dir, "dup.json", `{"a":"${secret:db.password}","a":1}`)); r.code != 1 || !strings.Contains(r.stderr, `member "a" appears more than once`) {
		t.Fatalf("a duplicate member: %+v", r)
	}

	// --strict fails on a warning: a name kept only as an alias.
	newName := "postgres"
	if _, err := ts.Svc.UpdateSecret(ctx, "default", "db", secrets.UpdateSecretInput{Name: &newName}); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, env, "", "refs", "check", good); r.code != 0 || !strings.Contains(r.stdout, "warning:") {
		t.Fatalf("an alias without --strict: %+v", r)
	}
	if r := runCLI(t, env, "", "refs", "check", good, "--strict"); r.code != 1 || !strings.Contains(r.stderr, "carry a warning") {
		t.Fatalf("an alias with --strict: %+v", r)
	}
	// Only secrets:read is needed.
	_, reader, err := ts.Svc.CreateAPIKey(ctx, "default", "ci", []string{secrets.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	env["MOBIUS_API_KEY"] = reader
	if r := runCLI(t, env, "", "refs", "check", writeFile(t, dir, "new.json", `["${secret:postgres.password}"]`)); r.code != 0 {
		t.Fatalf("with a read-only key: %+v", r)
	}
}
