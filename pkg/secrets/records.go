package secrets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// Records: how each domain object is stored in an item's value. Field names
// are short and stable: they are the storage format of every backend. Each
// record repeats the identity its key encodes, and decoding checks the two
// agree, so a record copied into another item's place is refused
// (Integrity) on every backend alike.
//
// Instants are stored as Unix milliseconds and a version's digest in
// base64 (stamp.go); records written before, with RFC 3339 strings and
// hex digests, still decode.

type secretRec struct {
	ID          string            `json:"id"`
	Project     string            `json:"p"`
	Name        string            `json:"n"`
	Description string            `json:"d,omitempty"`
	Current     int               `json:"c,omitempty"`
	Latest      int               `json:"l"`
	Pending     int               `json:"pe,omitempty"`
	Previous    int               `json:"pv,omitempty"`
	PrevUntil   stamp             `json:"pu,omitzero"`
	Grace       int64             `json:"gr,omitempty"` // seconds
	AliasTTL    int64             `json:"at,omitempty"` // seconds
	Aliases     []aliasEntry      `json:"al,omitempty"`
	Labels      map[string]string `json:"lb,omitempty"`
	Expires     stamp             `json:"ex,omitzero"`
	RotateBy    stamp             `json:"rb,omitzero"`
	Created     stamp             `json:"ca"`
	Updated     stamp             `json:"ua"`
	Revision    int64             `json:"r"`
}

func secretToRec(s *Secret) *secretRec {
	return &secretRec{
		ID: s.ID, Project: s.Project, Name: s.Name, Description: s.Description,
		Current: s.CurrentVersion, Latest: s.LatestVersion, Pending: s.PendingVersion,
		Previous: s.PreviousVersion, PrevUntil: at(s.PreviousUntil),
		Grace: int64(s.PreviousGrace / time.Second), AliasTTL: int64(s.AliasTTL / time.Second),
		Aliases: aliasEntries(s.Aliases), Labels: s.Labels, Expires: at(s.ExpiresAt), RotateBy: at(s.RotateBy),
		Created: at(s.CreatedAt), Updated: at(s.UpdatedAt), Revision: s.Revision,
	}
}

// aliasEntry is an alias as the secret's record lists it.
type aliasEntry struct {
	Name  string `json:"n"`
	Until stamp  `json:"u"`
	Rev   int64  `json:"r"`
}

func aliasEntries(as []Alias) []aliasEntry {
	var out []aliasEntry
	for _, a := range as {
		out = append(out, aliasEntry{Name: a.Name, Until: at(a.Until), Rev: a.rev})
	}
	return out
}

// aliasRec is what a name item holds while the name is an alias, or, with
// Trashed set, once its secret went to the trash: a tombstone, expired from
// the start (the name is free at once), kept only to say where the secret
// went until the name is taken again or the secret is restored or purged.
type aliasRec struct {
	AliasOf string `json:"alias_of"`
	Project string `json:"p"`
	Name    string `json:"n"`
	Until   stamp  `json:"until"`
	Trashed stamp  `json:"trashed,omitzero"`
}

func (r *secretRec) secret() *Secret {
	return &Secret{
		ID: r.ID, Project: r.Project, Name: r.Name, Description: r.Description,
		CurrentVersion: r.Current, LatestVersion: r.Latest, PendingVersion: r.Pending,
		PreviousVersion: r.Previous, PreviousUntil: utcOrZero(r.PrevUntil.Time),
		PreviousGrace: time.Duration(r.Grace) * time.Second, AliasTTL: time.Duration(r.AliasTTL) * time.Second,
		Aliases: aliasesOf(r.Aliases), Labels: r.Labels, ExpiresAt: utcOrZero(r.Expires.Time), RotateBy: utcOrZero(r.RotateBy.Time),
		CreatedAt: r.Created.UTC(), UpdatedAt: r.Updated.UTC(), Revision: r.Revision,
	}
}

func aliasesOf(es []aliasEntry) []Alias {
	var out []Alias
	for _, e := range es {
		out = append(out, Alias{Name: e.Name, Until: e.Until.UTC(), rev: e.Rev})
	}
	return out
}

func utcOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

type versionRec struct {
	Project  string   `json:"p"`
	SecretID string   `json:"s"`
	Number   int      `json:"v"`
	State    State    `json:"st"`
	SHA256   digest   `json:"h"`
	Keys     []string `json:"k"`
	Created  stamp    `json:"ca"`
	Changed  stamp    `json:"sa"`
}

