package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Scopes an API key may hold.
const (
	ScopeRead     = "secrets:read"
	ScopeWrite    = "secrets:write"
	ScopeKeyAdmin = "keys:admin"
)

// APIKey is a project credential. Key is set only in the answer to
// CreateAPIKey, the one time it is shown.
type APIKey struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	Key        string     `json:"key,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`

	Raw json.RawMessage `json:"-"`
}

// APIKeyList is the list of a project's keys.
type APIKeyList struct {
	APIKeys       []*APIKey
	NextPageToken string
	Raw           json.RawMessage
}

// CreateAPIKeyInput is the body of a key creation. With no scopes the
// server grants secrets:read only.
type CreateAPIKeyInput struct {
	Name   string   `json:"name,omitempty"`
	Scopes []string `json:"scopes,omitempty"`
}

// CreateAPIKey makes a key for the project; the answer holds the key, shown
// this once.
func (c *Client) CreateAPIKey(ctx context.Context, project string, in CreateAPIKeyInput, opts ...CallOption) (*APIKey, error) {
	var k APIKey
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
