package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// backupCanary is a plaintext value of the fixtures: it must reach no
// error, no output and no file unencrypted.
const backupCanary = "backup-canary-5e1f0a"

// fixture is a data folder whose store holds every kind of record: two
// projects, rotated, disabled, destroyed, staged and renamed secrets,
// API keys (one revoked, one used), a resolve grant and audit records.
type fixture struct {
	dir     string
	key     string // an API key of acme with every scope
	values  map[string]string
	revoked string
}

var fixtureProjects = []string{"acme", "beta", DefaultProject}

func newFixture(t *testing.T, a *App) *fixture {
	t.Helper()
	ctx := context.Background()
	svc := a.Service
	f := &fixture{dir: a.cfg.DataDir}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	vals := func(s string) map[string]string {
		return map[string]string{"password": backupCanary + "-" + s, "user": "u-" + s}
	}
	_, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "db", Description: "the database", Values: vals("db1")})
	must(err)
	for _, v := range []string{"db2", "db3"} {
		_, err = svc.UpdateSecret(ctx, "acme", "db", secrets.UpdateSecretInput{Values: vals(v)})
		must(err)
	}
	_, _, err = svc.ChangeVersionState(ctx, "acme", "db", "1", "destroy", nil)
	must(err)
	_, err = svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "api", Values: vals("api1")})
	must(err)
	_, err = svc.UpdateSecret(ctx, "acme", "api", secrets.UpdateSecretInput{Values: vals("api2"), Stage: secrets.Pending})
	must(err)
	_, err = svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "old-name", Values: vals("ren1")})
	must(err)
	newName := "new-name"
	_, err = svc.UpdateSecret(ctx, "acme", "old-name", secrets.UpdateSecretInput{Name: &newName})
	must(err)
	_, err = svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "off", Values: vals("off1")})
	must(err)
	_, _, err = svc.ChangeVersionState(ctx, "acme", "off", "1", "disable", nil)
	must(err)
	_, err = svc.CreateSecret(ctx, "beta", secrets.CreateSecretInput{Name: "x", Values: vals("x1")})
	must(err)

	ops, key, err := svc.CreateAPIKey(ctx, "acme", "ops", secrets.AllScopes)
	must(err)
	f.key = key
	_, _, err = svc.CreateAPIKey(ctx, "acme", "ci", []string{secrets.ScopeRead})
	must(err)
	gone, _, err := svc.CreateAPIKey(ctx, "beta", "gone", nil)
	must(err)
	must(svc.RevokeAPIKey(ctx, "beta", gone.ID))
	f.revoked = gone.ID
	_, err = svc.Authenticate(ctx, key) // a last use
	must(err)
	g, _, err := svc.MintGrant(ctx, "acme", ops, secrets.MintGrantInput{Secrets: []string{"db", "api"}, Run: json.RawMessage(`{"run":"r1"}`), TTL: time.Hour})
	must(err)
	db, err := svc.GetSecret(ctx, "acme", "db")
	must(err)
	must(svc.RecordResolutions(ctx, []*secrets.Resolution{
		{Project: "acme", SecretID: db.ID, SecretName: "db", Version: 3, Keys: []string{"password"}, GrantID: g.ID, KeyID: ops.ID, Run: g.Run},
		{Project: "acme", SecretID: db.ID, SecretName: "db", Version: 3, Keys: []string{"user"}, GrantID: g.ID, KeyID: ops.ID, Run: g.Run},
	}))
	f.values = revealAll(t, svc)
	if n := strings.Count(listing(t, svc), "\n"); n < 20 {
		t.Fatalf("the fixture lists only %d records", n)
	}
	return f
}

