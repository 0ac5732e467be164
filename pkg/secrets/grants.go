package secrets

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// Resolve grants. A platform's scheduler mints a grant for one run of a
// loop, naming the secrets the loop references; the runner passes it with
// every resolve call, and resolve reads only what it covers.
//
// A grant string is self-contained: "mbg_" + base64url(payload) + "." +
// base64url(HMAC-SHA256 under the grant key of the payload). The payload
// names the grant's ID, project, secret IDs, run, expiry and minting API
// key; verifying it reads nothing from the store on the warm path. The
// grant key is a service key (keys.go): generated once, kept wrapped in
// the store, unwrapped once per process. The grant's record (P#project /
// G#id) exists while the grant is live: revoking deletes it, and so does
// revoking the API key that minted it (which is then refused). A verifier
// re-reads both at most every AuthCacheTTL (30 s), so a revocation takes
// effect at once on the server that made it and within that bound on every
// other.
//
// Grants bind secret IDs: a rename keeps a grant working, and a new secret
// that takes an old name is not covered by grants made before it.

// GrantPrefix starts every grant string.
const GrantPrefix = "mbg_"

// Limits of a grant.
const (
	MaxGrantSecrets   = 100
	DefaultGrantTTL   = time.Hour
	MaxGrantTTL       = 24 * time.Hour
	maxGrantStringLen = 16 << 10
)

// Grant is a resolve grant, as minted and as verified.
type Grant struct {
	ID        string
	Project   string
	Secrets   []GrantSecret   // the secrets it covers, by ID (and their names when minted)
	Run       json.RawMessage // the run it was minted for (compact JSON object), nil if none
	KeyID     string          // the API key that minted it
	CreatedAt time.Time
	ExpiresAt time.Time
}

// GrantSecret is one secret a grant covers.
type GrantSecret struct {
	ID   string `cbor:"0,keyasint"`
	Name string `cbor:"1,keyasint"` // its name when the grant was minted
}

// Covers reports whether the grant covers the secret with ID id.
func (g *Grant) Covers(id string) bool {
	return slices.ContainsFunc(g.Secrets, func(s GrantSecret) bool { return s.ID == id })
}

// grantPayload is what a grant string carries, under its MAC.
type grantPayload struct {
	V       int             `json:"v"`
	ID      string          `json:"id"`
	Project string          `json:"p"`
	Secrets []string        `json:"s"`
	Run     json.RawMessage `json:"run,omitempty"`
	KeyID   string          `json:"k"`
	Created int64           `json:"ca"`
	Expires int64           `json:"exp"` // Unix ms
}

type grantRec struct {
	ID      string          `json:"id" cbor:"0,keyasint"`
	Project string          `json:"p" cbor:"1,keyasint"`
	Secrets []GrantSecret   `json:"s" cbor:"2,keyasint"`
	Run     json.RawMessage `json:"run,omitempty" cbor:"3,keyasint,omitempty"`
	KeyID   string          `json:"k" cbor:"4,keyasint"`
	Created stamp           `json:"ca" cbor:"5,keyasint"`
	Expires stamp           `json:"exp" cbor:"6,keyasint"`
}

func grantKey(project, id string) kv.Key {
	return kv.Key{Partition: projectPart(project), Sort: "G#" + id}
}

// IsGrantID reports whether s has the form of a grant ID.
func IsGrantID(s string) bool { return hasULID(s, "grt_") }

// MintGrantInput is what a grant is minted for.
type MintGrantInput struct {
	Secrets []string        // names or IDs, 1 to MaxGrantSecrets
	Run     json.RawMessage // optional JSON object of at most MaxRunBytes
	TTL     time.Duration   // 1 s to MaxGrantTTL; DefaultGrantTTL if zero
}

