package secrets

import (
	"context"
	"time"
)

// Store persists the domain. It sees only metadata and ciphertext.
//
// Every method returns *Error values for the conditions it names (NotFound,
// Conflict, Aborted); any other error is a dependency failure, which the
// store should report as Unavailable when it is transient. A Store never
// returns (nil, nil) for a missing object.
//
// Values returned are copies the caller may keep and modify.
type Store interface {
	// CreateSecret atomically stores s, its name and its first version v.
	// Conflict if the name is taken in the project; nothing is written then.
	CreateSecret(ctx context.Context, s *Secret, v *Version) error

	// GetSecret returns the secret by immutable ID. NotFound if absent.
	GetSecret(ctx context.Context, project, id string) (*Secret, error)

	// GetSecretByName returns the secret that holds name. NotFound if absent.
	GetSecretByName(ctx context.Context, project, name string) (*Secret, error)

	// ListSecrets returns at most q.Limit secrets of the project whose names
	// start with q.Prefix and sort strictly after q.After, in byte order of name.
	ListSecrets(ctx context.Context, project string, q ListQuery) ([]*Secret, error)

	// UpdateSecret applies u atomically: all of it, or nothing. Aborted if the
	// stored revision is not u.PrevRevision (or the secret is gone: NotFound),
	// or if u.Put's number already exists, or a change's From state does not
	// match; Conflict if u renames the secret to a name that is taken.
	UpdateSecret(ctx context.Context, u *Update) error

	// DeleteSecret removes the secret, frees its name, and removes its
	// versions (ciphertext included). Aborted if the stored revision is not
	// prevRevision; NotFound if absent. The secret and its name disappear
	// atomically; a store that cannot delete every version in the same
	// transaction must delete them right after.
	DeleteSecret(ctx context.Context, project, id string, prevRevision int64) error

	// GetVersion returns version n of the secret, with its ciphertext.
	// NotFound if absent.
	GetVersion(ctx context.Context, project, secretID string, n int) (*Version, error)

	// ListVersions returns at most limit versions of the secret numbered
	// below before (all, if before <= 0), newest first, with ciphertext
	// omitted (nil).
	ListVersions(ctx context.Context, project, secretID string, before, limit int) ([]*Version, error)

	// CurrentVersions returns, for each of names that exists in the project,
	// the secret and its ENABLED version with ciphertext (Version nil when no
	// version is ENABLED). Names that do not exist are absent from the map.
	// Reads are strongly consistent.
	CurrentVersions(ctx context.Context, project string, names []string) (map[string]*Current, error)

	// CreateAPIKey stores k. Conflict if its ID or hash exists.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// GetAPIKeyByHash returns the key whose Hash is hash. NotFound if absent.
	GetAPIKeyByHash(ctx context.Context, hash string) (*APIKey, error)
	// ListAPIKeys returns the project's keys, oldest first.
	ListAPIKeys(ctx context.Context, project string) ([]*APIKey, error)
	// DeleteAPIKey revokes the key. NotFound if absent from the project.
	DeleteAPIKey(ctx context.Context, project, id string) error
	// TouchAPIKey records that the key was used at t. NotFound if absent.
	TouchAPIKey(ctx context.Context, project, id string, t time.Time) error

	// CreateIdempotency stores r unless a record with the same project and
	// key exists whose ExpiresAt is after r.CreatedAt: then Conflict.
	CreateIdempotency(ctx context.Context, r *IdempotencyRecord) error
	// GetIdempotency returns the record. NotFound if absent or expired at now.
	GetIdempotency(ctx context.Context, project, key string, now time.Time) (*IdempotencyRecord, error)
	// CompleteIdempotency replaces the stored record with r (Done set).
	CompleteIdempotency(ctx context.Context, r *IdempotencyRecord) error
	// DeleteIdempotency removes the record; absent is not an error.
	DeleteIdempotency(ctx context.Context, project, key string) error

	// AddResolutions stores audit records.
	AddResolutions(ctx context.Context, rs []*Resolution) error
	// ListResolutions returns at most limit records of the secret whose ID
	// sorts before beforeID (all, if empty), newest first.
	ListResolutions(ctx context.Context, project, secretID, beforeID string, limit int) ([]*Resolution, error)
}

// ListQuery selects a page of secrets by name.
type ListQuery struct {
	Prefix string
	After  string
	Limit  int
}

// Update is one atomic change to a secret and its versions.
type Update struct {
	// Secret is the new record; its Revision is PrevRevision+1.
	Secret       *Secret
	PrevRevision int64
	// OldName is set when the update renames the secret: the old name is
	// freed and Secret.Name claimed in the same transaction.
	OldName string
	// Put, if set, is a new version to add; its number must not exist.
	Put *Version
	// Changes move existing versions between states.
	Changes []StateChange
}

// StateChange moves version Number from state From to To at time At. A
// change to Destroyed removes the version's ciphertext.
type StateChange struct {
	Number int
	From   State
	To     State
	At     time.Time
}

// KeyWrapper protects data keys: a local key file or a KMS key.
type KeyWrapper interface {
	// GenerateDataKey returns a fresh 256-bit data key and that key wrapped
	// under the wrapper's key, bound to context. The caller zeroes plaintext.
	// Unavailable when the key service cannot be reached.
	GenerateDataKey(ctx context.Context, context map[string]string) (plaintext, wrapped []byte, err error)
	// UnwrapDataKey returns the data key inside wrapped. Integrity if wrapped
	// was altered, or was made under another key or another context;
	// Unavailable when the key service cannot be reached.
	UnwrapDataKey(ctx context.Context, wrapped []byte, context map[string]string) ([]byte, error)
}
