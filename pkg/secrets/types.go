package secrets

import (
	"encoding/json"
	"time"
)

// State is the lifecycle state of a version.
type State string

const (
	Enabled   State = "ENABLED"   // the current value; at most one per secret
	Disabled  State = "DISABLED"  // kept, not in use; may be enabled again
	Destroyed State = "DESTROYED" // ciphertext purged for good; metadata kept
)

// Valid reports whether s is one of the three states.
func (s State) Valid() bool { return s == Enabled || s == Disabled || s == Destroyed }

// Secret is a named slot in a project. ID never changes; Name may.
type Secret struct {
	ID             string
	Project        string
	Name           string
	Description    string
	CurrentVersion int // the ENABLED version, 0 while none is
	LatestVersion  int // the highest version number ever written
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// Revision increases by one with every change to the secret or any of
	// its versions. Stores use it as the condition of every write (optimistic
	// concurrency); the HTTP layer derives the ETag from it.
	Revision int64
}

// Version is one frozen set of values of a secret. Only State and
// StateChangedAt ever change, and Ciphertext is removed on destroy.
type Version struct {
	Project        string
	SecretID       string
	Number         int
	State          State
	SHA256         string   // lowercase hex SHA-256 of the canonical plaintext
	Keys           []string // sorted value keys
	CreatedAt      time.Time
	StateChangedAt time.Time
	// Ciphertext is the sealed envelope (pkg/envelope) of the canonical
	// plaintext, bound to Project, SecretID and Number. Nil once DESTROYED.
	Ciphertext []byte
}

// Scopes an API key may hold.
const (
	ScopeRead     = "secrets:read"
	ScopeWrite    = "secrets:write"
	ScopeKeyAdmin = "keys:admin"
)

// AllScopes lists every scope, in a stable order.
var AllScopes = []string{ScopeRead, ScopeWrite, ScopeKeyAdmin}

// APIKey is a project credential. Only the SHA-256 of the key is stored.
type APIKey struct {
	ID         string
	Project    string
	Name       string
	Scopes     []string
	Hash       string // lowercase hex SHA-256 of the full key string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero if never used
}

// HasScope reports whether k holds scope.
func (k *APIKey) HasScope(scope string) bool {
	for _, s := range k.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// IdempotencyRecord remembers the response to a request made with an
// Idempotency-Key, so that a retry replays it instead of writing again.
type IdempotencyRecord struct {
	Project     string
	Key         string
	RequestHash string // hex SHA-256 over method, path and body
	Done        bool   // false while the first request is still in flight
	Status      int
	Header      map[string]string // response headers worth replaying (ETag, Location)
	Body        []byte            // never contains a plaintext value
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Resolution is one audit record of a resolve call reading a secret. It never
// holds a value.
type Resolution struct {
	ID         string // time-ordered (ULID), so ID order is time order
	Project    string
	SecretID   string
	SecretName string
	Version    int
	Keys       []string        // the value keys that were substituted, sorted
	Run        json.RawMessage // the caller's run and step identifiers, as given
	ResolvedAt time.Time
}

// Current is a secret together with its ENABLED version (nil if none).
type Current struct {
	Secret  *Secret
	Version *Version
}