// MintGrant makes a grant of project for the secrets named, minted by the
// API key by, and returns it with its string (shown this once). NotFound
// if a secret does not exist; Invalid for bad input.
func (s *Service) MintGrant(ctx context.Context, project string, by *APIKey, in MintGrantInput) (*Grant, string, error) {
	if len(in.Secrets) == 0 || len(in.Secrets) > MaxGrantSecrets {
		return nil, "", FieldErrorf(Invalid, "secrets", "secrets must list 1 to %d secret names or IDs", MaxGrantSecrets)
	}
	ttl := in.TTL
	if ttl == 0 {
		ttl = DefaultGrantTTL
	}
	if ttl < time.Second || ttl > MaxGrantTTL {
		return nil, "", FieldErrorf(Invalid, "ttl_seconds", "ttl_seconds must be from 1 to %d", int(MaxGrantTTL/time.Second))
	}
	run, err := CompactObject("run", in.Run, MaxRunBytes)
	if err != nil {
		return nil, "", err
	}
	var covered []GrantSecret
	for _, ref := range in.Secrets {
		sec, err := s.lookup(ctx, project, ref)
		if err != nil {
			if ErrorCode(err) == NotFound {
				return nil, "", &Error{Code: NotFound, Field: "secrets", Message: ErrorMessage(err)}
			}
			return nil, "", err
		}
		if !slices.ContainsFunc(covered, func(g GrantSecret) bool { return g.ID == sec.ID }) {
			covered = append(covered, GrantSecret{ID: sec.ID, Name: sec.Name})
		}
	}
	key, err := s.ServiceKey(ctx, PurposeGrant)
	if err != nil {
		return nil, "", err
	}
	now := s.Now()
	g := &Grant{
		ID: "grt_" + NewULID(now, s.rand), Project: project, Secrets: covered, Run: run,
		KeyID: by.ID, CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	rec := &grantRec{ID: g.ID, Project: project, Secrets: covered, Run: run, KeyID: by.ID, Created: at(now), Expires: at(g.ExpiresAt)}
	err = s.commit(ctx, &Outcome{Grant: g}, nil,
		kv.Put(kv.Item{Key: grantKey(project, g.ID), Value: encode(rec), Expires: g.ExpiresAt}, kv.IfAbsent(time.Time{})),
		// The minting key must still exist when the grant is made.
		kv.Check(keyListingKey(project, by.ID), kv.IfExists()),
	)
	switch conditionFailed(err) {
	case -1:
		if err != nil {
			return nil, "", err
		}
	case 1:
		return nil, "", Errorf(Unauthorized, "the API key is unknown or revoked")
	default:
		return nil, "", WrapError(Internal, err, "a new grant's ID is taken")
	}
	return g, grantString(key, g), nil
}

func grantString(key []byte, g *Grant) string {
	ids := make([]string, len(g.Secrets))
	for i, sc := range g.Secrets {
		ids[i] = sc.ID
	}
	payload := encodeJSON(&grantPayload{V: 1, ID: g.ID, Project: g.Project, Secrets: ids, Run: g.Run, KeyID: g.KeyID,
		Created: g.CreatedAt.UnixMilli(), Expires: g.ExpiresAt.UnixMilli()})
	var b strings.Builder
	b.WriteString(GrantPrefix)
	b.WriteString(base64.RawURLEncoding.EncodeToString(payload))
	b.WriteByte('.')
	b.WriteString(base64.RawURLEncoding.EncodeToString(grantMAC(key, payload)))
	return b.String()
}

func grantMAC(key, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("mobius resolve grant v1\x00"))
	m.Write(payload)
	return m.Sum(nil)
}

// VerifyGrant returns the grant that token is, if it is genuine, unexpired,
// not revoked, and its minting API key is not revoked. Every refusal is
// Unauthorized, with a message that says which of these failed and never
// anything about secrets.
func (s *Service) VerifyGrant(ctx context.Context, token string) (*Grant, error) {
	bad := func(why string) error { return Errorf(Unauthorized, "the resolve grant %s", why) }
	if token == "" {
		return nil, bad("is missing: pass \"grant\", minted with POST /v1/projects/{project}/resolve-grants")
	}
	if len(token) > maxGrantStringLen {
		return nil, bad("is malformed")
	}
	g, ok := s.verified.getWith(token, copyGrant)
	if !ok {
		var err error
		if g, err = s.readGrant(ctx, token, bad); err != nil {
			return nil, err
		}
		s.verified.put(token, copyGrant(g))
	}
	if !s.Now().Before(g.ExpiresAt) {
		return nil, bad("has expired")
	}
	live, err := s.grantLive(ctx, g)
	if err != nil {
		return nil, err
	}
	if !live {
		return nil, bad("was revoked, or the API key that minted it was")
	}
	return g, nil
}

// readGrant checks token's MAC under the grant key and reads what it says:
// the part of VerifyGrant that depends on the string alone, done once per
// string and process (Service.verified).
func (s *Service) readGrant(ctx context.Context, token string, bad func(string) error) (*Grant, error) {
	body, ok := strings.CutPrefix(token, GrantPrefix)
	if !ok {
		return nil, bad("is malformed")
	}
	p64, m64, ok := strings.Cut(body, ".")
	if !ok {
		return nil, bad("is malformed")
	}
	payload, err1 := base64.RawURLEncoding.Strict().DecodeString(p64)
	mac, err2 := base64.RawURLEncoding.Strict().DecodeString(m64)
	if err1 != nil || err2 != nil || len(mac) != sha256.Size {
		return nil, bad("is malformed")
	}
	key, err := s.serviceKey(ctx, PurposeGrant, false)
	if errors.Is(err, errNoServiceKey) {
		return nil, bad("is not valid: no grant was ever minted here")
	}
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(mac, grantMAC(key, payload)) {
		return nil, bad("is not valid: it was altered, or made for another installation")
	}
	var p grantPayload
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.V != 1 || !IsGrantID(p.ID) || !ValidProject(p.Project) || !IsAPIKeyID(p.KeyID) || len(p.Secrets) == 0 {
		// Genuine but unreadable: a grant of a format this version does
		// not know.
		return nil, bad("is of an unknown format")
	}
	g := &Grant{ID: p.ID, Project: p.Project, Run: p.Run, KeyID: p.KeyID,
		CreatedAt: time.UnixMilli(p.Created).UTC(), ExpiresAt: time.UnixMilli(p.Expires).UTC()}
	for _, id := range p.Secrets {
		g.Secrets = append(g.Secrets, GrantSecret{ID: id})
	}
	return g, nil
}

