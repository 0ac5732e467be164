package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, HealthJSON{Status: "ok"})
}

func secretLocation(project, id string) string {
	return "/v1/projects/" + url.PathEscape(project) + "/secrets/" + id
}

func (s *server) createSecret(r *http.Request, c *call) (reply, error) {
	var in struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Values      json.RawMessage `json:"values"`
	}
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
	sec, err := s.svc.CreateSecret(r.Context(), c.project, secrets.CreateSecretInput{Name: in.Name, Description: in.Description, Values: values})
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusCreated, body: secretJSON(sec), revision: sec.Revision, location: secretLocation(c.project, sec.ID)}, nil
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
	bind := pageBinding{kind: pageSecrets, project: c.project, prefix: prefix}
	after, err := s.parsePageToken(token, bind)
	if err != nil {
		return reply{}, err
	}
	list, more, err := s.svc.ListSecrets(r.Context(), c.project, secrets.ListQuery{Prefix: prefix, After: after, Limit: limit})
	if err != nil {
		return reply{}, err
	}
	out := SecretListJSON{Secrets: make([]SecretJSON, 0, len(list))}
	for _, sec := range list {
		out.Secrets = append(out.Secrets, secretJSON(sec))
	}
	if more && len(list) > 0 {
		out.NextPageToken = s.newPageToken(bind, list[len(list)-1].Name)
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
	var in struct {
		Name        *string         `json:"name"`
		Description *string         `json:"description"`
		Values      json.RawMessage `json:"values"`
	}
	if err := decodeJSON(c.body, &in); err != nil {
		return reply{}, err
	}
	values, err := decodeValues(in.Values)
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
	})
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: secretJSON(sec), revision: sec.Revision}, nil
}

func (s *server) deleteSecret(r *http.Request, c *call) (reply, error) {
	ref := r.PathValue("secret")
	rev, err := s.ifMatch(r, c, ref)
	if err != nil {
		return reply{}, err
	}
	if err := s.svc.DeleteSecret(r.Context(), c.project, ref, rev); err != nil {
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
	cursor, err := s.parsePageToken(token, bind)
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
	out := VersionListJSON{Versions: make([]VersionJSON, 0, len(list))}
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
		v, sec, err := s.svc.ChangeVersionState(r.Context(), c.project, ref, r.PathValue("version"), action, rev)
		if err != nil {
			return reply{}, err
		}
		return reply{status: http.StatusOK, body: versionJSON(v), revision: sec.Revision}, nil
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
	before, err := s.parsePageToken(token, bind)
	if err != nil {
		return reply{}, err
	}
	list, more, err := s.svc.ListResolutionsOf(r.Context(), sec, before, limit)
	if err != nil {
		return reply{}, err
	}
	out := ResolutionListJSON{Resolutions: make([]ResolutionJSON, 0, len(list))}
	for _, res := range list {
		out.Resolutions = append(out.Resolutions, resolutionJSON(res))
	}
	if more && len(list) > 0 {
		out.NextPageToken = s.newPageToken(bind, list[len(list)-1].ID)
	}
	return reply{status: http.StatusOK, body: out}, nil
}
