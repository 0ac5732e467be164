package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Version states.
const (
	StateEnabled   = "ENABLED"
	StateDisabled  = "DISABLED"
	StateDestroyed = "DESTROYED"
)

// Secret is a secret's metadata. It never holds a value.
type Secret struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Description    string    `json:"description"`
	Project        string    `json:"project"`
	CurrentVersion *int      `json:"current_version"` // nil while no version is ENABLED
	LatestVersion  int       `json:"latest_version"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`

	ETag string          `json:"-"` // for IfMatch; set on create, get and update
	Raw  json.RawMessage `json:"-"` // the JSON the API sent
}

// Version is one version's metadata: never its values.
type Version struct {
	Version        int       `json:"version"`
	State          string    `json:"state"`
	SHA256         string    `json:"sha256"`
	Keys           []string  `json:"keys"`
	CreatedAt      time.Time `json:"created_at"`
	StateChangedAt time.Time `json:"state_changed_at"`

	Raw json.RawMessage `json:"-"`
}

// Resolution is one audit record of a resolve call reading the secret.
type Resolution struct {
	Version    int             `json:"version"`
	Keys       []string        `json:"keys"`
	Run        json.RawMessage `json:"run,omitempty"`
	ResolvedAt time.Time       `json:"resolved_at"`

	Raw json.RawMessage `json:"-"`
}

// CreateSecretInput is the body of a create.
type CreateSecretInput struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Values      map[string]string `json:"values"`
}

// UpdateSecretInput is a partial update: nil fields are left as they are;
// non-nil Values writes a new ENABLED version.
type UpdateSecretInput struct {
	Name        *string           `json:"name,omitempty"`
	Description *string           `json:"description,omitempty"`
	Values      map[string]string `json:"values,omitempty"`
}

// SecretPage is one page of a secrets list.
type SecretPage struct {
	Secrets       []*Secret
	NextPageToken string
	Raw           json.RawMessage
}

// VersionPage is one page of a secret's versions, newest first.
type VersionPage struct {
	Versions      []*Version
	NextPageToken string
	Raw           json.RawMessage
}

// ResolutionPage is one page of a secret's resolution audit, newest first.
type ResolutionPage struct {
	Resolutions   []*Resolution
	NextPageToken string
	Raw           json.RawMessage
}

func (c *Client) secret(ctx context.Context, method, path string, body any, opts ...CallOption) (*Secret, error) {
	var s Secret
	resp, err := c.call(ctx, method, path, nil, body, &s, opts...)
	if err != nil {
		return nil, err
	}
	s.Raw, s.ETag = resp.Body, resp.Header.Get("ETag")
	return &s, nil
}

func (c *Client) version(ctx context.Context, method, path string, opts ...CallOption) (*Version, error) {
	var v Version
	resp, err := c.call(ctx, method, path, nil, nil, &v, opts...)
	if err != nil {
		return nil, err
	}
	v.Raw = resp.Body
	return &v, nil
}

// CreateSecret creates a secret whose version 1 holds in.Values, ENABLED.
func (c *Client) CreateSecret(ctx context.Context, project string, in CreateSecretInput, opts ...CallOption) (*Secret, error) {
	return c.secret(ctx, http.MethodPost, c.secretsPath(project), in, opts...)
}

// GetSecret reads a secret by name or ID.
func (c *Client) GetSecret(ctx context.Context, project, secret string) (*Secret, error) {
	return c.secret(ctx, http.MethodGet, c.secretPath(project, secret), nil)
}

// UpdateSecret renames, re-describes and/or rotates a secret.
func (c *Client) UpdateSecret(ctx context.Context, project, secret string, in UpdateSecretInput, opts ...CallOption) (*Secret, error) {
	return c.secret(ctx, http.MethodPatch, c.secretPath(project, secret), in, opts...)
}

// DeleteSecret destroys every version of the secret and frees its name.
func (c *Client) DeleteSecret(ctx context.Context, project, secret string, opts ...CallOption) error {
	_, err := c.Do(ctx, http.MethodDelete, c.secretPath(project, secret), nil, nil, opts...)
	return err
}

// ListSecrets returns one page of the project's secrets in name order.
// limit <= 0 leaves the page size to the server.
func (c *Client) ListSecrets(ctx context.Context, project, prefix string, limit int, pageToken string) (*SecretPage, error) {
	q := pageQuery(limit, pageToken)
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	items, next, raw, err := listCall(ctx, c, c.secretsPath(project), q, "secrets", func(s *Secret, r json.RawMessage) { s.Raw = r })
	if err != nil {
		return nil, err
	}
	return &SecretPage{Secrets: items, NextPageToken: next, Raw: raw}, nil
}

// ListVersions returns one page of the secret's versions, newest first.
func (c *Client) ListVersions(ctx context.Context, project, secret string, limit int, pageToken string) (*VersionPage, error) {
	items, next, raw, err := listCall(ctx, c, c.secretPath(project, secret)+"/versions", pageQuery(limit, pageToken), "versions", func(v *Version, r json.RawMessage) { v.Raw = r })
	if err != nil {
		return nil, err
	}
	return &VersionPage{Versions: items, NextPageToken: next, Raw: raw}, nil
}

// GetVersion reads one version; version is a number or "current".
func (c *Client) GetVersion(ctx context.Context, project, secret, version string) (*Version, error) {
	return c.version(ctx, http.MethodGet, c.versionPath(project, secret, version))
}

// EnableVersion makes the version the ENABLED one; the previous ENABLED
// version becomes DISABLED.
func (c *Client) EnableVersion(ctx context.Context, project, secret, version string, opts ...CallOption) (*Version, error) {
	return c.version(ctx, http.MethodPost, c.versionPath(project, secret, version)+"/enable", opts...)
}

// DisableVersion moves the version to DISABLED.
func (c *Client) DisableVersion(ctx context.Context, project, secret, version string, opts ...CallOption) (*Version, error) {
	return c.version(ctx, http.MethodPost, c.versionPath(project, secret, version)+"/disable", opts...)
}

// DestroyVersion purges the version's ciphertext for good: DESTROYED.
func (c *Client) DestroyVersion(ctx context.Context, project, secret, version string, opts ...CallOption) (*Version, error) {
	return c.version(ctx, http.MethodPost, c.versionPath(project, secret, version)+"/destroy", opts...)
}

// ListResolutions returns one page of the secret's resolution audit.
func (c *Client) ListResolutions(ctx context.Context, project, secret string, limit int, pageToken string) (*ResolutionPage, error) {
	items, next, raw, err := listCall(ctx, c, c.secretPath(project, secret)+"/resolutions", pageQuery(limit, pageToken), "resolutions", func(v *Resolution, r json.RawMessage) { v.Raw = r })
	if err != nil {
		return nil, err
	}
	return &ResolutionPage{Resolutions: items, NextPageToken: next, Raw: raw}, nil
}

// Health checks that the server is alive (GET /healthz, no auth).
func (c *Client) Health(ctx context.Context) error {
	_, err := c.Do(ctx, http.MethodGet, "/healthz", nil, nil)
	return err
}
