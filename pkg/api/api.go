// Package api holds the JSON bodies of the Mobius Secrets HTTP API: every
// request and response body, as the server (pkg/httpapi) writes and reads
// them and the Go client (pkg/client) sends and decodes them. The OpenAPI
// document (pkg/apidocs) describes the same bodies; a test keeps each type's
// fields equal to its schema's properties.
//
// No type here ever holds a plaintext value except the Values of the
// requests that write a version (CreateSecretRequest, UpdateSecretRequest).
// Times are RFC 3339 UTC. A field the API sends as null is a pointer (or a
// json.RawMessage of null), nil when null.
//
// It imports the standard library only.
package api

import "time"

// Version states (Version.State).
const (
	StateEnabled   = "ENABLED"   // the current value, what plain references read
	StatePending   = "PENDING"   // staged: read only by @pending references until promoted
	StateDisabled  = "DISABLED"  // kept, not in use; may be enabled again
	StateDestroyed = "DESTROYED" // ciphertext purged for good; metadata kept for audit
)

// Scopes an API key may hold (APIKey.Scopes).
const (
	ScopeRead     = "secrets:read"    // every GET of secrets, versions, audit, events, trash
	ScopeWrite    = "secrets:write"   // create, update, delete, version actions, trash
	ScopeKeyAdmin = "keys:admin"      // the api-keys routes
	ScopeResolve  = "secrets:resolve" // mint, list and revoke resolve grants
)

// Error is the envelope of every error answer: {"error": {...}}.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody describes an error. Code is the text of Status ("Not Found");
// Message is for people and never contains a value; Field names the request
// field, parameter or header at fault, when there is one.
type ErrorBody struct {
	Code    string `json:"code"`
	Status  int    `json:"status"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Health answers GET /healthz.
type Health struct {
	Status string `json:"status"` // "ok"
}

// timeLayout is how a request writes a time: RFC 3339 in UTC, to the
// precision it has.
const timeLayout = time.RFC3339Nano
