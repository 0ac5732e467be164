package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/mobius-secrets/mobius/pkg/api"
)

// ResolveGrant is a resolve grant as listed: a short-lived credential of
// the resolve function that lets one run resolve references to the secrets
// it names, and nothing else. The grant string itself is never listed.
type ResolveGrant struct {
	api.ResolveGrant
	Raw json.RawMessage `json:"-"`
}

// CreatedResolveGrant is a new grant with its string (Grant, mbg_…): the
// only answer that shows it.
type CreatedResolveGrant struct {
	api.ResolveGrantCreated
	Raw json.RawMessage `json:"-"`
}

// ResolveGrantPage is one page of the project's live grants, oldest first.
type ResolveGrantPage struct {
	Grants        []*ResolveGrant
	NextPageToken string
	Raw           json.RawMessage
}

// ErrResolveGrantsUnsupported is matched (errors.Is) by the error of
// CreateResolveGrant against a server that has no resolve-grants route.
var ErrResolveGrantsUnsupported = errors.New("the server does not issue resolve grants")

// UnsupportedError is an operation the server does not have.
type UnsupportedError struct {
	Endpoint, Operation string
	Err                 *Error // the server's answer
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("the server at %s does not issue resolve grants (%s answered %d): update it, or give a grant made elsewhere", e.Endpoint, e.Operation, e.Err.Status)
}

func (e *UnsupportedError) Is(target error) bool { return target == ErrResolveGrantsUnsupported }

func (e *UnsupportedError) Unwrap() error { return e.Err }

// CreateResolveGrant mints a grant for the project (POST
// /v1/projects/{project}/resolve-grants). Against a server without the
// route it returns an *UnsupportedError (ErrResolveGrantsUnsupported);
// other failures are an *Error or a *ConnError as for every call.
func (c *Client) CreateResolveGrant(ctx context.Context, project string, in api.CreateResolveGrantRequest, opts ...CallOption) (*CreatedResolveGrant, error) {
	if in.Secrets == nil {
		in.Secrets = []string{}
	}
	path := c.grantsPath(project)
	var g CreatedResolveGrant
	resp, err := c.call(ctx, http.MethodPost, path, nil, in, &g, opts...)
	var ae *Error
	if errors.As(err, &ae) && (ae.Status == http.StatusMethodNotAllowed || ae.Status == http.StatusNotFound && ae.Message == "no such route") {
		return nil, &UnsupportedError{Endpoint: c.endpoint, Operation: "POST " + path, Err: ae}
	}
	if err != nil {
		return nil, err
	}
	if g.Grant == "" {
		return nil, &Error{Status: resp.Status, Code: "Invalid Response", Message: fmt.Sprintf("the server's answer to POST %s holds no grant", path)}
	}
	g.Raw = resp.Body
	return &g, nil
}

// ListResolveGrants returns one page of the project's live grants (neither
// expired nor revoked, nor minted by a revoked key), oldest first.
func (c *Client) ListResolveGrants(ctx context.Context, project string, limit int, pageToken string) (*ResolveGrantPage, error) {
	items, next, raw, err := listCall(ctx, c, c.grantsPath(project), pageQuery(limit, pageToken), "grants", func(g *ResolveGrant, r json.RawMessage) { g.Raw = r })
	if err != nil {
		return nil, err
	}
	return &ResolveGrantPage{Grants: items, NextPageToken: next, Raw: raw}, nil
}

// RevokeResolveGrant revokes a grant by its ID (grt_…): resolve refuses it
// at once on the server that takes the request, within 30 seconds
// everywhere.
func (c *Client) RevokeResolveGrant(ctx context.Context, project, id string, opts ...CallOption) error {
	_, err := c.Do(ctx, http.MethodDelete, c.grantsPath(project)+"/"+url.PathEscape(id), nil, nil, opts...)
	return err
}

func (c *Client) grantsPath(project string) string {
	return "/v1/projects/" + c.proj(project) + "/resolve-grants"
}