func versionToRec(v *Version) *versionRec {
	return &versionRec{
		Project: v.Project, SecretID: v.SecretID, Number: v.Number, State: v.State,
		SHA256: digest(v.SHA256), Keys: v.Keys, Created: at(v.CreatedAt), Changed: at(v.StateChangedAt),
	}
}

func (r *versionRec) version() *Version {
	return &Version{
		Project: r.Project, SecretID: r.SecretID, Number: r.Number, State: r.State,
		SHA256: string(r.SHA256), Keys: r.Keys, CreatedAt: r.Created.UTC(), StateChangedAt: r.Changed.UTC(),
	}
}

type apiKeyRec struct {
	ID       string   `json:"id"`
	Project  string   `json:"p"`
	Name     string   `json:"n,omitempty"`
	Scopes   []string `json:"sc"`
	Hash     string   `json:"h"`
	Created  stamp    `json:"ca"`
	LastUsed stamp    `json:"lu,omitzero"`
}

func apiKeyToRec(k *APIKey) *apiKeyRec {
	return &apiKeyRec{ID: k.ID, Project: k.Project, Name: k.Name, Scopes: k.Scopes, Hash: k.Hash, Created: at(k.CreatedAt), LastUsed: at(k.LastUsedAt)}
}

func (r *apiKeyRec) apiKey() *APIKey {
	k := &APIKey{ID: r.ID, Project: r.Project, Name: r.Name, Scopes: r.Scopes, Hash: r.Hash, CreatedAt: r.Created.UTC()}
	if !r.LastUsed.IsZero() {
		k.LastUsedAt = r.LastUsed.UTC()
	}
	return k
}

type resolutionRec struct {
	ID         string          `json:"id"`
	Project    string          `json:"p"`
	SecretID   string          `json:"s"`
	SecretName string          `json:"n"`
	Alias      string          `json:"al,omitempty"`
	Version    int             `json:"v"`
	Keys       []string        `json:"k"`
	GrantID    string          `json:"g,omitempty"`
	KeyID      string          `json:"kid,omitempty"`
	Run        json.RawMessage `json:"run,omitempty"`
	Step       json.RawMessage `json:"step,omitempty"`
	ResolvedAt stamp           `json:"at"`
}

func (r *resolutionRec) resolution() *Resolution {
	return &Resolution{
		ID: r.ID, Project: r.Project, SecretID: r.SecretID, SecretName: r.SecretName, Alias: r.Alias,
		Version: r.Version, Keys: r.Keys, GrantID: r.GrantID, KeyID: r.KeyID, Run: r.Run, Step: r.Step, ResolvedAt: r.ResolvedAt.UTC(),
	}
}

func encode(rec any) []byte {
	b, err := json.Marshal(rec)
	if err != nil {
		// Every record is plain data: this is a bug.
		panic(fmt.Sprintf("secrets: encoding a %T: %v", rec, err))
	}
	return b
}

// decode reads the record in it; a value that does not decode is a
// damaged record.
func (s *Service) decode(it *kv.Item, rec any) error {
	if err := json.Unmarshal(it.Value, rec); err != nil {
		s.log.Error("DAMAGED RECORD: a stored record does not decode; refusing it",
			"partition", it.Partition, "sort", it.Sort, "err", err.Error())
		return WrapError(Internal, err, "the store holds a damaged record")
	}
	return nil
}

// misplaced is the Integrity error of a record that does not sit in its own
// place: its fields name another item than the key it was read from.
func (s *Service) misplaced(it *kv.Item, what string) error {
	s.log.Error("INTEGRITY FAILURE: a stored record is not in its own place; refusing it",
		"partition", it.Partition, "sort", it.Sort, "record", what)
	return Errorf(Integrity, "the stored %s record is not in its own place", what)
}

var aliasOfMember = []byte(`"alias_of"`)

// secretFrom decodes the secret record in it, which was read from the ID
// item of (project, id) or the name item of (project, name).
func (s *Service) secretFrom(it *kv.Item, project string) (*Secret, error) {
	r, err := s.secretRecFrom(it)
	if err != nil {
		return nil, err
	}
	if r.Project != project || (it.Key != secretKey(project, r.ID) && it.Key != nameKey(project, r.Name)) || it.Rev != r.Revision {
		return nil, s.misplaced(it, "secret")
	}
	sec := r.secret()
	sec.Labels = cloneLabels(sec.Labels) // the record may be the cache's
	return sec, nil
}

