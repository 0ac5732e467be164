package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func (s *server) createGrant(r *http.Request, c *call) (reply, error) {
	var in api.CreateResolveGrantRequest
	if err := decodeJSON(c.body, &in); err != nil {
		return reply{}, err
	}
	var ttl time.Duration
	if in.TTLSeconds != nil {
		if *in.TTLSeconds < 1 || *in.TTLSeconds > int64(secrets.MaxGrantTTL/time.Second) {
			return reply{}, secrets.FieldErrorf(secrets.Invalid, "ttl_seconds", "ttl_seconds must be from 1 to %d", int(secrets.MaxGrantTTL/time.Second))
		}
		ttl = time.Duration(*in.TTLSeconds) * time.Second
	}
	g, token, err := s.svc.MintGrant(r.Context(), c.project, c.key, secrets.MintGrantInput{Secrets: in.Secrets, Run: in.Run, TTL: ttl})
	if err != nil {
		return reply{}, err
	}
	rep := renderCreatedGrant(&secrets.Outcome{Grant: g})
	created := rep.body.(api.ResolveGrantCreated)
	created.Grant = token
	rep.body = created
	return rep, nil
}

// renderCreatedGrant is the answer to a grant's minting without the grant
// string, which only the first answer holds.
func renderCreatedGrant(o *secrets.Outcome) reply {
	return reply{status: http.StatusCreated, body: api.ResolveGrantCreated{ResolveGrant: grantJSON(o.Grant)},
		location: "/v1/projects/" + o.Grant.Project + "/resolve-grants/" + o.Grant.ID}
}

func (s *server) listGrants(r *http.Request, c *call) (reply, error) {
	limit, token, err := pageQuery(r)
	if err != nil {
		return reply{}, err
	}
	bind := pageBinding{kind: pageGrants, project: c.project}
	after, err := s.parsePageToken(r.Context(), token, bind)
	if err != nil {
		return reply{}, err
	}
	list, more, err := s.svc.ListGrants(r.Context(), c.project, after, limit)
	if err != nil {
		return reply{}, err
	}
	out := api.ResolveGrantList{Grants: make([]api.ResolveGrant, 0, len(list))}
	for _, g := range list {
		out.Grants = append(out.Grants, grantJSON(g))
	}
	if more && len(list) > 0 {
		out.NextPageToken = s.newPageToken(bind, list[len(list)-1].ID)
	}
	return reply{status: http.StatusOK, body: out}, nil
}

func (s *server) revokeGrant(r *http.Request, c *call) (reply, error) {
	if err := s.svc.RevokeGrant(r.Context(), c.project, r.PathValue("id")); err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusNoContent}, nil
}

func grantJSON(g *secrets.Grant) api.ResolveGrant {
	out := api.ResolveGrant{ID: g.ID, Project: g.Project, Secrets: make([]api.ResolveGrantSecret, len(g.Secrets)),
		Run: g.Run, KeyID: g.KeyID, CreatedAt: g.CreatedAt.UTC(), ExpiresAt: g.ExpiresAt.UTC()}
	for i, sc := range g.Secrets {
		out.Secrets[i] = api.ResolveGrantSecret{ID: sc.ID, Name: sc.Name}
	}
	if len(out.Run) == 0 {
		out.Run = json.RawMessage("null")
	}
	return out
}