// listing is everything the domain lists of the fixture's projects,
// values aside, as JSON lines.
func listing(t *testing.T, svc *secrets.Service) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	line := func(kind string, v any) {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s\n", kind, j)
	}
	for _, p := range fixtureProjects {
		secs, more, err := svc.ListSecrets(ctx, p, secrets.ListQuery{Limit: secrets.MaxPageSize})
		if err != nil || more {
			t.Fatalf("list %s: %v (more %v)", p, err, more)
		}
		for _, s := range secs {
			line("secret", s)
			line("aliases", s.Aliases)
			vs, more, err := svc.ListVersionsOf(ctx, s, 0, secrets.MaxPageSize)
			if err != nil || more {
				t.Fatalf("versions of %s: %v", s.Name, err)
			}
			for _, v := range vs {
				line("version", v)
			}
			rs, more, err := svc.ListResolutionsOf(ctx, p, s.ID, "", secrets.MaxPageSize)
			if err != nil || more {
				t.Fatalf("audit of %s: %v", s.Name, err)
			}
			for _, r := range rs {
				line("resolution", r)
			}
		}
		keys, err := svc.ListAPIKeys(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			line("api-key", k)
		}
		gs, more, err := svc.ListGrants(ctx, p, "", 100)
		if err != nil || more {
			t.Fatalf("grants of %s: %v", p, err)
		}
		for _, g := range gs {
			line("grant", g)
		}
	}
	return b.String()
}

// revealAll decrypts the current and pending values of every secret of
// the fixture's projects, by project/name@selector and key.
func revealAll(t *testing.T, svc *secrets.Service) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, p := range fixtureProjects {
		secs, _, err := svc.ListSecrets(ctx, p, secrets.ListQuery{Limit: secrets.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		var wants []secrets.Want
		for _, s := range secs {
			wants = append(wants, secrets.Want{Name: s.Name}, secrets.Want{Name: s.Name, Sel: secrets.Selector{Kind: secrets.SelectPending}})
		}
		got, err := svc.RevealAll(ctx, p, wants, nil)
		if err != nil {
			t.Fatalf("reveal in %s: %v", p, secrets.ErrorMessage(err))
		}
		for w, r := range got {
			if r.Version == nil {
				continue
			}
			for k, v := range r.Values {
				out[fmt.Sprintf("%s/%s@%d/%d.%s", p, w.Name, w.Sel.Kind, r.Version.Number, k)] = v
			}
		}
	}
	return out
}

// sameListing fails the test where two listings differ, naming the lines.
func sameListing(t *testing.T, want, got string) {
	t.Helper()
	if want == got {
		return
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			t.Fatalf("the listings differ at line %d:\nbefore: %s\nafter:  %s", i+1, a, b)
		}
	}
}

// sameValues fails the test unless both maps hold the same values, without
// printing any.
func sameValues(t *testing.T, want, got map[string]string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("the fixture reveals no value")
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: the value differs after the restore", k)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
}

func openApp(t *testing.T, dir string) *App {
	t.Helper()
	a, err := New(context.Background(), Config{Store: StoreBolt, DataDir: dir}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// serveAdmin starts a's operator socket for the test.
func serveAdmin(t *testing.T, a *App) {
	t.Helper()
	stop, err := a.ServeAdmin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
}

// dirState is every regular file under dir (recursively) with its mode
// and SHA-256.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, _ := e.Info()
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = info.Mode().Perm().String() + " " + hex.EncodeToString(sum[:8])
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameState(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: %s changed (%q → %q)", what, k, v, got[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Fatalf("%s: %s appeared", what, k)
		}
	}
}

func fileHolds(t *testing.T, path, s string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(s))
}

