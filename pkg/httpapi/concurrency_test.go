package httpapi

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func TestIdempotency(t *testing.T) {
	ts := newTestServer(t)
	withKey := func(method, path, key string, body any) *response {
		return ts.serve(req{method: method, path: path, key: ts.key, body: body, header: map[string]string{"Idempotency-Key": key}})
	}
	create := map[string]any{"name": "db", "values": map[string]string{"k": "v"}}

	t.Run("create is replayed", func(t *testing.T) {
		first := withKey("POST", "/v1/projects/acme/secrets", "create-1", create).want(t, 201)
		if first.Header.Get("Idempotent-Replayed") != "" {
			t.Fatal("first answer marked replayed")
		}
		again := withKey("POST", "/v1/projects/acme/secrets", "create-1", create).want(t, 201)
		if !bytes.Equal(first.Body, again.Body) || again.Header.Get("Idempotent-Replayed") != "true" ||
			again.Header.Get("ETag") != first.Header.Get("ETag") || again.Header.Get("Location") != first.Header.Get("Location") ||
			again.Header.Get("Location") == "" {
			t.Fatalf("first %v %s\nagain %v %s", first.Header, first.Body, again.Header, again.Body)
		}
		var list api.SecretList
		ts.do("GET", "/v1/projects/acme/secrets", nil).want(t, 200).decode(t, &list)
		if len(list.Secrets) != 1 {
			t.Fatalf("%d secrets", len(list.Secrets))
		}
	})

	t.Run("same key, other body", func(t *testing.T) {
		other := map[string]any{"name": "db2", "values": map[string]string{"k": "v"}}
		wantError(t, withKey("POST", "/v1/projects/acme/secrets", "create-1", other), 409, "Idempotency-Key")
		wantError(t, ts.do("GET", "/v1/projects/acme/secrets/db2", nil), 404, "")
	})

	t.Run("same key, other path", func(t *testing.T) {
		wantError(t, withKey("PATCH", "/v1/projects/acme/secrets/db", "create-1", create), 409, "Idempotency-Key")
	})

	t.Run("keys are per project", func(t *testing.T) {
		other := ts.newKey("other", secrets.AllScopes...)
		ts.serve(req{method: "POST", path: "/v1/projects/other/secrets", key: other, body: create,
			header: map[string]string{"Idempotency-Key": "create-1"}}).want(t, 201)
	})

	t.Run("rotation is replayed and writes once", func(t *testing.T) {
		rot := map[string]any{"values": map[string]string{"k": "w"}}
		first := withKey("PATCH", "/v1/projects/acme/secrets/db", "rotate-1", rot).want(t, 200)
		again := withKey("PATCH", "/v1/projects/acme/secrets/db", "rotate-1", rot).want(t, 200)
		if !bytes.Equal(first.Body, again.Body) || again.Header.Get("ETag") != first.Header.Get("ETag") {
			t.Fatalf("first %s again %s", first.Body, again.Body)
		}
		var s api.Secret
		ts.do("GET", "/v1/projects/acme/secrets/db", nil).want(t, 200).decode(t, &s)
		if s.LatestVersion != 2 {
			t.Fatalf("latest %d", s.LatestVersion)
		}
	})

	t.Run("version action is replayed", func(t *testing.T) {
		withKey("POST", "/v1/projects/acme/secrets/db/versions/1/enable", "enable-1", nil).want(t, 200)
		ts.do("POST", "/v1/projects/acme/secrets/db/versions/2/enable", nil).want(t, 200)
		again := withKey("POST", "/v1/projects/acme/secrets/db/versions/1/enable", "enable-1", nil).want(t, 200)
		var v api.Version
		again.decode(t, &v)
		if again.Header.Get("Idempotent-Replayed") != "true" || v.Number != 1 {
			t.Fatalf("again %s", again.Body)
		}
		var s api.Secret
		ts.do("GET", "/v1/projects/acme/secrets/db", nil).want(t, 200).decode(t, &s)
		if *s.CurrentVersion != 2 {
			t.Fatal("the replay changed state")
		}
	})

	t.Run("a failure is not recorded", func(t *testing.T) {
		bad := map[string]any{"name": "bad name", "values": map[string]string{"k": "v"}}
		wantError(t, withKey("POST", "/v1/projects/acme/secrets", "fail-1", bad), 400, "name")
		wantError(t, withKey("POST", "/v1/projects/acme/secrets", "fail-1", bad), 400, "name")
		good := map[string]any{"name": "good", "values": map[string]string{"k": "v"}}
		r := withKey("POST", "/v1/projects/acme/secrets", "fail-1", good).want(t, 201)
		if r.Header.Get("Idempotent-Replayed") != "" {
			t.Fatal("replayed")
		}
	})

	t.Run("a conflict is not recorded", func(t *testing.T) {
		wantError(t, withKey("POST", "/v1/projects/acme/secrets", "conflict-1", create), 409, "name")
		ts.do("DELETE", "/v1/projects/acme/secrets/db", nil).want(t, 204)
		withKey("POST", "/v1/projects/acme/secrets", "conflict-1", create).want(t, 201)
	})

	t.Run("an API key is never replayed", func(t *testing.T) {
		var k api.APIKeyCreated
		withKey("POST", "/v1/projects/acme/api-keys", "key-1", map[string]any{"name": "ci"}).want(t, 201).decode(t, &k)
		again := withKey("POST", "/v1/projects/acme/api-keys", "key-1", map[string]any{"name": "ci"})
		wantError(t, again, 409, "Idempotency-Key")
		if strings.Contains(string(again.Body), k.Key) || !strings.Contains(string(again.Body), k.ID) {
			t.Fatalf("body %s", again.Body)
		}
		var list api.APIKeyList
		ts.do("GET", "/v1/projects/acme/api-keys", nil).want(t, 200).decode(t, &list)
		if len(list.APIKeys) != 2 {
			t.Fatalf("%d keys", len(list.APIKeys))
		}
		raw, err := os.ReadFile(ts.dbPath)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(k.Key)) {
			t.Fatal("the API key is stored in the clear")
		}
	})
}

