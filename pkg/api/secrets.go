package api

import (
	"encoding/json"
	"time"
)

// Secret is a secret's metadata, as create, get, update, restore and the
// alias deletion answer it. It never holds a value.
type Secret struct {
	ID             string `json:"id"` // sec_…, immutable
	Name           string `json:"name"`
	Description    string `json:"description"`
	Project        string `json:"project"`
	CurrentVersion *int   `json:"current_version"` // the ENABLED version; nil while none is
	LatestVersion  int    `json:"latest_version"`  // the highest version number written so far
	PendingVersion *int   `json:"pending_version"` // the PENDING version; nil while none is
	// PreviousVersion is the version ENABLED before the last rotation,
	// promote or enable, which @previous references resolve until
	// PreviousUntil; both nil when there is none or the secret keeps no
	// grace for it.
	PreviousVersion *int       `json:"previous_version"`
	PreviousUntil   *time.Time `json:"previous_until"`
	// PreviousGraceSeconds is how long a replaced version stays resolvable
	// as @previous (0 to 604800); RenameAliasSeconds how long an old name
	// keeps resolving after a rename (0 to 2592000).
	PreviousGraceSeconds int64 `json:"previous_grace_seconds"`
	RenameAliasSeconds   int64 `json:"rename_alias_seconds"`
	// Aliases are the old names that references still resolve, each until
	// its time; never nil in an answer.
	Aliases []SecretAlias `json:"aliases"`
	// Labels are the secret's key: value labels ({} when none).
	Labels map[string]string `json:"labels"`
	// ExpiresAt (after which references fail) and RotateBy (a reminder),
	// nil when unset.
	ExpiresAt *time.Time `json:"expires_at"`
	RotateBy  *time.Time `json:"rotate_by"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// SecretAlias is an old name of a secret that references resolve until
// Until.
type SecretAlias struct {
	Name  string    `json:"name"`
	Until time.Time `json:"until"`
}

// SecretList is a page of secrets in name order, answering GET
// /v1/projects/{project}/secrets. A filtered page may be short, or empty,
// with a NextPageToken: read on until it is "".
type SecretList struct {
	Secrets       []Secret `json:"secrets"`
	NextPageToken string   `json:"next_page_token"` // "" on the last page
}

// Version is one version's metadata; it never holds a value.
type Version struct {
	Number         int        `json:"version"`
	State          string     `json:"state"`  // one of the State constants
	SHA256         string     `json:"sha256"` // lowercase hex SHA-256 of the RFC 8785 values
	Keys           []string   `json:"keys"`   // the value keys, sorted
	CreatedAt      time.Time  `json:"created_at"`
	StateChangedAt time.Time  `json:"state_changed_at"`
	LastResolvedAt *time.Time `json:"last_resolved_at"` // to within 5 minutes; nil if never
}

// VersionList is a page of a secret's versions, newest first.
type VersionList struct {
	Versions      []Version `json:"versions"`
	NextPageToken string    `json:"next_page_token"`
}

// Resolution is one audit record of a resolve call reading the secret:
// never a value.
type Resolution struct {
	Version int      `json:"version"`
	Keys    []string `json:"keys"` // the keys substituted, sorted
	// GrantID and KeyID are the grant that authorized the read and the API
	// key that minted it ("" for a record written without one).
	GrantID string `json:"grant_id"`
	KeyID   string `json:"key_id"`
	// Run is the grant's run (verified), null if it names none; Step is the
	// caller's own account of its step (unverified), null if none.
	Run        json.RawMessage `json:"run"`
	Step       json.RawMessage `json:"step"`
	ResolvedAt time.Time       `json:"resolved_at"`
}

// ResolutionList is a page of a secret's resolution audit, newest first.
type ResolutionList struct {
	Resolutions   []Resolution `json:"resolutions"`
	NextPageToken string       `json:"next_page_token"`
}

// ConsumerList answers GET …/secrets/{secret}/consumers: who read each
// version since a time, from the resolution audit.
type ConsumerList struct {
	Since time.Time `json:"since"` // the start of the window, as the server read it
	// Truncated says the window held more records than were read: older
	// reads are left out.
	Truncated bool               `json:"truncated"`
	Versions  []VersionConsumers `json:"versions"` // newest first
}

// VersionConsumers is who read one version.
type VersionConsumers struct {
	Version        int        `json:"version"`
	State          string     `json:"state"`
	LastResolvedAt *time.Time `json:"last_resolved_at"`
	// Consumers are the runs and steps that read it in the window, the
	// most recently seen first; empty when it was last read before it.
	Consumers []Consumer `json:"consumers"`
}

// Consumer is one run and step that read a version: the grant's run
// (verified) and the caller's step (not), the grants (at most 10), how
// many reads, and the last.
type Consumer struct {
	Run      json.RawMessage `json:"run"`
	Step     json.RawMessage `json:"step"`
	GrantIDs []string        `json:"grant_ids"`
	Count    int             `json:"count"`
	LastSeen time.Time       `json:"last_seen"`
}

// CreateSecretRequest is the body of POST /v1/projects/{project}/secrets:
// a secret whose version 1 holds Values, ENABLED. Absent optional fields
// take the server's defaults (no labels or dates, no previous grace,
// a 7-day rename alias).
type CreateSecretRequest struct {
	Name                 string            `json:"name"`
	Description          string            `json:"description,omitempty"`
	Values               map[string]string `json:"values"`
	Labels               map[string]string `json:"labels,omitempty"`
	ExpiresAt            *time.Time        `json:"expires_at,omitempty"`
	RotateBy             *time.Time        `json:"rotate_by,omitempty"`
	PreviousGraceSeconds *int64            `json:"previous_grace_seconds,omitempty"`
	RenameAliasSeconds   *int64            `json:"rename_alias_seconds,omitempty"`
}

// UpdateSecretRequest is the body of PATCH …/secrets/{secret}: absent (nil,
// zero) fields are left as they are.
//
// Values writes a new version: ENABLED (the previous ENABLED one becomes
// DISABLED), or, with Stage StatePending, PENDING until it is promoted;
// ReplacePending lets it replace a PENDING version (409 without). Labels,
// when not nil, replace the secret's labels as a whole (an empty map
// removes them). ExpiresAt and RotateBy set a date, or clear it
// (NullableTime.Null).
type UpdateSecretRequest struct {
	Name                 *string            `json:"name,omitempty"`
	Description          *string            `json:"description,omitempty"`
	Values               map[string]string  `json:"values,omitempty"`
	Stage                string             `json:"stage,omitempty"`
	ReplacePending       bool               `json:"replace_pending,omitempty"`
	PreviousGraceSeconds *int64             `json:"previous_grace_seconds,omitempty"`
	RenameAliasSeconds   *int64             `json:"rename_alias_seconds,omitempty"`
	Labels               *map[string]string `json:"labels,omitempty"`
	ExpiresAt            NullableTime       `json:"expires_at,omitzero"`
	RotateBy             NullableTime       `json:"rotate_by,omitzero"`
}

// NullableTime is a date field of an update, which has three forms: absent
// (the zero NullableTime: left as it is, and omitted with omitzero), null
// (Null: cleared), or a time.
type NullableTime struct {
	Time time.Time
	Null bool
}

// SetTime is a NullableTime that sets the date to t.
func SetTime(t time.Time) NullableTime { return NullableTime{Time: t} }

// ClearTime is a NullableTime that clears the date.
func ClearTime() NullableTime { return NullableTime{Null: true} }

// IsZero reports whether n is absent.
func (n NullableTime) IsZero() bool { return !n.Null && n.Time.IsZero() }

// MarshalJSON is the RFC 3339 time in UTC, or null.
func (n NullableTime) MarshalJSON() ([]byte, error) {
	if n.Null || n.Time.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(n.Time.UTC().Format(timeLayout))
}

// UnmarshalJSON reads null (Null) or an RFC 3339 time.
func (n *NullableTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = NullableTime{Null: true}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return err
	}
	*n = NullableTime{Time: t}
	return nil
}
