package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/mobius-secrets/mobius/pkg/api"
)

// Labels, dates, the trash and the change feed.

// ListSecretsQuery selects a page of secrets; zero fields do not filter.
type ListSecretsQuery struct {
	Prefix string
	// Labels keeps secrets that carry every one of these labels.
	Labels map[string]string
	// ExpiringBefore and RotateBefore keep secrets whose expires_at
	// (rotate_by) is set and before them.
	ExpiringBefore time.Time
	RotateBefore   time.Time
	Limit          int // <= 0 leaves the page size to the server
	PageToken      string
}

// ListSecretsWith returns one page of the project's secrets that match q.
// A filtered page may hold fewer secrets than Limit, or none, and still
// have a NextPageToken: keep reading until it is "".
func (c *Client) ListSecretsWith(ctx context.Context, project string, q ListSecretsQuery) (*SecretPage, error) {
	v := pageQuery(q.Limit, q.PageToken)
	if q.Prefix != "" {
		v.Set("prefix", q.Prefix)
	}
	keys := make([]string, 0, len(q.Labels))
	for k := range q.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v.Add("label", k+":"+q.Labels[k])
	}
	if !q.ExpiringBefore.IsZero() {
		v.Set("expiring_before", q.ExpiringBefore.UTC().Format(time.RFC3339))
	}
	if !q.RotateBefore.IsZero() {
		v.Set("rotate_before", q.RotateBefore.UTC().Format(time.RFC3339))
	}
	items, next, raw, err := listCall(ctx, c, c.secretsPath(project), v, "secrets", func(s *Secret, r json.RawMessage) { s.Raw = r })
	if err != nil {
		return nil, err
	}
	return &SecretPage{Secrets: items, NextPageToken: next, Raw: raw}, nil
}

// PurgeSecret deletes the secret and skips the trash: its values are
// erased at once, irreversibly.
func (c *Client) PurgeSecret(ctx context.Context, project, secret string, opts ...CallOption) error {
	_, err := c.Do(ctx, http.MethodDelete, c.secretPath(project, secret), url.Values{"purge": {"true"}}, nil, opts...)
	return err
}

// TrashedSecret is a secret in the trash.
type TrashedSecret struct {
	api.TrashedSecret
	Raw json.RawMessage `json:"-"`
}

// TrashPage is one page of the trash, in ID order.
type TrashPage struct {
	Trash         []*TrashedSecret
	NextPageToken string
	Raw           json.RawMessage
}

func (c *Client) trashPath(project string) string {
	return "/v1/projects/" + c.proj(project) + "/trash"
}

// ListTrash returns one page of the project's trash.
func (c *Client) ListTrash(ctx context.Context, project string, limit int, pageToken string) (*TrashPage, error) {
	items, next, raw, err := listCall(ctx, c, c.trashPath(project), pageQuery(limit, pageToken), "trash", func(t *TrashedSecret, r json.RawMessage) { t.Raw = r })
	if err != nil {
		return nil, err
	}
	return &TrashPage{Trash: items, NextPageToken: next, Raw: raw}, nil
}

// RestoreSecret brings the secret with ID id back from the trash with
// every version, under its name, or under name if not "" (needed when its
// name was taken meanwhile: the API answers 409, field "name").
func (c *Client) RestoreSecret(ctx context.Context, project, id, name string, opts ...CallOption) (*Secret, error) {
	var body any
	if name != "" {
		body = api.RestoreSecretRequest{Name: name}
	}
	return c.secret(ctx, http.MethodPost, c.trashPath(project)+"/"+url.PathEscape(id)+"/restore", body, opts...)
}

// PurgeTrash purges the secret with ID id from the trash at once.
func (c *Client) PurgeTrash(ctx context.Context, project, id string) error {
	_, err := c.Do(ctx, http.MethodDelete, c.trashPath(project)+"/"+url.PathEscape(id), nil, nil)
	return err
}

// Event is one change of the feed. It never holds a value; the fields
// that do not apply to its type are nil.
type Event struct {
	api.Event
	Raw json.RawMessage `json:"-"`
}

// EventPage is one page of the feed, oldest first.
type EventPage struct {
	Events []*Event
	// NextAfter is the after of the next call.
	NextAfter string
	// More says whether more events are ready after NextAfter.
	More bool
	Raw  json.RawMessage
}

// MaxWait is the longest wait ListEvents asks for: the server takes up to
// 30 s, and the client's own timeout (DefaultTimeout) must outlast it.
const MaxWait = 20 * time.Second

// ListEvents returns the project's events after the event ID after ("" for
// the oldest kept). With wait > 0 (at most MaxWait) the server holds the
// request until an event is ready or wait passes.
func (c *Client) ListEvents(ctx context.Context, project, after string, limit int, wait time.Duration) (*EventPage, error) {
	if wait > MaxWait {
		return nil, fmt.Errorf("client: wait %s is over MaxWait (%s)", wait, MaxWait)
	}
	q := pageQuery(limit, "")
	if after != "" {
		q.Set("after", after)
	}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	resp, err := c.Do(ctx, http.MethodGet, "/v1/projects/"+c.proj(project)+"/events", q, nil)
	if err != nil {
		return nil, err
	}
	var page struct {
		Events    []json.RawMessage `json:"events"`
		NextAfter string            `json:"next_after"`
		More      bool              `json:"more"`
	}
	bad := &Error{Status: resp.Status, Code: "Invalid Response", Message: "the server's answer to GET …/events is not the expected JSON"}
	if err := json.Unmarshal(resp.Body, &page); err != nil {
		return nil, bad
	}
	out := &EventPage{NextAfter: page.NextAfter, More: page.More, Raw: resp.Body, Events: make([]*Event, 0, len(page.Events))}
	for _, r := range page.Events {
		ev := &Event{Raw: r}
		if err := json.Unmarshal(r, ev); err != nil {
			return nil, bad
		}
		out.Events = append(out.Events, ev)
	}
	return out, nil
}

// FollowEvents calls fn with every event after the event ID after, in
// order, as they come, long-polling MaxWait at a time, until ctx ends
// (then it returns ctx's error) or fn or a call fails. A cursor passed to
// the next FollowEvents (the ID of the last event fn saw) resumes exactly
// there.
func (c *Client) FollowEvents(ctx context.Context, project, after string, fn func(*Event) error) error {
	for {
		page, err := c.ListEvents(ctx, project, after, 0, MaxWait)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return err
		}
		for _, ev := range page.Events {
			if err := fn(ev); err != nil {
				return err
			}
		}
		after = page.NextAfter
	}
}
