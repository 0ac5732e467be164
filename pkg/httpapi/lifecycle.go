package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// Labels, dates, the change feed and the trash.

// decodeLabels decodes a labels object: nil if absent; an empty map for
// null or {} (an update then removes every label). Invalid (field
// "labels") if it is not an object of strings or names a key twice. The
// service checks the keys and values.
func decodeLabels(raw json.RawMessage) (map[string]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, nil
	}
	if bytes.Equal(raw, []byte("null")) {
		return map[string]string{}, nil
	}
	notObject := secrets.FieldErrorf(secrets.Invalid, "labels", "labels must be an object whose values are strings")
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, notObject
	}
	out := map[string]string{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, notObject
		}
		k, _ := kt.(string)
		vt, err := dec.Token()
		if err != nil {
			return nil, notObject
		}
		v, ok := vt.(string)
		if !ok {
			return nil, secrets.FieldErrorf(secrets.Invalid, "labels", "the value of label %q must be a string", secrets.Shorten(k, 40))
		}
		if _, dup := out[k]; dup {
			return nil, secrets.FieldErrorf(secrets.Invalid, "labels", "label %q appears more than once", secrets.Shorten(k, 40))
		}
		out[k] = v
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, notObject
	}
	return out, nil
}

// decodeLifecycle reads the labels and dates a create or an update may
// carry: each absent one is nil.
func decodeLifecycle(labels, expiresAt, rotateBy json.RawMessage) (map[string]string, *time.Time, *time.Time, error) {
	l, err := decodeLabels(labels)
	if err != nil {
		return nil, nil, nil, err
	}
	expires, err := decodeDate("expires_at", expiresAt)
	if err != nil {
		return nil, nil, nil, err
	}
	rb, err := decodeDate("rotate_by", rotateBy)
	if err != nil {
		return nil, nil, nil, err
	}
	return l, expires, rb, nil
}

// decodeDate decodes an optional RFC 3339 time of field: nil if absent,
// the zero time for null (an update then clears it).
func decodeDate(field string, raw json.RawMessage) (*time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, nil
	}
	if bytes.Equal(raw, []byte("null")) {
		return &time.Time{}, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, secrets.FieldErrorf(secrets.Invalid, field, "%s must be an RFC 3339 time (2026-01-02T15:04:05Z) or null", field)
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, secrets.FieldErrorf(secrets.Invalid, field, "%s must be an RFC 3339 time (2026-01-02T15:04:05Z) or null", field)
	}
	return &t, nil
}

// dateOrZero is the time d points at, or the zero time.
func dateOrZero(d *time.Time) time.Time {
	if d == nil {
		return time.Time{}
	}
	return *d
}

// listFilters reads the filters of GET …/secrets: label=key:value (any
// number, split at the first ':', all must match), expiring_before= and
// rotate_before= (RFC 3339). It returns them with a canonical form for the
// page token's binding.
func listFilters(r *http.Request) (secrets.ListQuery, string, error) {
	var q secrets.ListQuery
	v := r.URL.Query()
	labels := v["label"]
	if len(labels) > secrets.MaxLabels {
		return q, "", secrets.FieldErrorf(secrets.Invalid, "label", "filter on at most %d labels", secrets.MaxLabels)
	}
	for _, l := range labels {
		k, val, ok := strings.Cut(l, ":")
		if !ok {
			return q, "", secrets.FieldErrorf(secrets.Invalid, "label", "label filters are key:value (label=env:prod)")
		}
		if old, dup := q.Labels[k]; dup && old != val {
			return q, "", secrets.FieldErrorf(secrets.Invalid, "label", "label %q is filtered on twice, with different values", secrets.Shorten(k, 40))
		}
		if q.Labels == nil {
			q.Labels = map[string]string{}
		}
		q.Labels[k] = val
	}
	for _, f := range []struct {
		name string
		to   *time.Time
	}{{"expiring_before", &q.ExpiringBefore}, {"rotate_before", &q.RotateBefore}} {
		s := v.Get(f.name)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return q, "", secrets.FieldErrorf(secrets.Invalid, f.name, "%s must be an RFC 3339 time (2026-01-02T15:04:05Z)", f.name)
		}
		*f.to = t
	}
	if len(q.Labels) == 0 && q.ExpiringBefore.IsZero() && q.RotateBefore.IsZero() {
		return q, "", nil
	}
	// The binding: the filters in a canonical order, escaped so that no
	// two filter sets share one.
	var b strings.Builder
	keys := make([]string, 0, len(q.Labels))
	for k := range q.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString("&label=" + url.QueryEscape(k) + ":" + url.QueryEscape(q.Labels[k]))
	}
	for _, t := range []struct {
		name string
		at   time.Time
	}{{"expiring_before", q.ExpiringBefore}, {"rotate_before", q.RotateBefore}} {
		if !t.at.IsZero() {
			b.WriteString("&" + t.name + "=" + t.at.UTC().Format(time.RFC3339Nano))
		}
	}
	return q, b.String(), nil
}

