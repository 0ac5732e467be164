package httpapi

import (
	"encoding/json"
	"time"

	"github.com/mobius-secrets/mobius/pkg/api"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// The bodies the API writes are the types of pkg/api; these functions make
// them from the domain's records.

func secretJSON(s *secrets.Secret) api.Secret {
	out := api.Secret{
		ID: s.ID, Name: s.Name, Description: s.Description, Project: s.Project,
		LatestVersion: s.LatestVersion, CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC(),
	}
	// The pointers point into s, which is encoded before anyone could
	// change it.
	if s.CurrentVersion != 0 {
		out.CurrentVersion = &s.CurrentVersion
	}
	if s.PendingVersion != 0 {
		out.PendingVersion = &s.PendingVersion
	}
	if s.PreviousVersion != 0 && !s.PreviousUntil.IsZero() {
		out.PreviousVersion = &s.PreviousVersion
		out.PreviousUntil = timeOrNil(s.PreviousUntil)
	}
	out.PreviousGraceSeconds = int64(s.PreviousGrace / time.Second)
	out.RenameAliasSeconds = int64(s.AliasTTL / time.Second)
	out.Labels = labelsJSON(s.Labels)
	out.ExpiresAt, out.RotateBy = timeOrNil(s.ExpiresAt), timeOrNil(s.RotateBy)
	out.Aliases = make([]api.SecretAlias, 0, len(s.Aliases))
	for _, a := range s.Aliases {
		out.Aliases = append(out.Aliases, api.SecretAlias{Name: a.Name, Until: a.Until.UTC()})
	}
	return out
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func versionJSON(v *secrets.Version) api.Version {
	keys := v.Keys
	if keys == nil {
		keys = []string{}
	}
	return api.Version{
		Number: v.Number, State: string(v.State), SHA256: v.SHA256, Keys: keys,
		CreatedAt: v.CreatedAt.UTC(), StateChangedAt: v.StateChangedAt.UTC(), LastResolvedAt: timeOrNil(v.LastResolvedAt),
	}
}

func resolutionJSON(r *secrets.Resolution) api.Resolution {
	keys := r.Keys
	if keys == nil {
		keys = []string{}
	}
	return api.Resolution{Version: r.Version, Keys: keys, GrantID: r.GrantID, KeyID: r.KeyID,
		Run: jsonOrNull(r.Run), Step: jsonOrNull(r.Step), ResolvedAt: r.ResolvedAt.UTC()}
}

func jsonOrNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || !json.Valid(raw) {
		return json.RawMessage("null")
	}
	return raw
}

func apiKeyJSON(k *secrets.APIKey) api.APIKey {
	out := api.APIKey{ID: k.ID, Name: k.Name, Scopes: scopesOf(k), CreatedAt: k.CreatedAt.UTC()}
	if !k.LastUsedAt.IsZero() {
		t := k.LastUsedAt.UTC()
		out.LastUsedAt = &t
	}
	return out
}

func scopesOf(k *secrets.APIKey) []string {
	if k.Scopes == nil {
		return []string{}
	}
	return k.Scopes
}
