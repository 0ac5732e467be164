package httpapi

import (
	"encoding/json"
	"time"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// SecretJSON is a secret as the API shows it.
type SecretJSON struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Description    string    `json:"description"`
	Project        string    `json:"project"`
	CurrentVersion *int      `json:"current_version"` // null while no version is ENABLED
	LatestVersion  int       `json:"latest_version"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// VersionJSON is a version's metadata; it never holds a value.
type VersionJSON struct {
	Version        int       `json:"version"`
	State          string    `json:"state"`
	SHA256         string    `json:"sha256"`
	Keys           []string  `json:"keys"`
	CreatedAt      time.Time `json:"created_at"`
	StateChangedAt time.Time `json:"state_changed_at"`
}

// ResolutionJSON is one audit record of a resolve call.
type ResolutionJSON struct {
	Version    int             `json:"version"`
	Keys       []string        `json:"keys"`
	Run        json.RawMessage `json:"run"` // null when the caller gave none
	ResolvedAt time.Time       `json:"resolved_at"`
}

// APIKeyJSON is an API key as listed; never the key itself.
type APIKeyJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"` // null if never used
}

// CreatedAPIKeyJSON answers the creation of an API key: the only time the
// key is shown.
type CreatedAPIKeyJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	Key       string    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
}

// SecretListJSON is a page of secrets.
type SecretListJSON struct {
	Secrets       []SecretJSON `json:"secrets"`
	NextPageToken string       `json:"next_page_token"` // "" on the last page
}

// VersionListJSON is a page of versions, newest first.
type VersionListJSON struct {
	Versions      []VersionJSON `json:"versions"`
	NextPageToken string        `json:"next_page_token"`
}

// ResolutionListJSON is a page of resolution audit records, newest first.
type ResolutionListJSON struct {
	Resolutions   []ResolutionJSON `json:"resolutions"`
	NextPageToken string           `json:"next_page_token"`
}

// APIKeyListJSON lists a project's API keys, oldest first.
type APIKeyListJSON struct {
	APIKeys       []APIKeyJSON `json:"api_keys"`
	NextPageToken string       `json:"next_page_token"`
}

// CreateSecretRequest is the body of POST /v1/projects/{project}/secrets.
type CreateSecretRequest struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Values      map[string]string `json:"values"`
}

// UpdateSecretRequest is the body of PATCH .../secrets/{secret}; absent
// fields are left as they are.
type UpdateSecretRequest struct {
	Name        *string           `json:"name,omitempty"`
	Description *string           `json:"description,omitempty"`
	Values      map[string]string `json:"values,omitempty"`
}

// CreateAPIKeyRequest is the body of POST /v1/projects/{project}/api-keys.
type CreateAPIKeyRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes,omitempty"`
}

// ErrorJSON is the error envelope: {"error": {...}}.
type ErrorJSON struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody describes an error; Code is the status text of Status.
type ErrorBody struct {
	Code    string `json:"code"`
	Status  int    `json:"status"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// HealthJSON answers GET /healthz.
type HealthJSON struct {
	Status string `json:"status"`
}

func secretJSON(s *secrets.Secret) SecretJSON {
	out := SecretJSON{
		ID: s.ID, Name: s.Name, Description: s.Description, Project: s.Project,
		LatestVersion: s.LatestVersion, CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC(),
	}
	if s.CurrentVersion != 0 {
		// Points into s, which is encoded before anyone could change it.
		out.CurrentVersion = &s.CurrentVersion
	}
	return out
}

func versionJSON(v *secrets.Version) VersionJSON {
	keys := v.Keys
	if keys == nil {
		keys = []string{}
	}
	return VersionJSON{
		Version: v.Number, State: string(v.State), SHA256: v.SHA256, Keys: keys,
		CreatedAt: v.CreatedAt.UTC(), StateChangedAt: v.StateChangedAt.UTC(),
	}
}

func resolutionJSON(r *secrets.Resolution) ResolutionJSON {
	keys := r.Keys
	if keys == nil {
		keys = []string{}
	}
	run := r.Run
	if len(run) == 0 || !json.Valid(run) {
		run = json.RawMessage("null")
	}
	return ResolutionJSON{Version: r.Version, Keys: keys, Run: run, ResolvedAt: r.ResolvedAt.UTC()}
}

func apiKeyJSON(k *secrets.APIKey) APIKeyJSON {
	out := APIKeyJSON{ID: k.ID, Name: k.Name, Scopes: scopesOf(k), CreatedAt: k.CreatedAt.UTC()}
	if !k.LastUsedAt.IsZero() {
		t := k.LastUsedAt.UTC()
		out.LastUsedAt = &t
	}
	return out
}

func scopesOf(k *secrets.APIKey) []string {
	if k.Scopes == nil {
		return []string{}
	}
	return k.Scopes
}
