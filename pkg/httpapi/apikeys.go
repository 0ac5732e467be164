package httpapi

import (
	"net/http"
	"slices"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func (s *server) createAPIKey(r *http.Request, c *call) (reply, error) {
	var in api.CreateAPIKeyRequest
	if err := decodeJSON(c.body, &in); err != nil {
		return reply{}, err
	}
	// A key grants no more than it holds, so keys:admin alone cannot mint
	// a key that reads or writes secrets. Unknown scopes are the service's
	// 400.
	want := in.Scopes
	if len(want) == 0 {
		want = []string{secrets.ScopeRead}
	}
	for _, sc := range want {
		if slices.Contains(secrets.AllScopes, sc) && !c.key.HasScope(sc) {
			return reply{}, secrets.Errorf(secrets.Forbidden, "an API key can grant only scopes it holds itself; this one lacks %s", sc)
		}
	}
	k, key, err := s.svc.CreateAPIKey(r.Context(), c.project, in.Name, in.Scopes)
	if err != nil {
		return reply{}, err
	}
	rep := renderCreatedAPIKey(&secrets.Outcome{APIKey: k})
	created := rep.body.(api.APIKeyCreated)
	created.Key = key
	rep.body = created
	return rep, nil
}

// renderCreatedAPIKey is the answer to an API key's creation without the
// key itself, which only the first answer holds.
func renderCreatedAPIKey(o *secrets.Outcome) reply {
	k := o.APIKey
	return reply{status: http.StatusCreated, body: api.APIKeyCreated{
		ID: k.ID, Name: k.Name, Scopes: scopesOf(k), CreatedAt: k.CreatedAt.UTC(),
	}}
}

func (s *server) listAPIKeys(r *http.Request, c *call) (reply, error) {
	keys, err := s.svc.ListAPIKeys(r.Context(), c.project)
	if err != nil {
		return reply{}, err
	}
	out := api.APIKeyList{APIKeys: make([]api.APIKey, 0, len(keys))}
	for _, k := range keys {
		out.APIKeys = append(out.APIKeys, apiKeyJSON(k))
	}
	return reply{status: http.StatusOK, body: out}, nil
}

func (s *server) revokeAPIKey(r *http.Request, c *call) (reply, error) {
	if err := s.svc.RevokeAPIKey(r.Context(), c.project, r.PathValue("id")); err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusNoContent}, nil
}
