package api

import "time"

// Event is one change of the feed (GET /v1/projects/{project}/events). It
// never holds a value; the fields that do not apply to its type are nil.
type Event struct {
	ID       string  `json:"id"`   // evt_…; ID order is the feed's order
	Type     string  `json:"type"` // secret.created, version.promoted, …
	Project  string  `json:"project"`
	SecretID *string `json:"secret_id"` // nil for API key events
	Name     *string `json:"name"`      // the secret's name as of the event
	Version  *int    `json:"version"`
	SHA256   *string `json:"sha256"`
	State    *string `json:"state"` // the version's state after the event
	// KeyID is, for api_key.*, the key created or revoked; otherwise the
	// API key that made the change, nil for the server's own changes.
	KeyID *string   `json:"key_id"`
	At    time.Time `json:"at"`
}

// EventList is a page of the feed, oldest first. NextAfter is the after of
// the next call (the given one when the page is empty); More says whether
// more events are ready after it.
type EventList struct {
	Events    []Event `json:"events"`
	NextAfter string  `json:"next_after"`
	More      bool    `json:"more"`
}

// TrashedSecret is a secret in the trash: the secret as it was when
// deleted, and when the trash purges it unless it is restored first.
type TrashedSecret struct {
	Secret    Secret    `json:"secret"`
	TrashedAt time.Time `json:"trashed_at"`
	PurgeAt   time.Time `json:"purge_at"`
}

// TrashList is a page of the trash, in ID order.
type TrashList struct {
	Trash         []TrashedSecret `json:"trash"`
	NextPageToken string          `json:"next_page_token"`
}

// RestoreSecretRequest is the body of POST …/trash/{id}/restore; an empty
// body (or Name "") restores the secret under its own name.
type RestoreSecretRequest struct {
	Name string `json:"name,omitempty"`
}
