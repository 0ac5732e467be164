package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/mobius-secrets/mobius/pkg/api"
)

// ReferenceReport is the answer of a reference check: what each reference
// of the document would resolve to now, never a value.
type ReferenceReport struct {
	api.ReferenceReport
	Raw json.RawMessage `json:"-"`
}

// CheckReferences asks the server what every secret reference in doc (any
// JSON document, such as a loop's parameters) would resolve to now: from
// metadata only, needing only secrets:read. doc is sent as it is.
func (c *Client) CheckReferences(ctx context.Context, project string, doc json.RawMessage) (*ReferenceReport, error) {
	path := "/v1/projects/" + c.proj(project) + "/references/check"
	var rep ReferenceReport
	resp, err := c.call(ctx, http.MethodPost, path, nil, doc, &rep)
	if err != nil {
		return nil, err
	}
	if rep.References == nil {
		return nil, &Error{Status: resp.Status, Code: "Invalid Response", Message: fmt.Sprintf("the server's answer to POST %s holds no references list", path)}
	}
	rep.Raw = resp.Body
	return &rep, nil
}
