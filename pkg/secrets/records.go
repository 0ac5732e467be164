package secrets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// Records: how each domain object is stored in an item's value. Field names
// are short and stable: they are the storage format of every backend. Each
// record repeats the identity its key encodes, and decoding checks the two
// agree, so a record copied into another item's place is refused
// (Integrity) on every backend alike.
//
// A record is a CBOR (RFC 8949) map whose keys are small integers (the
// cbor tags: a key of 0 to 23 is one byte), written deterministically
// (map keys sorted), its instants Unix milliseconds and a version's
// digest its 32 bytes (stamp.go). Records written by earlier versions
// are JSON objects with the short member names of the json tags, their
// instants RFC 3339 strings or Unix milliseconds and their digests hex or
// base64: a value whose first byte is '{' is read as one (a CBOR map's
// first byte is 0xa0 to 0xbf), so a data file written before needs no
// migration, and a record takes the new form when it next changes. A
// binary older than this form cannot read it.

type secretRec struct {
	ID          string            `json:"id" cbor:"0,keyasint"`
	Project     string            `json:"p" cbor:"1,keyasint"`
	Name        string            `json:"n" cbor:"2,keyasint"`
	Description string            `json:"d,omitempty" cbor:"3,keyasint,omitempty"`
	Current     int               `json:"c,omitempty" cbor:"4,keyasint,omitempty"`
	Latest      int               `json:"l" cbor:"5,keyasint"`
	Pending     int               `json:"pe,omitempty" cbor:"6,keyasint,omitempty"`
	Previous    int               `json:"pv,omitempty" cbor:"7,keyasint,omitempty"`
	PrevUntil   stamp             `json:"pu,omitzero" cbor:"8,keyasint,omitzero"`
	Grace       int64             `json:"gr,omitempty" cbor:"9,keyasint,omitempty"`  // seconds
	AliasTTL    int64             `json:"at,omitempty" cbor:"10,keyasint,omitempty"` // seconds
	Aliases     []aliasEntry      `json:"al,omitempty" cbor:"11,keyasint,omitempty"`
	Labels      map[string]string `json:"lb,omitempty" cbor:"12,keyasint,omitempty"`
	Expires     stamp             `json:"ex,omitzero" cbor:"13,keyasint,omitzero"`
	RotateBy    stamp             `json:"rb,omitzero" cbor:"14,keyasint,omitzero"`
	Created     stamp             `json:"ca" cbor:"15,keyasint"`
	Updated     stamp             `json:"ua" cbor:"16,keyasint"`
	Revision    int64             `json:"r" cbor:"17,keyasint"`
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
	Name  string `json:"n" cbor:"0,keyasint"`
	Until stamp  `json:"u" cbor:"1,keyasint"`
	Rev   int64  `json:"r" cbor:"2,keyasint"`
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
	AliasOf string `json:"alias_of" cbor:"20,keyasint"` // a key no secret record has (aliasProbe)
	Project string `json:"p" cbor:"1,keyasint"`
	Name    string `json:"n" cbor:"2,keyasint"`
	Until   stamp  `json:"until" cbor:"21,keyasint"`
	Trashed stamp  `json:"trashed,omitzero" cbor:"22,keyasint,omitzero"`
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
	Project  string   `json:"p" cbor:"0,keyasint"`
	SecretID string   `json:"s" cbor:"1,keyasint"`
	Number   int      `json:"v" cbor:"2,keyasint"`
	State    State    `json:"st" cbor:"3,keyasint"`
	SHA256   digest   `json:"h" cbor:"4,keyasint"`
	Keys     []string `json:"k" cbor:"5,keyasint"`
	Created  stamp    `json:"ca" cbor:"6,keyasint"`
	Changed  stamp    `json:"sa" cbor:"7,keyasint"`
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
	ID       string   `json:"id" cbor:"0,keyasint"`
	Project  string   `json:"p" cbor:"1,keyasint"`
	Name     string   `json:"n,omitempty" cbor:"2,keyasint,omitempty"`
	Scopes   []string `json:"sc" cbor:"3,keyasint"`
	Hash     string   `json:"h" cbor:"4,keyasint"`
	Created  stamp    `json:"ca" cbor:"5,keyasint"`
	LastUsed stamp    `json:"lu,omitzero" cbor:"6,keyasint,omitzero"`
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
	ID         string          `json:"id" cbor:"0,keyasint"`
	Project    string          `json:"p" cbor:"1,keyasint"`
	SecretID   string          `json:"s" cbor:"2,keyasint"`
	SecretName string          `json:"n" cbor:"3,keyasint"`
	Alias      string          `json:"al,omitempty" cbor:"4,keyasint,omitempty"`
	Version    int             `json:"v" cbor:"5,keyasint"`
	Keys       []string        `json:"k" cbor:"6,keyasint"`
	GrantID    string          `json:"g,omitempty" cbor:"7,keyasint,omitempty"`
	KeyID      string          `json:"kid,omitempty" cbor:"8,keyasint,omitempty"`
	Run        json.RawMessage `json:"run,omitempty" cbor:"9,keyasint,omitempty"`
	Step       json.RawMessage `json:"step,omitempty" cbor:"10,keyasint,omitempty"`
	ResolvedAt stamp           `json:"at" cbor:"11,keyasint"`
}