func TestConcurrentRotations(t *testing.T) {
	ts := newTestServer(t)
	ts.createSecret("db", map[string]string{"k": "v0"})
	const n = 64
	var wg sync.WaitGroup
	status := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ts.do("PATCH", "/v1/projects/acme/secrets/db", map[string]any{"values": map[string]string{"k": fmt.Sprintf("v%d", i+1)}})
			status[i] = r.Status
		}()
	}
	wg.Wait()
	for i, s := range status {
		if s != 200 {
			t.Fatalf("rotation %d: status %d", i, s)
		}
	}
	var page api.VersionList
	ts.do("GET", "/v1/projects/acme/secrets/db/versions?limit=1000", nil).want(t, 200).decode(t, &page)
	if len(page.Versions) != n+1 {
		t.Fatalf("%d versions, want %d", len(page.Versions), n+1)
	}
	enabled := 0
	for i, v := range page.Versions {
		if v.Number != n+1-i {
			t.Fatalf("position %d holds version %d: numbers have a gap", i, v.Number)
		}
		if v.State == "ENABLED" {
			enabled++
		}
	}
	var s api.Secret
	ts.do("GET", "/v1/projects/acme/secrets/db", nil).want(t, 200).decode(t, &s)
	if enabled != 1 || page.Versions[0].State != "ENABLED" || s.LatestVersion != n+1 || *s.CurrentVersion != n+1 {
		t.Fatalf("%d ENABLED; secret %+v", enabled, s)
	}
}

func TestConcurrentCreates(t *testing.T) {
	ts := newTestServer(t)
	const n = 32
	var wg sync.WaitGroup
	status := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status[i] = ts.do("POST", "/v1/projects/acme/secrets", map[string]any{"name": "db", "values": map[string]string{"k": fmt.Sprint(i)}}).Status
		}()
	}
	wg.Wait()
	count := map[int]int{}
	for _, s := range status {
		count[s]++
	}
	if count[201] != 1 || count[409] != n-1 {
		t.Fatalf("statuses %v", count)
	}
}
