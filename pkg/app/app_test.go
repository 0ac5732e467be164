package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/app/awsapp"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFromEnv(t *testing.T) {
	for _, c := range []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{"defaults", map[string]string{"HOME": "/home/u"},
			Config{Store: "bolt", DataDir: "/home/u/.local/share/mobius", Addr: "127.0.0.1:8080"}, ""},
		{"XDG", map[string]string{"HOME": "/home/u", "XDG_DATA_HOME": "/xdg"},
			Config{Store: "bolt", DataDir: "/xdg/mobius", Addr: "127.0.0.1:8080"}, ""},
		{"explicit", map[string]string{"MOBIUS_DATA": "/d", "MOBIUS_ADDR": ":9", "MOBIUS_LOG_LEVEL": "debug"},
			Config{Store: "bolt", DataDir: "/d", Addr: ":9", LogLevel: slog.LevelDebug}, ""},
		{"dynamodb", map[string]string{"MOBIUS_STORE": "dynamodb", "MOBIUS_TABLE": "t", "MOBIUS_KMS_KEY_ID": "alias/k"},
			Config{Store: "dynamodb", Addr: "127.0.0.1:8080", AWS: awsapp.Config{Table: "t", KMSKeyID: "alias/k", KeyCheck: secrets.KeyCheckInit}}, ""},
		{"dynamodb without table", map[string]string{"MOBIUS_STORE": "dynamodb", "MOBIUS_KMS_KEY_ID": "k"}, Config{}, "MOBIUS_TABLE"},
		{"dynamodb without key", map[string]string{"MOBIUS_STORE": "dynamodb", "MOBIUS_TABLE": "t"}, Config{}, "MOBIUS_KMS_KEY_ID"},
		{"unknown store", map[string]string{"MOBIUS_STORE": "redis"}, Config{}, "MOBIUS_STORE"},
		{"bad log level", map[string]string{"MOBIUS_DATA": "/d", "MOBIUS_LOG_LEVEL": "loud"}, Config{}, "MOBIUS_LOG_LEVEL"},
		{"data-key cache TTL", map[string]string{"MOBIUS_DATA": "/d", "MOBIUS_DATA_KEY_CACHE_TTL": "30s"},
			Config{Store: "bolt", DataDir: "/d", Addr: "127.0.0.1:8080", DataKeyCacheTTL: 30 * time.Second}, ""},
		{"data-key cache off", map[string]string{"MOBIUS_DATA": "/d", "MOBIUS_DATA_KEY_CACHE_TTL": "0"},
			Config{Store: "bolt", DataDir: "/d", Addr: "127.0.0.1:8080", DataKeyCacheTTL: awsapp.DataKeyCacheDisabled}, ""},
		{"dynamodb data-key cache TTL", map[string]string{"MOBIUS_STORE": "dynamodb", "MOBIUS_TABLE": "t", "MOBIUS_KMS_KEY_ID": "alias/k", "MOBIUS_DATA_KEY_CACHE_TTL": "2m"},
			Config{Store: "dynamodb", Addr: "127.0.0.1:8080", DataKeyCacheTTL: 2 * time.Minute, AWS: awsapp.Config{Table: "t", KMSKeyID: "alias/k", KeyCheck: secrets.KeyCheckInit, DataKeyCacheTTL: 2 * time.Minute}}, ""},
		{"data-key cache TTL over 5m", map[string]string{"MOBIUS_DATA": "/d", "MOBIUS_DATA_KEY_CACHE_TTL": "1h"}, Config{}, "MOBIUS_DATA_KEY_CACHE_TTL"},
		{"idempotency lease", map[string]string{"MOBIUS_DATA": "/d", "MOBIUS_IDEMPOTENCY_LEASE": "3s"},
			Config{Store: "bolt", DataDir: "/d", Addr: "127.0.0.1:8080", IdempotencyLease: 3 * time.Second}, ""},
		{"idempotency lease under 1s", map[string]string{"MOBIUS_DATA": "/d", "MOBIUS_IDEMPOTENCY_LEASE": "500ms"}, Config{}, "MOBIUS_IDEMPOTENCY_LEASE"},
		{"idempotency lease not a duration", map[string]string{"MOBIUS_DATA": "/d", "MOBIUS_IDEMPOTENCY_LEASE": "15"}, Config{}, "MOBIUS_IDEMPOTENCY_LEASE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ConfigFromEnv(env(c.env))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, c.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestNewAndBootstrap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfg := Config{Store: StoreBolt, DataDir: dir}
	ctx := context.Background()

	a, err := New(ctx, cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	key, created, err := a.Bootstrap(ctx)
	if err != nil || !created || !strings.HasPrefix(key, "mbs_") {
		t.Fatalf("first start: %q %v %v", key, created, err)
	}
	for _, name := range []string{"mobius.db", "master.key"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Fatalf("%s has mode %v", name, st.Mode().Perm())
		}
	}
	k, err := a.Service.Authenticate(ctx, key)
	if err != nil || k.Project != DefaultProject || !slices.Equal(k.Scopes, secrets.AllScopes) || k.Name != "bootstrap" {
		t.Fatalf("bootstrap key %+v, %v", k, err)
	}
	// The key works over HTTP, on every scope.
	for _, path := range []string{"/v1/projects/default/secrets", "/v1/projects/default/api-keys"} {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		a.Handler.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
	}
	// A page token made now must still be accepted after a restart.
	for _, n := range []string{"a", "b"} {
		r := httptest.NewRequest("POST", "/v1/projects/default/secrets", strings.NewReader(`{"name":"`+n+`","values":{"k":"v"}}`))
		r.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		a.Handler.ServeHTTP(w, r)
		if w.Code != 201 {
			t.Fatalf("create: %d %s", w.Code, w.Body)
		}
	}
	r := httptest.NewRequest("GET", "/v1/projects/default/secrets?limit=1", nil)
	r.Header.Set("Authorization", "Bearer "+key)
	w := httptest.NewRecorder()
	a.Handler.ServeHTTP(w, r)
	_, tok, _ := strings.Cut(w.Body.String(), `"next_page_token":"`)
	tok, _, _ = strings.Cut(tok, `"`)
	if tok == "" {
		t.Fatalf("no token in %s", w.Body)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	b, err := New(ctx, cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	key2, created, err := b.Bootstrap(ctx)
	if err != nil || created || key2 != "" {
		t.Fatalf("second start: %q %v %v", key2, created, err)
	}
	keys, err := b.Service.ListAPIKeys(ctx, DefaultProject)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v %v", keys, err)
	}
	if _, err := b.Service.Authenticate(ctx, key); err != nil {
		t.Fatalf("the key stopped working after a restart: %v", err)
	}
	r = httptest.NewRequest("GET", "/v1/projects/default/secrets?limit=1&page_token="+tok, nil)
	r.Header.Set("Authorization", "Bearer "+key)
	w = httptest.NewRecorder()
	b.Handler.ServeHTTP(w, r)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"name":"b"`) {
		t.Fatalf("page token after restart: %d %s", w.Code, w.Body)
	}

	t.Run("revoking every key does not bootstrap again", func(t *testing.T) {
		if err := b.Service.RevokeAPIKey(ctx, DefaultProject, keys[0].ID); err != nil {
			t.Fatal(err)
		}
		key, created, err := b.Bootstrap(ctx)
		if err != nil || created || key != "" {
			t.Fatalf("%q %v %v", key, created, err)
		}
	})
}

func TestBootstrapWithExistingKey(t *testing.T) {
	ctx := context.Background()
	a, err := New(ctx, Config{DataDir: t.TempDir()}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, _, err := a.Service.CreateAPIKey(ctx, DefaultProject, "operator", nil); err != nil {
		t.Fatal(err)
	}
	key, created, err := a.Bootstrap(ctx)
	if err != nil || created || key != "" {
		t.Fatalf("%q %v %v", key, created, err)
	}
}

func TestNewErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("data folder in use", func(t *testing.T) {
		dir := t.TempDir()
		a, err := New(ctx, Config{DataDir: dir}, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := New(ctx, Config{DataDir: dir}, quietLogger())
		if err == nil {
			b.Close()
			t.Fatal("a second open of a held data file succeeded")
		}
		if !strings.Contains(err.Error(), "another mobius server") {
			t.Fatalf("err %v does not say why", err)
		}
	})
	t.Run("key file readable by others", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "master.key"), make([]byte, 32), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := New(ctx, Config{DataDir: dir}, quietLogger()); err == nil || !strings.Contains(err.Error(), "chmod") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("no data folder", func(t *testing.T) {
		if _, err := New(ctx, Config{Store: StoreBolt}, quietLogger()); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("unknown store", func(t *testing.T) {
		if _, err := New(ctx, Config{Store: "redis"}, quietLogger()); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestListenAndServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- ListenAndServe(ctx, "127.0.0.1:0", h, quietLogger(), func(a net.Addr) { addrc <- a }) }()
	addr := <-addrc
	res, err := http.Get("http://" + addr.String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "hi" {
		t.Fatalf("body %q", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop")
	}
	if _, err := http.Get("http://" + addr.String() + "/"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}