func (r *resolutionRec) resolution() *Resolution {
	return &Resolution{
		ID: r.ID, Project: r.Project, SecretID: r.SecretID, SecretName: r.SecretName, Alias: r.Alias,
		Version: r.Version, Keys: r.Keys, GrantID: r.GrantID, KeyID: r.KeyID, Run: r.Run, Step: r.Step, ResolvedAt: r.ResolvedAt.UTC(),
	}
}

// recordEnc and recordDec are the record form's CBOR modes: map keys
// sorted, so that a record encodes to the same bytes every time; a
// duplicate key, an indefinite length or bytes after the record refuse it
// as damaged.
var recordEnc, recordDec = recordModes()

func recordModes() (cbor.EncMode, cbor.DecMode) {
	enc, err := cbor.EncOptions{Sort: cbor.SortBytewiseLexical}.EncMode()
	if err != nil {
		panic(err)
	}
	dec, err := cbor.DecOptions{DupMapKey: cbor.DupMapKeyEnforcedAPF, IndefLength: cbor.IndefLengthForbidden}.DecMode()
	if err != nil {
		panic(err)
	}
	return enc, dec
}

// CBOR's major types, the top 3 bits of an item's first byte.
const (
	cborUint   = 0
	cborNegInt = 1
	cborBytes  = 2
	cborText   = 3
)

func major(b []byte) byte {
	if len(b) == 0 {
		return 0xff
	}
	return b[0] >> 5
}

// legacyJSON reports whether a stored value is a record of the JSON form
// earlier versions wrote.
func legacyJSON(b []byte) bool { return len(b) > 0 && b[0] == '{' }

// encode returns rec in the record form.
func encode(rec any) []byte {
	b, err := recordEnc.Marshal(rec)
	if err != nil {
		// Every record is plain data: this is a bug.
		panic(fmt.Sprintf("secrets: encoding a %T: %v", rec, err))
	}
	return b
}

// encodeJSON returns v as JSON, for what leaves the store in JSON (a
// grant string's payload).
func encodeJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("secrets: encoding a %T: %v", v, err))
	}
	return b
}

// decodeRecord reads the record in b, of either form.
func decodeRecord(b []byte, rec any) error {
	if legacyJSON(b) {
		return json.Unmarshal(b, rec)
	}
	return recordDec.Unmarshal(b, rec)
}

// decode reads the record in it; a value that does not decode is a
// damaged record.
func (s *Service) decode(it *kv.Item, rec any) error {
	if err := decodeRecord(it.Value, rec); err != nil {
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
	return s.placedSecret(it, project, r)
}

// placedSecret is the secret of r, decoded from it, if r sits in its own
// place.
func (s *Service) placedSecret(it *kv.Item, project string, r *secretRec) (*Secret, error) {
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
	if r := s.decodedBefore(it); r != nil {
		return r, nil
	}
	r := new(secretRec)
	if err := s.decode(it, r); err != nil {
		return nil, err
	}
	s.decoded.put(it.Partition+"\x00"+it.Sort, decodedSecret{value: bytes.Clone(it.Value), rec: r})
	return r, nil
}

// decodedBefore is the secret record decoded before from the very bytes
// it holds, or nil.
func (s *Service) decodedBefore(it *kv.Item) *secretRec {
	if d, ok := s.decoded.get(it.Partition + "\x00" + it.Sort); ok && bytes.Equal(d.value, it.Value) {
		return d.rec
	}
	return nil
}

// nameFrom decodes the name item it of project: the secret's record, or
// the alias the name is after a rename (alias non-nil, secret nil).
func (s *Service) nameFrom(it *kv.Item, project string) (*Secret, *aliasRec, error) {
	if r := s.decodedBefore(it); r != nil {
		// These bytes decoded as a secret's record before: every read of
		// a secret by name but the first.
		sec, err := s.placedSecret(it, project, r)
		return sec, nil, err
	}
	alias, err := s.holdsAlias(it)
	if err != nil {
		return nil, nil, err
	}
	if !alias {
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

// aliasProbe reads only what tells an alias's record from a secret's:
// AliasOf (aliasRec's key 20, its member "alias_of" in JSON), which a
// secret's record never has.
type aliasProbe struct {
	AliasOf string `json:"alias_of" cbor:"20,keyasint"`
}

// holdsAlias reports whether the name item it holds an alias's record
// rather than a secret's.
func (s *Service) holdsAlias(it *kv.Item) (bool, error) {
	if legacyJSON(it.Value) && !bytes.Contains(it.Value, aliasOfMember) {
		// Without the bytes "alias_of" a JSON record is a secret's, read
		// in one decoding. Those bytes can still sit in a secret's
		// description: then the record is probed.
		return false, nil
	}
	var probe aliasProbe
	err := s.decode(it, &probe)
	return probe.AliasOf != "", err
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
