package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/app"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// adminStore makes a stopped data folder with a secret holding canary.
func adminStore(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()
	a, err := app.New(ctx, app.Config{Store: app.StoreBolt, DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Service.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "db", Values: map[string]string{"password": canary}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestAdminBackupRestoreCheckCompact runs the four commands on a stopped
// store as an operator would, and their refusals.
func TestAdminBackupRestoreCheckCompact(t *testing.T) {
	data := adminStore(t)
	out := t.TempDir()
	bak, key := filepath.Join(out, "mobius.bak"), filepath.Join(out, "mobius.key")

	r := runCLI(t, nil, "", "admin", "backup", "--to", bak, "--with-key", key, "--data", data)
	noCanary(t, r)
	if r.code != 0 || !strings.Contains(r.stdout, "Backup:") || !strings.Contains(r.stdout, "the stopped store") ||
		!strings.Contains(r.stdout, "the key check (local key ") || !strings.Contains(r.stderr, "keep it apart from "+bak) {
		t.Fatalf("backup: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, nil, "", "admin", "backup", "--to", bak, "--data", data)
	if r.code != 1 || r.stderr != "error: "+bak+" exists; nothing was written; --force replaces it\n" {
		t.Fatalf("backup over a file: exit %d %q", r.code, r.stderr)
	}
	r = runCLI(t, nil, "", "admin", "backup", "--to", bak, "--force", "--data", data, "-o", "json")
	var res map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil || res["online"] != false || res["key_checked"] != true || res["to"] != bak {
		t.Fatalf("backup -o json: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "opens only with "+filepath.Join(data, "master.key")) || !strings.Contains(r.stderr, "--with-key") {
		t.Fatalf("backup without --with-key says nothing of the key: %q", r.stderr)
	}

	r = runCLI(t, nil, "", "admin", "check", "--data", data)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: "+filepath.Join(data, "mobius.db")) {
		t.Fatalf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	restored := filepath.Join(t.TempDir(), "restored")
	r = runCLI(t, nil, "", "admin", "restore", "--from", bak, "--key", key, "--data", restored)
	noCanary(t, r)
	if r.code != 0 || !strings.Contains(r.stdout, "installed from "+key) || !strings.Contains(r.stderr, "mobius serve --data "+restored) {
		t.Fatalf("restore: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, nil, "", "admin", "restore", "--from", bak, "--key", key, "--data", restored)
	if r.code != 1 || !strings.Contains(r.stderr, "holds a store of") || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("restore over a store: exit %d %q", r.code, r.stderr)
	}
	r = runCLI(t, nil, "", "admin", "check", "--data", restored, "-o", "json")
	var rep struct {
		Items    int64    `json:"items"`
		Problems []string `json:"problems"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil || rep.Items < 1 || rep.Problems == nil || len(rep.Problems) != 0 {
		t.Fatalf("check of the restored store: exit %d %q", r.code, r.stdout)
	}

	// A spoiled key file: one line per problem, exit 1.
	restoredKey := filepath.Join(restored, "master.key")
	if err := os.WriteFile(restoredKey, bytes.Repeat([]byte{1}, 32), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(restoredKey, 0o644)
	r = runCLI(t, nil, "", "admin", "check", "--data", restored)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 1 || len(lines) != 2 || !strings.Contains(lines[0], "chmod 600") || !strings.Contains(lines[1], "does not open") ||
		r.stderr != "error: 2 problem(s) in "+restored+"\n" {
		t.Fatalf("check of a spoiled key: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = runCLI(t, nil, "", "admin", "compact", "--data", data)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Compacted "+filepath.Join(data, "mobius.db")+": ") || !strings.Contains(r.stdout, "bytes before") {
		t.Fatalf("compact: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		says string
	}{
		{"backup without --to", nil, []string{"backup", "--data", data}, "--to is required"},
		{"restore without --from", nil, []string{"restore", "--data", data}, "--from is required"},
		{"an empty --data", nil, []string{"check", "--data", ""}, "--data must not be empty"},
		{"backup on DynamoDB", map[string]string{"MOBIUS_STORE": "dynamodb", "MOBIUS_TABLE": "t", "MOBIUS_KMS_KEY_ID": "k"},
			[]string{"backup", "--to", bak}, "works on the embedded store"},
		{"check with an argument", nil, []string{"check", "extra"}, "takes no arguments"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, c.env, "", append([]string{"admin"}, c.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, c.says) || strings.Count(r.stderr, "\n") != 1 {
				t.Fatalf("exit %d %q", r.code, r.stderr)
			}
		})
	}
	t.Run("backup of a folder that lost its key", func(t *testing.T) {
		dir := t.TempDir()
		b, _ := os.ReadFile(filepath.Join(data, "mobius.db"))
		os.WriteFile(filepath.Join(dir, "mobius.db"), b, 0o600)
		r := runCLI(t, nil, "", "admin", "backup", "--to", filepath.Join(t.TempDir(), "b.db"), "--data", dir)
		if r.code != 0 || !strings.HasPrefix(r.stderr, "Warning: "+filepath.Join(dir, "master.key")+" is missing") || strings.Contains(r.stdout, "key check") {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("check with no store", func(t *testing.T) {
		r := runCLI(t, nil, "", "admin", "check", "--data", t.TempDir())
		if r.code != 1 || !strings.Contains(r.stderr, "no store in") {
			t.Fatalf("exit %d %q", r.code, r.stderr)
		}
	})
}

// TestAdminBackupOfARunningServer: the real binary backs up a running
// `mobius serve` through its socket; check and compact refuse while it
// runs; the backup restores into another folder, which serves the same
// secret to the same key.
func TestAdminBackupOfARunningServer(t *testing.T) {
	u := newUserEnv(t)
	data := filepath.Join(u.home, "d")
	srv := startServe(t, u, data)
	env := srv.Exports
	mustMobius(t, u, env, "secrets", "create", "--name", "db", "--values", `{"password":"`+canary+`"}`)
	mustMobius(t, u, env, "secrets", "update", "db", "--values", `{"password":"`+canary+`-2"}`)
	digest := secrets.Digest(map[string]string{"password": canary + "-2"})

	bak, key := filepath.Join(u.work, "b.db"), filepath.Join(u.home, "vault", "b.key")
	out := mustMobius(t, u, nil, "admin", "backup", "--to", bak, "--with-key", key, "--data", data)
	if !strings.Contains(out, "the running server") {
		t.Fatalf("backup of a running server:\n%s", out)
	}
	for _, cmd := range []string{"check", "compact"} {
		r := mobius(t, u, nil, "admin", cmd, "--data", data)
		if r.code != 1 || !strings.Contains(r.stderr, "in use by a running mobius server") || !strings.Contains(r.stderr, "stop the server") {
			t.Fatalf("%s while it runs: exit %d %q", cmd, r.code, r.stderr)
		}
	}
	if r := mobius(t, u, nil, "admin", "restore", "--from", bak, "--key", key, "--force", "--data", data); r.code != 1 || !strings.Contains(r.stderr, "in use") {
		t.Fatalf("restore --force over a running server: exit %d %q", r.code, r.stderr)
	}
	if err := srv.Stop(t, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(data, "admin.sock")); err == nil {
		t.Fatal("the socket outlived the server")
	}

	restored := filepath.Join(u.home, "restored")
	mustMobius(t, u, nil, "admin", "restore", "--from", bak, "--key", key, "--data", restored)
	again := startServe(t, u, restored)
	env2 := map[string]string{"MOBIUS_ENDPOINT": again.Endpoint, "MOBIUS_API_KEY": env["MOBIUS_API_KEY"], "MOBIUS_PROJECT": "default"}
	if out := mustMobius(t, u, env2, "secrets", "get-version", "db", "current"); !strings.Contains(out, digest) {
		t.Fatalf("the restored store serves:\n%s", out)
	}
	if len(again.Exports) != 0 {
		t.Fatalf("the restored store made a new first key: %v", again.Exports)
	}
	for _, log := range []string{srv.Stderr.String(), again.Stderr.String()} {
		if strings.Contains(log, canary) {
			t.Fatal("a server log holds the value")
		}
	}
}
