package httpapi

import (
	"github.com/mobius-secrets/mobius/pkg/apidocs"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// routes lists every route of the API.
func (s *server) routes() {
	const (
		read  = secrets.ScopeRead
		write = secrets.ScopeWrite
		admin = secrets.ScopeKeyAdmin
	)
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.Handle("GET /openapi.json", apidocs.OpenAPIHandler())
	m.Handle("GET /docs", apidocs.DocsHandler())
	m.Handle("GET /docs/", apidocs.DocsHandler())

	m.Handle("POST /v1/projects/{project}/secrets", s.api(write, inProject, withBody|idempotent, s.createSecret))
	m.Handle("GET /v1/projects/{project}/secrets", s.api(read, inProject, 0, s.listSecrets))
	m.Handle("GET /v1/projects/{project}/secrets/{secret}", s.api(read, inSecret, 0, s.getSecret))
	m.Handle("PATCH /v1/projects/{project}/secrets/{secret}", s.api(write, inSecret, withBody|idempotent, s.updateSecret))
	m.Handle("DELETE /v1/projects/{project}/secrets/{secret}", s.api(write, inSecret, 0, s.deleteSecret))

	m.Handle("GET /v1/projects/{project}/secrets/{secret}/versions", s.api(read, inSecret, 0, s.listVersions))
	m.Handle("GET /v1/projects/{project}/secrets/{secret}/versions/{version}", s.api(read, inSecret, 0, s.getVersion))
	m.Handle("POST /v1/projects/{project}/secrets/{secret}/versions/{version}/enable", s.api(write, inSecret, withBody|idempotent, s.versionAction(secrets.ActionEnable)))
	m.Handle("POST /v1/projects/{project}/secrets/{secret}/versions/{version}/disable", s.api(write, inSecret, withBody|idempotent, s.versionAction(secrets.ActionDisable)))
	m.Handle("POST /v1/projects/{project}/secrets/{secret}/versions/{version}/destroy", s.api(write, inSecret, withBody|idempotent, s.versionAction(secrets.ActionDestroy)))

	m.Handle("GET /v1/projects/{project}/secrets/{secret}/resolutions", s.api(read, inSecret, 0, s.listResolutions))

	m.Handle("POST /v1/projects/{project}/api-keys", s.api(admin, inProject, withBody|idempotent|shownOnce, s.createAPIKey))
	m.Handle("GET /v1/projects/{project}/api-keys", s.api(admin, inProject, 0, s.listAPIKeys))
	m.Handle("DELETE /v1/projects/{project}/api-keys/{id}", s.api(admin, inAPIKey, 0, s.revokeAPIKey))
}