func labelsJSON(l map[string]string) map[string]string {
	if l == nil {
		return map[string]string{}
	}
	return l
}

func (s *server) listEvents(r *http.Request, c *call) (reply, error) {
	v := r.URL.Query()
	limit, _, err := pageQuery(r)
	if err != nil {
		return reply{}, err
	}
	var wait time.Duration
	if ws := v.Get("wait"); ws != "" {
		d, err := time.ParseDuration(ws)
		if err != nil || d < 0 || d > secrets.MaxEventWait {
			return reply{}, secrets.FieldErrorf(secrets.Invalid, "wait", "wait must be a duration from 0s to %s, such as 30s", secrets.MaxEventWait)
		}
		wait = d
	}
	ctx := r.Context()
	// A request with a deadline of its own (a Lambda invocation) answers
	// before it, with what it has.
	if dl, ok := ctx.Deadline(); ok {
		wait = max(0, min(wait, time.Until(dl)-time.Second))
	}
	var page *secrets.EventPage
	if wait > 0 {
		page, err = s.svc.WaitEvents(ctx, c.project, v.Get("after"), limit, wait)
	} else {
		page, err = s.svc.ListEvents(ctx, c.project, v.Get("after"), limit)
	}
	if err != nil {
		return reply{}, err
	}
	out := api.EventList{Events: make([]api.Event, 0, len(page.Events)), NextAfter: page.Next, More: page.More}
	for _, ev := range page.Events {
		out.Events = append(out.Events, NewEventJSON(ev))
	}
	return reply{status: http.StatusOK, body: out}, nil
}

// NewEventJSON is ev as the feed (GET …/events) shows it, and as the
// stack publishes it to EventBridge (the event's detail): never a value.
func NewEventJSON(ev *secrets.Event) api.Event {
	out := api.Event{ID: ev.ID, Type: string(ev.Type), Project: ev.Project, At: ev.At.UTC()}
	if ev.SecretID != "" {
		out.SecretID, out.Name = &ev.SecretID, &ev.Name
	}
	if ev.Version != 0 {
		out.Version, out.SHA256 = &ev.Version, &ev.SHA256
		st := string(ev.State)
		out.State = &st
	}
	if ev.KeyID != "" {
		out.KeyID = &ev.KeyID
	}
	return out
}

func trashedJSON(t *secrets.TrashedSecret) api.TrashedSecret {
	return api.TrashedSecret{Secret: secretJSON(t.Secret), TrashedAt: t.TrashedAt.UTC(), PurgeAt: t.PurgeAt.UTC()}
}

func (s *server) listTrash(r *http.Request, c *call) (reply, error) {
	limit, token, err := pageQuery(r)
	if err != nil {
		return reply{}, err
	}
	bind := pageBinding{kind: pageTrash, project: c.project}
	after, err := s.parsePageToken(r.Context(), token, bind)
	if err != nil {
		return reply{}, err
	}
	list, more, err := s.svc.ListTrash(r.Context(), c.project, after, limit)
	if err != nil {
		return reply{}, err
	}
	out := api.TrashList{Trash: make([]api.TrashedSecret, 0, len(list))}
	for _, t := range list {
		out.Trash = append(out.Trash, trashedJSON(t))
	}
	if more && len(list) > 0 {
		out.NextPageToken = s.newPageToken(bind, list[len(list)-1].Secret.ID)
	}
	return reply{status: http.StatusOK, body: out}, nil
}

func (s *server) restoreSecret(r *http.Request, c *call) (reply, error) {
	var in api.RestoreSecretRequest
	if len(bytes.TrimSpace(c.body)) > 0 {
		if err := decodeJSON(c.body, &in); err != nil {
			return reply{}, err
		}
	}
	sec, err := s.svc.RestoreSecret(r.Context(), c.project, r.PathValue("id"), in.Name)
	if err != nil {
		return reply{}, err
	}
	return renderSecret(&secrets.Outcome{Secret: sec}), nil
}

func (s *server) purgeTrash(r *http.Request, c *call) (reply, error) {
	if err := s.svc.PurgeTrash(r.Context(), c.project, r.PathValue("id")); err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusNoContent}, nil
}
