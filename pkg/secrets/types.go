package secrets

import (
	"encoding/json"
	"time"
)

// State is the lifecycle state of a version.
type State string

const (
	Enabled   State = "ENABLED"   // the current value; at most one per secret
	Pending   State = "PENDING"   // staged: written, not yet promoted; at most one per secret
	Disabled  State = "DISABLED"  // kept, not in use; may be enabled again
	Destroyed State = "DESTROYED" // ciphertext purged for good; metadata kept
)

// Valid reports whether s is one of the four states.
func (s State) Valid() bool { return s == Enabled || s == Pending || s == Disabled || s == Destroyed }

// Secret is a named slot in a project. ID never changes; Name may.
type Secret struct {
	ID             string
	Project        string
	Name           string
	Description    string
	CurrentVersion int // the ENABLED version, 0 while none is
	LatestVersion  int // the highest version number ever written
	PendingVersion int // the PENDING version (staged, not yet promoted), 0 if none
	// PreviousVersion is the version that was ENABLED before the last
	// rotation, promote or enable; it resolves as @previous until
	// PreviousUntil (0 and zero when none, or when the grace was 0).
	PreviousVersion int
	PreviousUntil   time.Time
	// PreviousGrace is how long the previous value stays resolvable after a
	// rotation (0 to MaxPreviousGrace).
	PreviousGrace time.Duration
	// AliasTTL is how long an old name keeps resolving after a rename (0
	// to MaxAliasTTL; DefaultAliasTTL when the secret is made).
	AliasTTL time.Duration
	// Aliases are the secret's old names that still resolve, each until
	// its time.
	Aliases []Alias
	// Labels are the secret's key: value labels (at most MaxLabels), to
	// organise and filter by. They are metadata: never part of the digest.
	Labels map[string]string
	// ExpiresAt, if set, is when the secret stops resolving (resolve fails
	// NotFound naming the expiry; nothing is deleted). RotateBy, if set, is
	// when it should have been rotated. Reminders of both are events
	// (EventExpiring, EventRotationDue), ReminderLeads before.
	ExpiresAt time.Time
	RotateBy  time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
	// Revision increases by one with every change to the secret or any of
	// its versions. Stores use it as the condition of every write (optimistic
	// concurrency); the HTTP layer derives the ETag from it.
	Revision int64
}

// Alias is an old name of a secret that resolve still follows, until
// Until, after a rename.
type Alias struct {
	Name  string
	Until time.Time
	rev   int64 // the revision of the alias's item, its write condition
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
	// LastResolvedAt is when resolve last read it (to within
	// LastUsedInterval); zero if never. Set by the Service's reads.
	LastResolvedAt time.Time
	// Ciphertext is the sealed envelope (pkg/envelope) of the canonical
	// plaintext, bound to Project, SecretID and Number. Nil once DESTROYED.
	Ciphertext []byte
}

// Scopes an API key may hold.
const (
	ScopeRead     = "secrets:read"
	ScopeWrite    = "secrets:write"
	ScopeKeyAdmin = "keys:admin"
	ScopeResolve  = "secrets:resolve" // mint, list and revoke resolve grants
)

// AllScopes lists every scope, in a stable order.
var AllScopes = []string{ScopeRead, ScopeWrite, ScopeKeyAdmin, ScopeResolve}

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

// Resolution is one audit record of a resolve call reading a secret. It never
// holds a value.
type Resolution struct {
	ID         string // time-ordered (ULID), so ID order is time order
	Project    string
	SecretID   string
	SecretName string
	// Alias is the old name the reference used, when it read the secret
	// through an alias after a rename.
	Alias   string
	Version int
	Keys    []string // the value keys that were substituted, sorted
	// GrantID and KeyID are the grant that authorized the read and the API
	// key that minted it; Run is the grant's run (verified: it is under the
	// grant's MAC). Step is what the caller said of its step, unverified.
	GrantID    string
	KeyID      string
	Run        json.RawMessage
	Step       json.RawMessage
	ResolvedAt time.Time
}
