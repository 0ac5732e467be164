package client_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/client"
)

// The rotation calls go to the documented routes, with ?force=true only
// when asked, and decode the documented answers.
func TestRotationCalls(t *testing.T) {
	var last http.Request
	var body string
	version := `{"version":3,"state":"ENABLED","sha256":"ab","keys":["k"],"created_at":"2026-11-28T14:03:00Z","state_changed_at":"2026-11-28T14:03:00Z","last_resolved_at":"2026-11-28T14:05:00Z"}`
	srv := fake(t, 200, version, &last, &body)
	c := client.New(srv.URL, "k", client.WithProject("acme"))
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		call        func() (*client.Version, error)
		path, query string
	}{
		{"promote", func() (*client.Version, error) { return c.PromoteVersion(ctx, "", "db", "3", client.IfMatch(`"4"`)) }, "/v1/projects/acme/secrets/db/versions/3/promote", ""},
		{"disable", func() (*client.Version, error) { return c.DisableVersion(ctx, "", "db", "3") }, "/v1/projects/acme/secrets/db/versions/3/disable", ""},
		{"disable, forced", func() (*client.Version, error) { return c.DisableVersion(ctx, "", "db", "3", client.Force()) }, "/v1/projects/acme/secrets/db/versions/3/disable", "force=true"},
		{"destroy, forced", func() (*client.Version, error) { return c.DestroyVersion(ctx, "", "db", "3", client.Force()) }, "/v1/projects/acme/secrets/db/versions/3/destroy", "force=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tc.call()
			if err != nil {
				t.Fatal(err)
			}
			if last.Method != "POST" || last.URL.Path != tc.path || last.URL.RawQuery != tc.query || body != "" {
				t.Errorf("sent %s %s?%s %q", last.Method, last.URL.Path, last.URL.RawQuery, body)
			}
			if v.Number != 3 || v.LastResolvedAt == nil || !v.LastResolvedAt.Equal(time.Date(2026, 11, 28, 14, 5, 0, 0, time.UTC)) || string(v.Raw) != version {
				t.Errorf("version %+v", v)
			}
		})
	}
	if last.Header.Get("If-Match") != "" {
		t.Error("an option of one call reached the next")
	}

	secret := `{"id":"sec_1","name":"db2","aliases":[],"pending_version":null,"previous_version":2,"previous_until":"2026-11-29T14:03:00Z"}`
	srv = fake(t, 200, secret, &last, &body)
	c = client.New(srv.URL, "k", client.WithProject("acme"))
	s, err := c.DeleteAlias(ctx, "", "db2", "db")
	if err != nil {
		t.Fatal(err)
	}
	if last.Method != "DELETE" || last.URL.Path != "/v1/projects/acme/secrets/db2/aliases/db" || s.Name != "db2" || s.ETag != `"r7"` ||
		s.PreviousVersion == nil || *s.PreviousVersion != 2 || s.PendingVersion != nil {
		t.Errorf("sent %s %s; secret %+v", last.Method, last.URL.Path, s)
	}

	consumers := `{"since":"2026-11-27T14:03:00Z","truncated":false,"versions":[{"version":1,"state":"DISABLED","last_resolved_at":"2026-11-28T14:00:00Z",` +
		`"consumers":[{"run":{"run_id":"r9"},"step":null,"grant_ids":["grt_1"],"count":4,"last_seen":"2026-11-28T14:00:00Z"}]}]}`
	srv = fake(t, 200, consumers, &last, nil)
	c = client.New(srv.URL, "k", client.WithProject("acme"))
	for _, since := range []string{"", "168h0m0s", "2026-11-01T00:00:00Z"} {
		l, err := c.Consumers(ctx, "", "db", since)
		if err != nil {
			t.Fatal(err)
		}
		if last.URL.Path != "/v1/projects/acme/secrets/db/consumers" || last.URL.Query().Get("since") != since || last.URL.Query().Has("since") != (since != "") {
			t.Errorf("since %q: sent %s?%s", since, last.URL.Path, last.URL.RawQuery)
		}
		if len(l.Versions) != 1 || len(l.Versions[0].Consumers) != 1 || l.Versions[0].Consumers[0].Count != 4 || string(l.Versions[0].Consumers[0].Run) != `{"run_id":"r9"}` || string(l.Raw) != consumers {
			t.Errorf("consumers %+v", l)
		}
	}
}