// copyGrant is a copy of g that shares nothing the caller may change.
func copyGrant(g *Grant) *Grant {
	c := *g
	c.Secrets = slices.Clone(g.Secrets)
	c.Run = slices.Clone(g.Run)
	return &c
}

// grantLive reports whether g's record and its minting key both still
// exist, from a cache of at most AuthCacheTTL.
func (s *Service) grantLive(ctx context.Context, g *Grant) (bool, error) {
	ck := g.Project + "\x00" + g.ID
	if live, ok := s.grants.get(ck); ok {
		return live, nil
	}
	revocations := s.revocations.Load()
	items, err := s.getMany(ctx, []kv.Key{grantKey(g.Project, g.ID), keyListingKey(g.Project, g.KeyID)})
	if err != nil {
		return false, err
	}
	live := items[grantKey(g.Project, g.ID)] != nil && items[keyListingKey(g.Project, g.KeyID)] != nil
	s.grants.putIf(ck, live, func() bool { return s.revocations.Load() == revocations })
	return live, nil
}

// ListGrants returns the project's live grants, oldest first (never their
// strings), after the grant ID after, at most limit, and whether more
// follow.
func (s *Service) ListGrants(ctx context.Context, project, after string, limit int) ([]*Grant, bool, error) {
	if err := checkLimit(limit); err != nil {
		return nil, false, err
	}
	if limit <= 0 {
		limit = DefaultPageSize
	}
	if !ValidProject(project) {
		return []*Grant{}, false, nil
	}
	now := s.Now()
	q := kv.Query{Partition: projectPart(project), Prefix: "G#", Limit: limit + 1}
	if after != "" {
		q.After = "G#" + after
	}
	var out []*Grant
	var size pageBytes
	for len(out) <= limit {
		items, err := s.query(ctx, q)
		if err != nil {
			return nil, false, err
		}
		var page []*Grant
		var sizes []int
		var keys []kv.Key
		for i := range items {
			if items[i].ExpiredAt(now) {
				continue
			}
			g, err := s.grantFrom(&items[i], project)
			if err != nil {
				return nil, false, err
			}
			page, sizes = append(page, g), append(sizes, len(items[i].Value))
			if k := keyListingKey(project, g.KeyID); !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		// A grant dies with the API key that minted it: list only those
		// that VerifyGrant would accept.
		minters, err := s.getMany(ctx, keys)
		if err != nil {
			return nil, false, err
		}
		for i, g := range page {
			if minters[keyListingKey(project, g.KeyID)] == nil {
				continue
			}
			if len(out) < limit && size.full(sizes[i], len(out)) {
				return out, true, nil
			}
			out = append(out, g)
		}
		if len(items) < q.Limit {
			break
		}
		q.After = items[len(items)-1].Sort
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

func (s *Service) grantFrom(it *kv.Item, project string) (*Grant, error) {
	var r grantRec
	if err := s.decode(it, &r); err != nil {
		return nil, err
	}
	if r.Project != project || it.Key != grantKey(project, r.ID) {
		return nil, s.misplaced(it, "grant")
	}
	return &Grant{ID: r.ID, Project: r.Project, Secrets: r.Secrets, Run: r.Run, KeyID: r.KeyID,
		CreatedAt: r.Created.UTC(), ExpiresAt: r.Expires.UTC()}, nil
}

// RevokeGrant deletes a grant: resolve refuses it at once on this server
// and within AuthCacheTTL on every other. NotFound if it is absent or
// expired.
func (s *Service) RevokeGrant(ctx context.Context, project, id string) error {
	notFound := Errorf(NotFound, "resolve grant %q not found in project %q", Shorten(id, 40), Shorten(project, MaxProjectLen))
	if !IsGrantID(id) || !ValidProject(project) {
		return notFound
	}
	it, err := s.get(ctx, grantKey(project, id))
	if err != nil {
		return err
	}
	if it == nil || it.ExpiredAt(s.Now()) {
		return notFound
	}
	err = s.commit(ctx, nil, nil, kv.Delete(grantKey(project, id), kv.IfExists()))
	if conditionFailed(err) >= 0 {
		return notFound
	}
	if err != nil {
		return err
	}
	s.revocations.Add(1)
	s.grants.put(project+"\x00"+id, false)
	return nil
}

// CompactObject checks that raw is absent, null, or a JSON object of at
// most max bytes once compacted, and returns it compacted (nil if absent).
func CompactObject(field string, raw json.RawMessage, max int) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, nil
	}
	if trimmed[0] != '{' {
		return nil, FieldErrorf(Invalid, field, "%s must be a JSON object", field)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, trimmed); err != nil {
		return nil, FieldErrorf(Invalid, field, "%s is not valid JSON", field)
	}
	if buf.Len() > max {
		return nil, FieldErrorf(Invalid, field, "%s is %d bytes; the limit is %d", field, buf.Len(), max)
	}
	return json.RawMessage(buf.Bytes()), nil
}
