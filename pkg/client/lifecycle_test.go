package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/client"
)

func TestListSecretsWithFilters(t *testing.T) {
	var last http.Request
	srv := fake(t, 200, `{"secrets":[{"id":"sec_1","name":"a","labels":{"env":"prod"},"expires_at":"2026-01-02T03:04:05Z","rotate_by":null}],"next_page_token":"t2"}`, &last, nil)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	page, err := client.New(srv.URL, "k").ListSecretsWith(context.Background(), "acme", client.ListSecretsQuery{
		Prefix: "a", Labels: map[string]string{"team": "pay", "env": "prod"}, ExpiringBefore: at, Limit: 5, PageToken: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := last.URL.RawQuery; got != "expiring_before=2026-01-02T03%3A04%3A05Z&label=env%3Aprod&label=team%3Apay&limit=5&page_token=t1&prefix=a" {
		t.Fatalf("query %s", got)
	}
	s := page.Secrets[0]
	if page.NextPageToken != "t2" || s.Labels["env"] != "prod" || s.ExpiresAt == nil || !s.ExpiresAt.Equal(at) || s.RotateBy != nil {
		t.Fatalf("page %+v, secret %+v", page, s)
	}
}

func TestUpdateSecretDatesAndLabels(t *testing.T) {
	var body string
	srv := fake(t, 200, `{"id":"sec_1","name":"a"}`, nil, &body)
	c := client.New(srv.URL, "k")
	empty := map[string]string{}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	for _, tc := range []struct {
		in   api.UpdateSecretRequest
		want string
	}{
		{api.UpdateSecretRequest{Labels: &empty, ExpiresAt: api.ClearTime()}, `{"labels":{},"expires_at":null}`},
		{api.UpdateSecretRequest{RotateBy: api.SetTime(at)}, `{"rotate_by":"2026-01-02T02:04:05Z"}`},
		{api.UpdateSecretRequest{Stage: api.StatePending, ReplacePending: true, Values: map[string]string{"k": "v"}}, `{"values":{"k":"v"},"stage":"PENDING","replace_pending":true}`},
	} {
		if _, err := c.UpdateSecret(context.Background(), "acme", "a", tc.in); err != nil {
			t.Fatal(err)
		}
		if body != tc.want {
			t.Errorf("body %s, want %s", body, tc.want)
		}
	}
}

func TestTrashCalls(t *testing.T) {
	var last http.Request
	var body string
	srv := fake(t, 200, `{"trash":[{"secret":{"id":"sec_1","name":"db"},"trashed_at":"2026-01-01T00:00:00Z","purge_at":"2026-01-08T00:00:00Z"}],"next_page_token":""}`, &last, &body)
	c := client.New(srv.URL, "k", client.WithProject("acme"))
	ctx := context.Background()
	page, err := c.ListTrash(ctx, "", 10, "")
	if err != nil || len(page.Trash) != 1 || page.Trash[0].Secret.Name != "db" || page.Trash[0].PurgeAt.Sub(page.Trash[0].TrashedAt) != 7*24*time.Hour {
		t.Fatalf("trash %+v, %v", page, err)
	}
	for _, tc := range []struct {
		call       func() error
		method     string
		path, body string
		query      string
	}{
		{func() error { _, err := c.RestoreSecret(ctx, "", "sec_1", ""); return err }, "POST", "/v1/projects/acme/trash/sec_1/restore", "", ""},
		{func() error { _, err := c.RestoreSecret(ctx, "", "sec_1", "db2"); return err }, "POST", "/v1/projects/acme/trash/sec_1/restore", `{"name":"db2"}`, ""},
		{func() error { return c.PurgeTrash(ctx, "", "sec_1") }, "DELETE", "/v1/projects/acme/trash/sec_1", "", ""},
		{func() error { return c.PurgeSecret(ctx, "", "db") }, "DELETE", "/v1/projects/acme/secrets/db", "", "purge=true"},
	} {
		if err := tc.call(); err != nil {
			t.Fatal(err)
		}
		if last.Method != tc.method || last.URL.Path != tc.path || body != tc.body || last.URL.RawQuery != tc.query {
			t.Errorf("%s %s?%s %q, want %s %s?%s %q", last.Method, last.URL.Path, last.URL.RawQuery, body, tc.method, tc.path, tc.query, tc.body)
		}
	}
}

// FollowEvents pages the feed with long polls from the cursor on, hands
// every event to fn in order, and ends with its context.
func TestFollowEvents(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	pages := []string{
		`{"events":[{"id":"evt_1","type":"secret.created","project":"acme","secret_id":"sec_1","name":"a","version":1,"sha256":"x","state":"ENABLED","key_id":null,"at":"2026-01-01T00:00:00Z"}],"next_after":"evt_1","more":false}`,
		`{"events":[],"next_after":"evt_1","more":false}`,
		`{"events":[{"id":"evt_2","type":"api_key.revoked","project":"acme","secret_id":null,"name":null,"version":null,"sha256":null,"state":null,"key_id":"key_1","at":"2026-01-01T00:00:01Z"}],"next_after":"evt_2","more":false}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := len(queries)
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		if i >= len(pages) {
			<-r.Context().Done() // the client leaves
			return
		}
		io.WriteString(w, pages[i])
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var got []*client.Event
	err := client.New(srv.URL, "k").FollowEvents(ctx, "acme", "evt_0", func(ev *client.Event) error {
		got = append(got, ev)
		if len(got) == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("FollowEvents returned %v", err)
	}
	if len(got) != 2 || got[0].ID != "evt_1" || got[0].Version == nil || *got[0].Version != 1 || got[1].KeyID == nil || *got[1].KeyID != "key_1" || got[1].SecretID != nil {
		t.Fatalf("events %+v", got)
	}
	raw, _ := json.Marshal(queries[:3])
	if string(raw) != `["after=evt_0\u0026wait=20s","after=evt_1\u0026wait=20s","after=evt_1\u0026wait=20s"]` {
		t.Fatalf("queries %s", raw)
	}
	if _, err := client.New(srv.URL, "k").ListEvents(context.Background(), "acme", "", 0, time.Minute); err == nil {
		t.Fatal("a wait over MaxWait was sent")
	}
}
