package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/mobius-secrets/mobius/pkg/api"
)

// APIKey is a project credential as listed: never the key itself.
type APIKey struct {
	api.APIKey
	Raw json.RawMessage `json:"-"`
}

// CreatedAPIKey is a new API key, with the key itself: the one time it is
// shown.
type CreatedAPIKey struct {
	api.APIKeyCreated
	Raw json.RawMessage `json:"-"`
}

// APIKeyList is the list of a project's keys.
type APIKeyList struct {
	APIKeys       []*APIKey
	NextPageToken string
	Raw           json.RawMessage
}

// CreateAPIKey makes a key for the project (with no scopes, secrets:read
// only); the answer holds the key, shown this once.
func (c *Client) CreateAPIKey(ctx context.Context, project string, in api.CreateAPIKeyRequest, opts ...CallOption) (*CreatedAPIKey, error) {
	var k CreatedAPIKey
	resp, err := c.call(ctx, http.MethodPost, c.keysPath(project), nil, in, &k, opts...)
	if err != nil {
		return nil, err
	}
	k.Raw = resp.Body
	return &k, nil
}

// ListAPIKeys lists the project's keys (never the key strings).
func (c *Client) ListAPIKeys(ctx context.Context, project string) (*APIKeyList, error) {
	items, next, raw, err := listCall(ctx, c, c.keysPath(project), nil, "api_keys", func(k *APIKey, r json.RawMessage) { k.Raw = r })
	if err != nil {
		return nil, err
	}
	return &APIKeyList{APIKeys: items, NextPageToken: next, Raw: raw}, nil
}

// RevokeAPIKey deletes a key; it stops working at once.
func (c *Client) RevokeAPIKey(ctx context.Context, project, id string) error {
	_, err := c.Do(ctx, http.MethodDelete, c.keysPath(project)+"/"+url.PathEscape(id), nil, nil)
	return err
}
