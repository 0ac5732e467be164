package httpapi

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.Health{Status: "ok"})
}

func secretLocation(project, id string) string {
	return "/v1/projects/" + url.PathEscape(project) + "/secrets/" + id
}

// createSecretBody is api.CreateSecretRequest as the server reads it:
// strictly, member by member, with the members whose Go types the strict
// reader does not take (an object of strings, a date) kept raw and decoded
// by decodeValues, decodeLabels and decodeDate, whose errors name the
// field and never quote a value. Its JSON names are the request type's
// (TestBodiesMirrorTheAPITypes).
type createSecretBody struct {
	Name          string          `json:"name"`
	Description   string          `json:"description"`
	Values        json.RawMessage `json:"values"`
	PreviousGrace *int64          `json:"previous_grace_seconds"`
	AliasTTL      *int64          `json:"rename_alias_seconds"`
	Labels        json.RawMessage `json:"labels"`
	ExpiresAt     json.RawMessage `json:"expires_at"`
	RotateBy      json.RawMessage `json:"rotate_by"`
}

// updateSecretBody is api.UpdateSecretRequest as the server reads it, as
// createSecretBody is the create's; raw members also tell an absent labels
// or date (left as it is) from null (removed, cleared).
type updateSecretBody struct {
	Name           *string         `json:"name"`
	Description    *string         `json:"description"`
	Values         json.RawMessage `json:"values"`
	Stage          string          `json:"stage"`
	ReplacePending bool            `json:"replace_pending"`
	PreviousGrace  *int64          `json:"previous_grace_seconds"`
	AliasTTL       *int64          `json:"rename_alias_seconds"`
	Labels         json.RawMessage `json:"labels"`
	ExpiresAt      json.RawMessage `json:"expires_at"`
	RotateBy       json.RawMessage `json:"rotate_by"`
}

func (s *server) createSecret(r *http.Request, c *call) (reply, error) {
	var in createSecretBody
	if err := decodeJSON(c.body, &in); err != nil {
		return reply{}, err
	}
	values, err := decodeValues(in.Values)
	if err != nil {
		return reply{}, err
	}
	if values == nil {
		return reply{}, secrets.FieldErrorf(secrets.Invalid, "values", "values is required: a non-empty object of string values")
	}
	labels, expires, rotateBy, err := decodeLifecycle(in.Labels, in.ExpiresAt, in.RotateBy)
	if err != nil {
		return reply{}, err
	}
	sec, err := s.svc.CreateSecret(r.Context(), c.project, secrets.CreateSecretInput{Name: in.Name, Description: in.Description, Values: values,
		PreviousGrace: seconds(in.PreviousGrace), AliasTTL: seconds(in.AliasTTL),
		Labels: labels, ExpiresAt: dateOrZero(expires), RotateBy: dateOrZero(rotateBy)})
	if err != nil {
		return reply{}, err
	}
	return renderCreatedSecret(&secrets.Outcome{Secret: sec}), nil
}

// Renderers of the idempotent routes' answers (route.render).

func renderCreatedSecret(o *secrets.Outcome) reply {
	return reply{status: http.StatusCreated, body: secretJSON(o.Secret), revision: o.Secret.Revision, location: secretLocation(o.Secret.Project, o.Secret.ID)}
}

func renderSecret(o *secrets.Outcome) reply {
	return reply{status: http.StatusOK, body: secretJSON(o.Secret), revision: o.Secret.Revision}
}

func renderVersion(o *secrets.Outcome) reply {
	return reply{status: http.StatusOK, body: versionJSON(o.Version), revision: o.Secret.Revision}
}

