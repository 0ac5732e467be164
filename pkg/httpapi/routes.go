package httpapi

import (
	"github.com/mobius-secrets/mobius/pkg/apidocs"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// routes lists every route of the API.
func (s *server) routes() {
	const (
		read    = secrets.ScopeRead
		write   = secrets.ScopeWrite
		admin   = secrets.ScopeKeyAdmin
		resolve = secrets.ScopeResolve
	)
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.Handle("GET /openapi.json", apidocs.OpenAPIHandler())
	m.Handle("GET /docs", apidocs.DocsHandler())
	m.Handle("GET /docs/", apidocs.DocsHandler())

	m.Handle("POST /v1/projects/{project}/secrets", s.idempotentAPI(write, inProject, withBody, s.createSecret, renderCreatedSecret))
	m.Handle("GET /v1/projects/{project}/secrets", s.api(read, inProject, 0, s.listSecrets))
	m.Handle("GET /v1/projects/{project}/secrets/{secret}", s.api(read, inSecret, 0, s.getSecret))
	m.Handle("PATCH /v1/projects/{project}/secrets/{secret}", s.idempotentAPI(write, inSecret, withBody, s.updateSecret, renderSecret))
	m.Handle("DELETE /v1/projects/{project}/secrets/{secret}", s.api(write, inSecret, 0, s.deleteSecret))

	m.Handle("GET /v1/projects/{project}/secrets/{secret}/versions", s.api(read, inSecret, 0, s.listVersions))
	m.Handle("GET /v1/projects/{project}/secrets/{secret}/versions/{version}", s.api(read, inSecret, 0, s.getVersion))
	m.Handle("POST /v1/projects/{project}/secrets/{secret}/versions/{version}/enable", s.idempotentAPI(write, inSecret, withBody, s.versionAction(secrets.ActionEnable), renderVersion))
	m.Handle("POST /v1/projects/{project}/secrets/{secret}/versions/{version}/disable", s.idempotentAPI(write, inSecret, withBody, s.versionAction(secrets.ActionDisable), renderVersion))
	m.Handle("POST /v1/projects/{project}/secrets/{secret}/versions/{version}/destroy", s.idempotentAPI(write, inSecret, withBody, s.versionAction(secrets.ActionDestroy), renderVersion))

	m.Handle("POST /v1/projects/{project}/secrets/{secret}/versions/{version}/promote", s.idempotentAPI(write, inSecret, withBody, s.versionAction(secrets.ActionPromote), renderVersion))
	m.Handle("DELETE /v1/projects/{project}/secrets/{secret}/aliases/{alias}", s.api(write, inSecret, 0, s.deleteAlias))

	m.Handle("GET /v1/projects/{project}/secrets/{secret}/resolutions", s.api(read, inSecret, 0, s.listResolutions))
	m.Handle("GET /v1/projects/{project}/secrets/{secret}/consumers", s.api(read, inSecret, 0, s.listConsumers))
	m.Handle("POST /v1/projects/{project}/references/check", s.api(read, inProject, withBody, s.checkReferences))

	m.Handle("GET /v1/projects/{project}/events", s.api(read, inProject, 0, s.listEvents))
	m.Handle("GET /v1/projects/{project}/trash", s.api(read, inProject, 0, s.listTrash))
	m.Handle("POST /v1/projects/{project}/trash/{id}/restore", s.idempotentAPI(write, inTrash, withBody, s.restoreSecret, renderSecret))
	m.Handle("DELETE /v1/projects/{project}/trash/{id}", s.api(write, inTrash, 0, s.purgeTrash))

	m.Handle("POST /v1/projects/{project}/resolve-grants", s.idempotentAPI(resolve, inProject, withBody|shownOnce, s.createGrant, renderCreatedGrant))
	m.Handle("GET /v1/projects/{project}/resolve-grants", s.api(resolve, inProject, 0, s.listGrants))
	m.Handle("DELETE /v1/projects/{project}/resolve-grants/{id}", s.api(resolve, inGrant, 0, s.revokeGrant))

	m.Handle("POST /v1/projects/{project}/api-keys", s.idempotentAPI(admin, inProject, withBody|shownOnce, s.createAPIKey, renderCreatedAPIKey))
	m.Handle("GET /v1/projects/{project}/api-keys", s.api(admin, inProject, 0, s.listAPIKeys))
	m.Handle("DELETE /v1/projects/{project}/api-keys/{id}", s.api(admin, inAPIKey, 0, s.revokeAPIKey))
}
