package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/client"
)

// The documented answer of POST /v1/projects/{project}/resolve-grants.
const grantAnswer = `{"id":"grt_01JD3Z8Q6Y7W2V5T4S3R2Q1P0N","grant":"mbg_secret-grant-value","project":"acme",` +
	`"secrets":[{"id":"sec_01JD3Z8Q6Y7W2V5T4S3R2Q1P0A","name":"openai"}],"run":{"run_id":"r1"},` +
	`"key_id":"key_01JD3Z8Q6Y7W2V5T4S3R2Q1P0K","expires_at":"2026-11-28T14:08:00Z"}`

func TestCreateResolveGrant(t *testing.T) {
	ctx := context.Background()
	t.Run("the documented answer", func(t *testing.T) {
		var last http.Request
		var body string
		srv := fake(t, 201, grantAnswer, &last, &body)
		g, err := client.New(srv.URL, "mbs_key", client.WithProject("acme")).CreateResolveGrant(ctx, "",
			api.CreateResolveGrantRequest{Secrets: []string{"openai"}, Run: json.RawMessage(`{"run_id":"r1"}`)})
		if err != nil {
			t.Fatal(err)
		}
		want := api.ResolveGrantCreated{ResolveGrant: api.ResolveGrant{ID: "grt_01JD3Z8Q6Y7W2V5T4S3R2Q1P0N", Project: "acme",
			Secrets: []api.ResolveGrantSecret{{ID: "sec_01JD3Z8Q6Y7W2V5T4S3R2Q1P0A", Name: "openai"}}, KeyID: "key_01JD3Z8Q6Y7W2V5T4S3R2Q1P0K",
			ExpiresAt: time.Date(2026, 11, 28, 14, 8, 0, 0, time.UTC)}, Grant: "mbg_secret-grant-value"}
		if g.ID != want.ID || g.Grant != want.Grant || g.Project != want.Project || len(g.Secrets) != 1 || g.Secrets[0] != want.Secrets[0] ||
			g.KeyID != want.KeyID || !g.ExpiresAt.Equal(want.ExpiresAt) || string(g.Run) != `{"run_id":"r1"}` || string(g.Raw) != grantAnswer {
			t.Errorf("got %+v", g)
		}
		if last.Method != "POST" || last.URL.Path != "/v1/projects/acme/resolve-grants" || last.Header.Get("Authorization") != "Bearer mbs_key" ||
			body != `{"secrets":["openai"],"run":{"run_id":"r1"}}` {
			t.Errorf("request %s %s %q", last.Method, last.URL.Path, body)
		}
	})
	t.Run("no secrets is an empty list", func(t *testing.T) {
		var body string
		srv := fake(t, 201, grantAnswer, nil, &body)
		if _, err := client.New(srv.URL, "k").CreateResolveGrant(ctx, "acme", api.CreateResolveGrantRequest{}); err != nil {
			t.Fatal(err)
		}
		if body != `{"secrets":[]}` {
			t.Errorf("body %s", body)
		}
	})
	unsupported := []struct {
		name, body string
		status     int
	}{
		{"no such route", `{"error":{"code":"Not Found","status":404,"message":"no such route"}}`, 404},
		{"another method only", `{"error":{"code":"Method Not Allowed","status":405,"message":"method not allowed"}}`, 405},
	}
	for _, c := range unsupported {
		t.Run("a server without grants: "+c.name, func(t *testing.T) {
			srv := fake(t, c.status, c.body, nil, nil)
			_, err := client.New(srv.URL, "k").CreateResolveGrant(ctx, "acme", api.CreateResolveGrantRequest{Secrets: []string{"a"}})
			var ue *client.UnsupportedError
			if !errors.Is(err, client.ErrResolveGrantsUnsupported) || !errors.As(err, &ue) || !client.IsStatus(err, c.status) {
				t.Fatalf("%T %v", err, err)
			}
			want := fmt.Sprintf("the server at %s does not issue resolve grants (POST /v1/projects/acme/resolve-grants answered %d): update it, or give a grant made elsewhere", srv.URL, c.status)
			if err.Error() != want {
				t.Errorf("message %q", err.Error())
			}
		})
	}
	t.Run("a project the key cannot see is the API's 404", func(t *testing.T) {
		srv := fake(t, 404, `{"error":{"code":"Not Found","status":404,"message":"project \"acme\" not found"}}`, nil, nil)
		_, err := client.New(srv.URL, "k").CreateResolveGrant(ctx, "acme", api.CreateResolveGrantRequest{})
		var ae *client.Error
		if errors.Is(err, client.ErrResolveGrantsUnsupported) || !errors.As(err, &ae) || ae.Status != 404 || ae.Message != `project "acme" not found` {
			t.Errorf("%T %v", err, err)
		}
	})
	t.Run("an answer without a grant", func(t *testing.T) {
		srv := fake(t, 201, `{"id":"grt_1"}`, nil, nil)
		_, err := client.New(srv.URL, "k").CreateResolveGrant(ctx, "acme", api.CreateResolveGrantRequest{})
		if !client.IsStatus(err, 201) {
			t.Errorf("%v", err)
		}
	})
}