func (s *server) listSecrets(r *http.Request, c *call) (reply, error) {
	limit, token, err := pageQuery(r)
	if err != nil {
		return reply{}, err
	}
	prefix := r.URL.Query().Get("prefix")
	if len(prefix) > secrets.MaxNameLen || strings.ContainsFunc(prefix, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-')
	}) {
		return reply{}, secrets.FieldErrorf(secrets.Invalid, "prefix", "prefix must be at most %d characters of A-Z a-z 0-9 _ -", secrets.MaxNameLen)
	}
	q, filters, err := listFilters(r)
	if err != nil {
		return reply{}, err
	}
	// A token continues the list it was made for: the same prefix and
	// filters (a prefix holds no '&', so the two cannot run together).
	bind := pageBinding{kind: pageSecrets, project: c.project, prefix: prefix + filters}
	after, err := s.parsePageToken(r.Context(), token, bind)
	if err != nil {
		return reply{}, err
	}
	q.Prefix, q.After, q.Limit = prefix, after, limit
	page, err := s.svc.ListSecretsPage(r.Context(), c.project, q)
	if err != nil {
		return reply{}, err
	}
	out := api.SecretList{Secrets: make([]api.Secret, 0, len(page.Secrets))}
	for _, sec := range page.Secrets {
		out.Secrets = append(out.Secrets, secretJSON(sec))
	}
	if page.Next != "" {
		out.NextPageToken = s.newPageToken(bind, page.Next)
	}
	return reply{status: http.StatusOK, body: out}, nil
}

func (s *server) getSecret(r *http.Request, c *call) (reply, error) {
	sec, err := s.svc.GetSecret(r.Context(), c.project, r.PathValue("secret"))
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: secretJSON(sec), revision: sec.Revision}, nil
}

func (s *server) updateSecret(r *http.Request, c *call) (reply, error) {
	var in updateSecretBody
	if err := decodeJSON(c.body, &in); err != nil {
		return reply{}, err
	}
	values, err := decodeValues(in.Values)
	if err != nil {
		return reply{}, err
	}
	labels, expires, rotateBy, err := decodeLifecycle(in.Labels, in.ExpiresAt, in.RotateBy)
	if err != nil {
		return reply{}, err
	}
	ref := r.PathValue("secret")
	rev, err := s.ifMatch(r, c, ref)
	if err != nil {
		return reply{}, err
	}
	sec, err := s.svc.UpdateSecret(r.Context(), c.project, ref, secrets.UpdateSecretInput{
		Name: in.Name, Description: in.Description, Values: values, IfRevision: rev,
		Stage: secrets.State(in.Stage), ReplacePending: in.ReplacePending,
		PreviousGrace: seconds(in.PreviousGrace), AliasTTL: seconds(in.AliasTTL),
		Labels: labels, ExpiresAt: expires, RotateBy: rotateBy,
	})
	if err != nil {
		return reply{}, err
	}
	return renderSecret(&secrets.Outcome{Secret: sec}), nil
}

func (s *server) deleteSecret(r *http.Request, c *call) (reply, error) {
	ref := r.PathValue("secret")
	purge, err := boolQuery(r, "purge")
	if err != nil {
		return reply{}, err
	}
	rev, err := s.ifMatch(r, c, ref)
	if err != nil {
		return reply{}, err
	}
	if err := s.svc.DeleteSecretWith(r.Context(), c.project, ref, secrets.DeleteOptions{IfRevision: rev, Purge: purge}); err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusNoContent}, nil
}

func (s *server) listVersions(r *http.Request, c *call) (reply, error) {
	limit, token, err := pageQuery(r)
	if err != nil {
		return reply{}, err
	}
	sec, err := s.svc.GetSecret(r.Context(), c.project, r.PathValue("secret"))
	if err != nil {
		return reply{}, err
	}
	bind := pageBinding{kind: pageVersions, project: c.project, secretID: sec.ID}
	cursor, err := s.parsePageToken(r.Context(), token, bind)
	if err != nil {
		return reply{}, err
	}
	before := 0
	if cursor != "" {
		before = atoiOr(cursor, 0)
	}
	list, more, err := s.svc.ListVersionsOf(r.Context(), sec, before, limit)
	if err != nil {
		return reply{}, err
	}
	out := api.VersionList{Versions: make([]api.Version, 0, len(list))}
	for _, v := range list {
		out.Versions = append(out.Versions, versionJSON(v))
	}
	if more && len(list) > 0 {
		out.NextPageToken = s.newPageToken(bind, itoa(list[len(list)-1].Number))
	}
	return reply{status: http.StatusOK, body: out}, nil
}

func (s *server) getVersion(r *http.Request, c *call) (reply, error) {
	v, sec, err := s.svc.GetVersion(r.Context(), c.project, r.PathValue("secret"), r.PathValue("version"))
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: versionJSON(v), revision: sec.Revision}, nil
}

