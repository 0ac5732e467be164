package httpapi

import (
	"net/http"
)

func (s *server) createAPIKey(r *http.Request, c *call) (reply, error) {
	var in CreateAPIKeyRequest
	if err := decodeJSON(c.body, &in); err != nil {
		return reply{}, err
	}
	k, key, err := s.svc.CreateAPIKey(r.Context(), c.project, in.Name, in.Scopes)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusCreated, body: CreatedAPIKeyJSON{
		ID: k.ID, Name: k.Name, Scopes: scopesOf(k), Key: key, CreatedAt: k.CreatedAt.UTC(),
	}}, nil
}

func (s *server) listAPIKeys(r *http.Request, c *call) (reply, error) {
	keys, err := s.svc.ListAPIKeys(r.Context(), c.project)
	if err != nil {
		return reply{}, err
	}
	out := APIKeyListJSON{APIKeys: make([]APIKeyJSON, 0, len(keys))}
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
