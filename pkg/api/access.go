package api

import (
	"encoding/json"
	"time"
)

// APIKey is an API key as listed: never the key itself.
type APIKey struct {
	ID         string     `json:"id"` // key_…
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"` // to within 5 minutes; nil if never used
}

// APIKeyCreated answers the creation of an API key: the only time the key
// is shown.
type APIKeyCreated struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	Key       string    `json:"key"` // mbs_…, for Authorization: Bearer
	CreatedAt time.Time `json:"created_at"`
}

// APIKeyList lists a project's API keys, oldest first.
type APIKeyList struct {
	APIKeys       []APIKey `json:"api_keys"`
	NextPageToken string   `json:"next_page_token"`
}

// CreateAPIKeyRequest is the body of POST /v1/projects/{project}/api-keys.
// No scopes is secrets:read only.
type CreateAPIKeyRequest struct {
	Name   string   `json:"name,omitempty"`
	Scopes []string `json:"scopes,omitempty"`
}

// ResolveGrantSecret is one secret a resolve grant covers.
type ResolveGrantSecret struct {
	ID   string `json:"id"`
	Name string `json:"name"` // its name when the grant was minted
}

// ResolveGrant is a resolve grant as listed: never the grant string.
type ResolveGrant struct {
	ID        string               `json:"id"` // grt_…
	Project   string               `json:"project"`
	Secrets   []ResolveGrantSecret `json:"secrets"`
	Run       json.RawMessage      `json:"run"`    // null if none
	KeyID     string               `json:"key_id"` // the API key that minted it
	CreatedAt time.Time            `json:"created_at"`
	ExpiresAt time.Time            `json:"expires_at"`
}

// ResolveGrantCreated answers the minting of a grant: the only time the
// grant string is shown.
type ResolveGrantCreated struct {
	ResolveGrant
	Grant string `json:"grant"` // mbg_…, the credential
}

// ResolveGrantList is a page of the project's live grants, oldest first.
type ResolveGrantList struct {
	Grants        []ResolveGrant `json:"grants"`
	NextPageToken string         `json:"next_page_token"`
}

// CreateResolveGrantRequest is the body of POST
// /v1/projects/{project}/resolve-grants: the secrets (names or IDs) the run
// may resolve, its run (a JSON object, recorded with every read), and how
// long the grant lasts (the server's default, an hour, when nil).
type CreateResolveGrantRequest struct {
	Secrets    []string        `json:"secrets"`
	Run        json.RawMessage `json:"run,omitempty"`
	TTLSeconds *int64          `json:"ttl_seconds,omitempty"`
}

// ReferenceCheck is what a reference check says of one reference (or of an
// object key that holds one): never a value.
type ReferenceCheck struct {
	At           string  `json:"at"`     // JSON Pointer of the string, or of the member whose key holds it
	InKey        bool    `json:"in_key"` // the reference is in an object key
	Reference    string  `json:"reference"`
	WellFormed   bool    `json:"well_formed"`
	SecretExists bool    `json:"secret_exists"`
	SecretID     *string `json:"secret_id"`
	Version      *int    `json:"version"` // the version it selects now; nil if none
	State        *string `json:"state"`
	SHA256       *string `json:"sha256"`
	KeyFound     bool    `json:"key_found"`
	Problem      *string `json:"problem"` // why it would not resolve; nil if it would
	Warning      *string `json:"warning"` // what will break it (a name kept only as an alias)
}

// ReferenceReport answers POST /v1/projects/{project}/references/check.
type ReferenceReport struct {
	OK         bool             `json:"ok"` // no problem at all
	Problems   int              `json:"problems"`
	References []ReferenceCheck `json:"references"`
}