// decodedSecret is a secret record as the store held it and as it decodes.
type decodedSecret struct {
	value []byte
	rec   *secretRec
}

// decodedSecrets holds the secret records last decoded, by item key, at
// most max of them; when full, a put drops one entry at random (a list
// page of a large store puts many, each once).
type decodedSecrets struct {
	mu  sync.Mutex
	max int
	m   map[string]decodedSecret
}

func newDecodedSecrets(max int) *decodedSecrets {
	return &decodedSecrets{max: max, m: make(map[string]decodedSecret)}
}

func (c *decodedSecrets) get(k string) (decodedSecret, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.m[k]
	return d, ok
}

func (c *decodedSecrets) put(k string, d decodedSecret) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for victim := range c.m {
			delete(c.m, victim)
			break
		}
	}
	c.m[k] = d
}

// secretRecFrom decodes the secret record in it, or takes it from
// Service.decoded when the item holds the very bytes decoded before:
// decoding is a pure function of the bytes, so an item changed since
// (another revision, another record) has other bytes and is decoded
// afresh. Every read of a secret, by name or by ID, comes here.
func (s *Service) secretRecFrom(it *kv.Item) (*secretRec, error) {
	ck := it.Partition + "\x00" + it.Sort
	if d, ok := s.decoded.get(ck); ok && bytes.Equal(d.value, it.Value) {
		return d.rec, nil
	}
	r := new(secretRec)
	if err := s.decode(it, r); err != nil {
		return nil, err
	}
	s.decoded.put(ck, decodedSecret{value: bytes.Clone(it.Value), rec: r})
	return r, nil
}

// nameFrom decodes the name item it of project: the secret's record, or
// the alias the name is after a rename (alias non-nil, secret nil).
func (s *Service) nameFrom(it *kv.Item, project string) (*Secret, *aliasRec, error) {
	// An alias's record always has the member "alias_of"; a secret's never
	// does, so a record without those bytes is a secret's, read in one
	// decoding (this is every read of a secret by name). Those bytes can
	// still sit in a secret's description: then the record is probed as
	// before.
	if !bytes.Contains(it.Value, aliasOfMember) {
		sec, err := s.secretFrom(it, project)
		return sec, nil, err
	}
	var probe struct {
		AliasOf string `json:"alias_of"`
	}
	if err := s.decode(it, &probe); err != nil {
		return nil, nil, err
	}
	if probe.AliasOf == "" {
		sec, err := s.secretFrom(it, project)
		return sec, nil, err
	}
	var a aliasRec
	if err := s.decode(it, &a); err != nil {
		return nil, nil, err
	}
	if a.Project != project || it.Key != nameKey(project, a.Name) || !IsSecretID(a.AliasOf) {
		return nil, nil, s.misplaced(it, "alias")
	}
	return nil, &a, nil
}

func (s *Service) versionFrom(it *kv.Item, project, secretID string) (*Version, error) {
	var r versionRec
	if err := s.decode(it, &r); err != nil {
		return nil, err
	}
	if r.Project != project || r.SecretID != secretID || it.Key != versionKey(project, secretID, r.Number) || !r.State.Valid() {
		return nil, s.misplaced(it, "version")
	}
	return r.version(), nil
}

func (s *Service) apiKeyFrom(it *kv.Item) (*APIKey, error) {
	var r apiKeyRec
	if err := s.decode(it, &r); err != nil {
		return nil, err
	}
	if it.Key != apiKeyKey(r.Hash) && it.Key != keyListingKey(r.Project, r.ID) {
		return nil, s.misplaced(it, "API key")
	}
	return r.apiKey(), nil
}

func (s *Service) resolutionFrom(it *kv.Item, project, secretID string) (*Resolution, error) {
	var r resolutionRec
	if err := s.decode(it, &r); err != nil {
		return nil, err
	}
	if r.Project != project || r.SecretID != secretID || it.Key != auditKey(project, secretID, r.ID) {
		return nil, s.misplaced(it, "resolution")
	}
	return r.resolution(), nil
}

func secretItem(k kv.Key, sec *Secret) kv.Item {
	return kv.Item{Key: k, Value: encode(secretToRec(sec)), Rev: sec.Revision}
}

func versionItem(v *Version) kv.Item {
	return kv.Item{Key: versionKey(v.Project, v.SecretID, v.Number), Value: encode(versionToRec(v))}
}