func (s *server) versionAction(action string) handlerFunc {
	return func(r *http.Request, c *call) (reply, error) {
		if err := decodeEmpty(c.body); err != nil {
			return reply{}, err
		}
		ref := r.PathValue("secret")
		if _, err := secrets.ParseVersionRef(r.PathValue("version")); err != nil {
			return reply{}, err
		}
		rev, err := s.ifMatch(r, c, ref)
		if err != nil {
			return reply{}, err
		}
		force, err := boolQuery(r, "force")
		if err != nil {
			return reply{}, err
		}
		v, sec, err := s.svc.ChangeVersionStateWith(r.Context(), c.project, ref, r.PathValue("version"), action, secrets.ActionOptions{IfRevision: rev, Force: force})
		if err != nil {
			return reply{}, err
		}
		return renderVersion(&secrets.Outcome{Secret: sec, Version: v}), nil
	}
}

func (s *server) listResolutions(r *http.Request, c *call) (reply, error) {
	limit, token, err := pageQuery(r)
	if err != nil {
		return reply{}, err
	}
	sec, err := s.svc.GetSecret(r.Context(), c.project, r.PathValue("secret"))
	if err != nil {
		return reply{}, err
	}
	bind := pageBinding{kind: pageResolutions, project: c.project, secretID: sec.ID}
	before, err := s.parsePageToken(r.Context(), token, bind)
	if err != nil {
		return reply{}, err
	}
	list, more, err := s.svc.ListResolutionsOf(r.Context(), sec.Project, sec.ID, before, limit)
	if err != nil {
		return reply{}, err
	}
	out := api.ResolutionList{Resolutions: make([]api.Resolution, 0, len(list))}
	for _, res := range list {
		out.Resolutions = append(out.Resolutions, resolutionJSON(res))
	}
	if more && len(list) > 0 {
		out.NextPageToken = s.newPageToken(bind, list[len(list)-1].ID)
	}
	return reply{status: http.StatusOK, body: out}, nil
}

// seconds turns an optional number of seconds into a duration; a number
// too large for one is out of every range, which the service refuses.
func seconds(n *int64) *time.Duration {
	if n == nil {
		return nil
	}
	d := time.Duration(*n) * time.Second
	if *n > int64(math.MaxInt64/time.Second) || *n < 0 {
		d = -1
	}
	return &d
}

// boolQuery reads an optional true/false query parameter.
func boolQuery(r *http.Request, name string) (bool, error) {
	switch v := r.URL.Query().Get(name); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, secrets.FieldErrorf(secrets.Invalid, name, "%s must be true or false", name)
}

func (s *server) deleteAlias(r *http.Request, c *call) (reply, error) {
	sec, err := s.svc.DeleteAlias(r.Context(), c.project, r.PathValue("secret"), r.PathValue("alias"))
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: secretJSON(sec), revision: sec.Revision}, nil
}

func (s *server) listConsumers(r *http.Request, c *call) (reply, error) {
	since := s.svc.Now().Add(-24 * time.Hour)
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			d, derr := time.ParseDuration(v)
			if derr != nil || d <= 0 {
				return reply{}, secrets.FieldErrorf(secrets.Invalid, "since", "since must be an RFC 3339 time (2026-01-02T15:04:05Z) or a duration back from now (24h)")
			}
			t = s.svc.Now().Add(-d)
		}
		since = t
	}
	list, truncated, err := s.svc.Consumers(r.Context(), c.project, r.PathValue("secret"), since)
	if err != nil {
		return reply{}, err
	}
	out := api.ConsumerList{Since: since.UTC(), Truncated: truncated, Versions: make([]api.VersionConsumers, 0, len(list))}
	for _, vc := range list {
		j := api.VersionConsumers{Version: vc.Version, State: string(vc.State), LastResolvedAt: timeOrNil(vc.LastResolvedAt), Consumers: make([]api.Consumer, 0, len(vc.Consumers))}
		for _, c := range vc.Consumers {
			ids := c.GrantIDs
			if ids == nil {
				ids = []string{}
			}
			j.Consumers = append(j.Consumers, api.Consumer{Run: jsonOrNull(c.Run), Step: jsonOrNull(c.Step), GrantIDs: ids, Count: c.Count, LastSeen: c.LastSeen.UTC()})
		}
		out.Versions = append(out.Versions, j)
	}
	return reply{status: http.StatusOK, body: out}, nil
}
