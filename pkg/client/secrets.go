package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/mobius-secrets/mobius/pkg/api"
)

// Secret is a secret's metadata as the API answered it. It never holds a
// value.
type Secret struct {
	api.Secret
	ETag string          `json:"-"` // for IfMatch; set on every answer that is one secret
	Raw  json.RawMessage `json:"-"` // the JSON the API sent
}

// Version is one version's metadata: never its values.
type Version struct {
	api.Version
	Raw json.RawMessage `json:"-"`
}

// Resolution is one audit record of a resolve call reading the secret.
type Resolution struct {
	api.Resolution
	Raw json.RawMessage `json:"-"`
}

// ConsumerList is who read each version of a secret since a time.
type ConsumerList struct {
	api.ConsumerList
	Raw json.RawMessage `json:"-"`
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
func (c *Client) CreateSecret(ctx context.Context, project string, in api.CreateSecretRequest, opts ...CallOption) (*Secret, error) {
	return c.secret(ctx, http.MethodPost, c.secretsPath(project), in, opts...)
}

// GetSecret reads a secret by name or ID.
func (c *Client) GetSecret(ctx context.Context, project, secret string) (*Secret, error) {
	return c.secret(ctx, http.MethodGet, c.secretPath(project, secret), nil)
}

// UpdateSecret renames, re-describes, relabels, re-dates and/or rotates a
// secret: in.Values writes a new version, ENABLED or (in.Stage
// api.StatePending) staged.
func (c *Client) UpdateSecret(ctx context.Context, project, secret string, in api.UpdateSecretRequest, opts ...CallOption) (*Secret, error) {
	return c.secret(ctx, http.MethodPatch, c.secretPath(project, secret), in, opts...)
}

// DeleteSecret moves the secret to the trash and frees its name
// (RestoreSecret brings it back; PurgeSecret skips the trash).
func (c *Client) DeleteSecret(ctx context.Context, project, secret string, opts ...CallOption) error {
	_, err := c.Do(ctx, http.MethodDelete, c.secretPath(project, secret), nil, nil, opts...)
	return err
}

// DeleteAlias ends an old name of the secret before its time: references
// by that name stop resolving, and the name is free. It answers the secret
// as it now is.
func (c *Client) DeleteAlias(ctx context.Context, project, secret, alias string) (*Secret, error) {
	return c.secret(ctx, http.MethodDelete, c.secretPath(project, secret)+"/aliases/"+url.PathEscape(alias), nil)
}

// ListSecrets returns one page of the project's secrets in name order.
// limit <= 0 leaves the page size to the server.
func (c *Client) ListSecrets(ctx context.Context, project, prefix string, limit int, pageToken string) (*SecretPage, error) {
	return c.ListSecretsWith(ctx, project, ListSecretsQuery{Prefix: prefix, Limit: limit, PageToken: pageToken})
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

// PromoteVersion makes the PENDING version the ENABLED one, and the
// previous ENABLED version DISABLED (resolvable as @previous for the
// secret's grace), in one step.
func (c *Client) PromoteVersion(ctx context.Context, project, secret, version string, opts ...CallOption) (*Version, error) {
	return c.version(ctx, http.MethodPost, c.versionPath(project, secret, version)+"/promote", opts...)
}

// DisableVersion moves the version to DISABLED. A version resolved in the
// last hour is refused (409) unless opts holds Force.
func (c *Client) DisableVersion(ctx context.Context, project, secret, version string, opts ...CallOption) (*Version, error) {
	return c.version(ctx, http.MethodPost, c.versionPath(project, secret, version)+"/disable", opts...)
}

// DestroyVersion purges the version's ciphertext for good: DESTROYED. A
// version resolved in the last hour is refused (409) unless opts holds
// Force.
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

// Consumers says who read each version of the secret since since: an RFC
// 3339 time, or a Go duration back from the server's clock ("24h"); "" is
// the server's default, the last 24 hours.
func (c *Client) Consumers(ctx context.Context, project, secret, since string) (*ConsumerList, error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	var out ConsumerList
	resp, err := c.call(ctx, http.MethodGet, c.secretPath(project, secret)+"/consumers", q, nil, &out)
	if err != nil {
		return nil, err
	}
	out.Raw = resp.Body
	return &out, nil
}

// Health checks that the server is alive (GET /healthz, no auth).
func (c *Client) Health(ctx context.Context) error {
	_, err := c.Do(ctx, http.MethodGet, "/healthz", nil, nil)
	return err
}