// TestBackupRestoreRoundTrip: a backup of a running server, restored into
// a new folder, holds every secret, version (state, digest, ciphertext),
// API key, grant and audit record as they were, every value decrypts the
// same, and the restored store serves the API with the old keys.
func TestBackupRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		online bool
	}{
		{"from a running server", true},
		{"from a stopped store", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := openApp(t, t.TempDir())
			f := newFixture(t, a)
			want := listing(t, a.Service)
			out := t.TempDir()
			opts := BackupOptions{DataDir: f.dir, To: filepath.Join(out, "mobius.bak"), WithKey: filepath.Join(out, "keys", "mobius.key")}
			if c.online {
				serveAdmin(t, a)
				defer a.Close()
			} else if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			res, err := Backup(ctx, opts)
			if err != nil {
				t.Fatalf("backup: %v", err)
			}
			if res.Online != c.online || !res.KeyChecked || res.Items < 10 || res.Bytes <= 0 || res.KeyID == "" {
				t.Fatalf("backup result %+v", res)
			}
			for _, p := range []string{opts.To, opts.WithKey} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Fatalf("%s has mode %v, want 0600", p, fi.Mode().Perm())
				}
			}
			if fileHolds(t, opts.To, backupCanary) {
				t.Fatal("the data copy holds a plaintext value")
			}
			if key, _ := os.ReadFile(filepath.Join(f.dir, keyFileName)); fileHolds(t, opts.To, string(key)) {
				t.Fatal("the data copy holds the key")
			}
			if leftovers, _ := filepath.Glob(filepath.Join(out, ".*")); len(leftovers) > 0 {
				t.Fatalf("temporary files left: %v", leftovers)
			}

			dst := filepath.Join(t.TempDir(), "restored")
			rr, err := Restore(ctx, RestoreOptions{DataDir: dst, From: opts.To, KeyFile: opts.WithKey})
			if err != nil {
				t.Fatalf("restore: %v", err)
			}
			if rr.Items != res.Items || !rr.KeyInstalled || rr.Replaced || rr.KeyID != res.KeyID {
				t.Fatalf("restore result %+v, backup %+v", rr, res)
			}
			b := openApp(t, dst)
			defer b.Close()
			sameListing(t, want, listing(t, b.Service))
			sameValues(t, f.values, revealAll(t, b.Service))
			// It serves, with the keys it had.
			r := httptest.NewRequest("GET", "/v1/projects/acme/secrets/db/versions/current", nil)
			r.Header.Set("Authorization", "Bearer "+f.key)
			w := httptest.NewRecorder()
			b.Handler.ServeHTTP(w, r)
			if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"version":3`) {
				t.Fatalf("the restored store answers %d %s", w.Code, w.Body)
			}
			if rep, err := Check(ctx, dst); err == nil {
				t.Fatalf("check while the restored store is open: %+v", rep)
			}
		})
	}
}

// A backup taken while writes go on is one consistent moment: every
// secret in it is whole, and it restores and checks.
func TestBackupUnderWrites(t *testing.T) {
	ctx := context.Background()
	a := openApp(t, t.TempDir())
	defer a.Close()
	serveAdmin(t, a)
	for i := range 8 {
		if _, err := a.Service.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: fmt.Sprintf("s%d", i), Values: map[string]string{"k": "v0"}}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 1; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := a.Service.UpdateSecret(ctx, "acme", fmt.Sprintf("s%d", i), secrets.UpdateSecretInput{Values: map[string]string{"k": fmt.Sprintf("v%d", n)}}); err != nil {
					t.Error(err)
					return
				}
				writes.Add(1)
			}
		}()
	}
	for writes.Load() < 16 && !t.Failed() {
		time.Sleep(time.Millisecond)
	}
	out := filepath.Join(t.TempDir(), "b.db")
	var res BackupResult
	var err error
	// Backups until writes committed while one was being taken.
	for range 50 {
		began := writes.Load()
		if res, err = Backup(ctx, BackupOptions{DataDir: a.cfg.DataDir, To: out, WithKey: out + ".key", Force: true}); err != nil || writes.Load() > began {
			break
		}
	}
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup under writes: %v", err)
	}
	if !res.Online {
		t.Fatal("not taken from the running server")
	}
	dst := t.TempDir()
	if _, err := Restore(ctx, RestoreOptions{DataDir: dst, From: out, KeyFile: out + ".key"}); err != nil {
		t.Fatal(err)
	}
	b := openApp(t, dst)
	defer b.Close()
	secs, _, err := b.Service.ListSecrets(ctx, "acme", secrets.ListQuery{Limit: 100})
	if err != nil || len(secs) != 8 {
		t.Fatalf("%d secrets, %v", len(secs), err)
	}
	for _, s := range secs {
		vs, _, err := b.Service.ListVersionsOf(ctx, s, 0, secrets.MaxPageSize)
		if err != nil {
			t.Fatal(err)
		}
		enabled := 0
		for _, v := range vs {
			if v.State == secrets.Enabled {
				enabled++
			}
		}
		if len(vs) != s.LatestVersion || enabled != 1 || s.CurrentVersion != s.LatestVersion {
			t.Fatalf("%s is not whole in the copy: %d versions, latest %d, current %d, %d enabled", s.Name, len(vs), s.LatestVersion, s.CurrentVersion, enabled)
		}
	}
}

// TestBackupRefusals: each refusal is one line, exits before anything is
// written, and leaves no file, not even a temporary one.
func TestBackupRefusals(t *testing.T) {
	ctx := context.Background()
	stopped := t.TempDir()
	a := openApp(t, stopped)
	if _, err := a.Service.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "db", Values: map[string]string{"k": backupCanary}}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	copyDir := func(t *testing.T, from string) string {
		dir := t.TempDir()
		for _, n := range []string{dataFileName, keyFileName} {
			b, err := os.ReadFile(filepath.Join(from, n))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, out string) BackupOptions
		says  []string
	}{
		{"destination exists", func(t *testing.T, out string) BackupOptions {
			os.WriteFile(filepath.Join(out, "b.db"), []byte("an earlier backup"), 0o600)
			return BackupOptions{DataDir: stopped, To: filepath.Join(out, "b.db")}
		}, []string{"b.db exists", "--force"}},
		{"key destination exists", func(t *testing.T, out string) BackupOptions {
			os.WriteFile(filepath.Join(out, "b.key"), []byte("an earlier key"), 0o600)
			return BackupOptions{DataDir: stopped, To: filepath.Join(out, "b.db"), WithKey: filepath.Join(out, "b.key")}
		}, []string{"b.key exists"}},
		{"onto the data file", func(t *testing.T, out string) BackupOptions {
			return BackupOptions{DataDir: stopped, To: filepath.Join(stopped, dataFileName), Force: true}
		}, []string{"a file of the store itself"}},
		{"key onto the data copy", func(t *testing.T, out string) BackupOptions {
			return BackupOptions{DataDir: stopped, To: filepath.Join(out, "b.db"), WithKey: filepath.Join(out, "b.db")}
		}, []string{"another file"}},
		{"no store", func(t *testing.T, out string) BackupOptions {
			return BackupOptions{DataDir: filepath.Join(out, "nothing"), To: filepath.Join(out, "b.db")}
		}, []string{"does not exist"}},
		{"a damaged data file", func(t *testing.T, out string) BackupOptions {
			dir := copyDir(t, stopped)
			os.Truncate(filepath.Join(dir, dataFileName), 5000)
			return BackupOptions{DataDir: dir, To: filepath.Join(out, "b.db")}
		}, []string{dataFileName, "truncated"}},
		{"a key file that is not the store's", func(t *testing.T, out string) BackupOptions {
			dir := copyDir(t, stopped)
			os.WriteFile(filepath.Join(dir, keyFileName), bytes.Repeat([]byte{9}, 32), 0o600)
			return BackupOptions{DataDir: dir, To: filepath.Join(out, "b.db")}
		}, []string{"does not open"}},
		{"with-key and no key file", func(t *testing.T, out string) BackupOptions {
			dir := copyDir(t, stopped)
			os.Remove(filepath.Join(dir, keyFileName))
			return BackupOptions{DataDir: dir, To: filepath.Join(out, "b.db"), WithKey: filepath.Join(out, "b.key")}
		}, []string{keyFileName, "is missing"}},
		{"held by a process without a socket", func(t *testing.T, out string) BackupOptions {
			dir := copyDir(t, stopped)
			held := openApp(t, dir) // no ServeAdmin
			t.Cleanup(func() { held.Close() })
			return BackupOptions{DataDir: dir, To: filepath.Join(out, "b.db")}
		}, []string{"answers no operator socket", "stop it"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := t.TempDir()
			opts := c.setup(t, out)
			before, data := dirState(t, out), dirState(t, opts.DataDir)
			_, err := Backup(ctx, opts)
			refusedSaying(t, err, c.says)
			sameState(t, "the destination folder", before, dirState(t, out))
			sameState(t, "the data folder", data, dirState(t, opts.DataDir))
		})
	}
}

// A socket a dead server left behind is neither taken for a server (the
// backup reads the stopped store) nor in the way of the next server.
func TestStaleAdminSocket(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := openApp(t, dir)
	if _, err := a.Service.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "db", Values: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	ln, err := net.Listen("unix", filepath.Join(dir, adminSocketName))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(filepath.Join(dir, adminSocketName)); err != nil {
		t.Fatalf("no stale socket to test with: %v", err)
	}
	res, err := Backup(ctx, BackupOptions{DataDir: dir, To: filepath.Join(t.TempDir(), "b.db")})
	if err != nil || res.Online {
		t.Fatalf("backup beside a stale socket: %+v %v", res, err)
	}
	b := openApp(t, dir)
	defer b.Close()
	serveAdmin(t, b)
	res, err = Backup(ctx, BackupOptions{DataDir: dir, To: filepath.Join(t.TempDir(), "b.db")})
	if err != nil || !res.Online {
		t.Fatalf("backup of the next server: %+v %v", res, err)
	}
}

func TestAdminSocket(t *testing.T) {
	t.Run("mode 0600, removed on stop", func(t *testing.T) {
		a := openApp(t, t.TempDir())
		defer a.Close()
		stop, err := a.ServeAdmin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(a.cfg.DataDir, adminSocketName)
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("socket %v %v", fi.Mode(), err)
		}
		stop()
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the socket is still there after stop: %v", err)
		}
	})
	t.Run("closed with the App", func(t *testing.T) {
		a := openApp(t, t.TempDir())
		serveAdmin(t, a)
		if !serverRunning(context.Background(), a.cfg.DataDir) {
			t.Fatal("the socket does not answer")
		}
		a.Close()
		if serverRunning(context.Background(), a.cfg.DataDir) {
			t.Fatal("the socket answers after Close")
		}
		if _, err := os.Lstat(filepath.Join(a.cfg.DataDir, adminSocketName)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the socket is still there after Close: %v", err)
		}
	})
	t.Run("a path too long for a socket", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
		a := openApp(t, dir)
		defer a.Close()
		if _, err := a.ServeAdmin(context.Background()); err == nil || !strings.Contains(err.Error(), "shorter data folder path") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("a file in the socket's place", func(t *testing.T) {
		a := openApp(t, t.TempDir())
		defer a.Close()
		os.WriteFile(filepath.Join(a.cfg.DataDir, adminSocketName), []byte("mine"), 0o600)
		if _, err := a.ServeAdmin(context.Background()); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("err %v", err)
		}
	})
}

// TestRestoreRefusals: a restore that is refused changes nothing in the
// data folder, and says why on one line.
func TestRestoreRefusals(t *testing.T) {
	ctx := context.Background()
	src := openApp(t, t.TempDir())
	if _, err := src.Service.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "db", Values: map[string]string{"k": backupCanary}}); err != nil {
		t.Fatal(err)
	}
	src.Close()
	bak := t.TempDir()
	backup := filepath.Join(bak, "b.db")
	key := filepath.Join(bak, "b.key")
	if _, err := Backup(ctx, BackupOptions{DataDir: src.cfg.DataDir, To: backup, WithKey: key}); err != nil {
		t.Fatal(err)
	}
	spoiled := func(t *testing.T, f func([]byte) []byte) string {
		b, _ := os.ReadFile(backup)
		p := filepath.Join(t.TempDir(), "spoiled.db")
		os.WriteFile(p, f(b), 0o600)
		return p
	}
	// A folder that holds another store.
	occupied := func(t *testing.T) string {
		dir := t.TempDir()
		a := openApp(t, dir)
		if _, err := a.Service.CreateSecret(ctx, "other", secrets.CreateSecretInput{Name: "keep", Values: map[string]string{"k": "v"}}); err != nil {
			t.Fatal(err)
		}
		a.Close()
		return dir
	}
	for _, c := range []struct {
		name  string
		setup func(t *testing.T) RestoreOptions
		says  []string
	}{
		{"a folder that holds a store", func(t *testing.T) RestoreOptions {
			return RestoreOptions{DataDir: occupied(t), From: backup, KeyFile: key}
		}, []string{"holds a store of", "--force"}},
		{"a folder with another key file", func(t *testing.T) RestoreOptions {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, keyFileName), bytes.Repeat([]byte{3}, 32), 0o600)
			return RestoreOptions{DataDir: dir, From: backup, KeyFile: key}
		}, []string{"a key file that is not the --key given", "--force"}},
		{"a running server, even with --force", func(t *testing.T) RestoreOptions {
			dir := occupied(t)
			a := openApp(t, dir)
			t.Cleanup(func() { a.Close() })
			serveAdmin(t, a)
			return RestoreOptions{DataDir: dir, From: backup, KeyFile: key, Force: true}
		}, []string{"in use by a running mobius server"}},
		{"a process holding the store, even with --force", func(t *testing.T) RestoreOptions {
			dir := occupied(t)
			a := openApp(t, dir)
			t.Cleanup(func() { a.Close() })
			return RestoreOptions{DataDir: dir, From: backup, KeyFile: key, Force: true}
		}, []string{"in use by another process"}},
		{"the wrong key", func(t *testing.T) RestoreOptions {
			other := filepath.Join(t.TempDir(), "other.key")
			os.WriteFile(other, bytes.Repeat([]byte{4}, 32), 0o600)
			return RestoreOptions{DataDir: occupied(t), From: backup, KeyFile: other, Force: true}
		}, []string{"not a usable backup", "does not open"}},
		{"a key of the wrong size", func(t *testing.T) RestoreOptions {
			other := filepath.Join(t.TempDir(), "other.key")
			os.WriteFile(other, []byte("short"), 0o600)
			return RestoreOptions{DataDir: t.TempDir(), From: backup, KeyFile: other}
		}, []string{"32 bytes"}},
		{"no key at all", func(t *testing.T) RestoreOptions {
			return RestoreOptions{DataDir: t.TempDir(), From: backup}
		}, []string{"no key", "--key"}},
		{"a truncated backup", func(t *testing.T) RestoreOptions {
			return RestoreOptions{DataDir: occupied(t), From: spoiled(t, func(b []byte) []byte { return b[:len(b)/2] }), KeyFile: key, Force: true}
		}, []string{"not a usable backup", "truncated"}},
		{"a damaged backup", func(t *testing.T) RestoreOptions {
			return RestoreOptions{DataDir: occupied(t), From: spoiled(t, func(b []byte) []byte {
				for i := 16; i < 64; i++ {
					b[i] ^= 0x5a
					b[4096+i] ^= 0x5a
				}
				return b
			}), KeyFile: key, Force: true}
		}, []string{"not a usable backup"}},
		{"a foreign file", func(t *testing.T) RestoreOptions {
			return RestoreOptions{DataDir: occupied(t), From: spoiled(t, func([]byte) []byte { return []byte("SQLite format 3\x00" + strings.Repeat("x", 9000)) }), KeyFile: key, Force: true}
		}, []string{"not a usable backup", "not a Mobius data file"}},
		{"an empty file", func(t *testing.T) RestoreOptions {
			return RestoreOptions{DataDir: t.TempDir(), From: spoiled(t, func([]byte) []byte { return nil }), KeyFile: key}
		}, []string{"not a usable backup", "empty"}},
		{"no backup file", func(t *testing.T) RestoreOptions {
			return RestoreOptions{DataDir: t.TempDir(), From: filepath.Join(bak, "nope.db"), KeyFile: key}
		}, []string{"nope.db does not exist"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := c.setup(t)
			before := dirState(t, opts.DataDir)
			_, err := Restore(ctx, opts)
			refusedSaying(t, err, c.says)
			sameState(t, "the data folder", before, dirState(t, opts.DataDir))
		})
	}
	t.Run("a folder it had to make is removed", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "new")
		if _, err := Restore(ctx, RestoreOptions{DataDir: dir, From: spoiled(t, func(b []byte) []byte { return b[:100] }), KeyFile: key}); err == nil {
			t.Fatal("not refused")
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the folder was left: %v", err)
		}
	})
}

// --force replaces a store that holds data (and a damaged one) with the
// backup, and the folder's key with the backup's.
func TestRestoreForce(t *testing.T) {
	ctx := context.Background()
	src := openApp(t, t.TempDir())
	f := newFixture(t, src)
	want := listing(t, src.Service)
	src.Close()
	bak := t.TempDir()
	opts := BackupOptions{DataDir: f.dir, To: filepath.Join(bak, "b.db"), WithKey: filepath.Join(bak, "b.key")}
	if _, err := Backup(ctx, opts); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"over another store and key", func(t *testing.T, dir string) {
			a := openApp(t, dir)
			a.Service.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "other", Values: map[string]string{"k": "v"}})
			a.Close()
		}},
		{"over a damaged data file", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, dataFileName), []byte("garbage"), 0o600)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.setup(t, dir)
			res, err := Restore(ctx, RestoreOptions{DataDir: dir, From: opts.To, KeyFile: opts.WithKey, Force: true})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Replaced {
				t.Fatalf("result %+v", res)
			}
			b := openApp(t, dir)
			defer b.Close()
			sameListing(t, want, listing(t, b.Service))
			sameValues(t, f.values, revealAll(t, b.Service))
			if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*.partial-*")); len(leftovers) > 0 {
				t.Fatalf("temporary files left: %v", leftovers)
			}
		})
	}
	t.Run("with the folder's own key", func(t *testing.T) {
		// A rollback: the folder's key is the backup's, so --key is not needed.
		dir := t.TempDir()
		key, _ := os.ReadFile(opts.WithKey)
		os.WriteFile(filepath.Join(dir, keyFileName), key, 0o600)
		res, err := Restore(ctx, RestoreOptions{DataDir: dir, From: opts.To})
		if err != nil {
			t.Fatal(err)
		}
		if res.KeyInstalled {
			t.Fatal("the key was reinstalled")
		}
		b := openApp(t, dir)
		defer b.Close()
		sameListing(t, want, listing(t, b.Service))
	})
}

// refusedSaying checks that err refuses the operation in one clean line
// (no line break, no value) that says each of says.
func refusedSaying(t *testing.T, err error, says []string) {
	t.Helper()
	if err == nil {
		t.Fatal("not refused")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || strings.Contains(msg, backupCanary) {
		t.Fatalf("not one clean line: %q", msg)
	}
	for _, s := range says {
		if !strings.Contains(msg, s) {
			t.Fatalf("%q does not say %q", msg, s)
		}
	}
}
