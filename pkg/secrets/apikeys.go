package secrets

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// APIKeyPrefix starts every API key, so that a leaked key is recognisable
// (and can be found by secret scanners).
const APIKeyPrefix = "mbs_"

var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// apiKeyLen is the length of a key: the prefix and 256 random bits.
var apiKeyLen = len(APIKeyPrefix) + keyEncoding.EncodedLen(32)

// HashAPIKey returns the stored form of a key: lowercase hex SHA-256. A key
// carries 256 random bits, so a fast hash is enough.
func HashAPIKey(key string) string {
	var buf [64]byte // room for a key, so that hashing it does not allocate
	sum := sha256.Sum256(append(buf[:0], key...))
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// CreateAPIKey makes a new key for project and returns it with the key
// string, which is shown this once and stored only as a hash. With no
// scopes, the key gets secrets:read only.
func (s *Service) CreateAPIKey(ctx context.Context, project, name string, scopes []string) (*APIKey, string, error) {
	if !ValidProject(project) {
		return nil, "", FieldErrorf(Invalid, "project", "project must be 1-64 characters of A-Z a-z 0-9 _ -, starting with a letter or digit")
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameLen || strings.ContainsFunc(name, unicode.IsControl) {
		return nil, "", FieldErrorf(Invalid, "name", "name must be at most %d printable characters", MaxNameLen)
	}
	if len(scopes) == 0 {
		scopes = []string{ScopeRead}
	}
	var norm []string
	for _, sc := range scopes {
		if !slices.Contains(AllScopes, sc) {
			return nil, "", FieldErrorf(Invalid, "scopes", "unknown scope %q; scopes are %s", Shorten(sc, 40), strings.Join(AllScopes, ", "))
		}
		if !slices.Contains(norm, sc) {
			norm = append(norm, sc)
		}
	}
	slices.SortFunc(norm, func(a, b string) int { return slices.Index(AllScopes, a) - slices.Index(AllScopes, b) })
	raw := make([]byte, 32)
	if _, err := io.ReadFull(s.rand, raw); err != nil {
		return nil, "", WrapError(Internal, err, "reading randomness")
	}
	key := APIKeyPrefix + keyEncoding.EncodeToString(raw)
	clear(raw)
	now := s.Now()
	k := &APIKey{ID: "key_" + NewULID(now, s.rand), Project: project, Name: name, Scopes: norm, Hash: HashAPIKey(key), CreatedAt: now}
	err := s.commit(ctx, &Outcome{APIKey: k}, []*Event{{Type: EventAPIKeyCreated, Project: project, KeyID: k.ID}},
		kv.Put(apiKeyItem(apiKeyKey(k.Hash), k), kv.IfAbsent(time.Time{})),
		kv.Put(apiKeyItem(keyListingKey(project, k.ID), k), kv.IfAbsent(time.Time{})),
	)
	if conditionFailed(err) >= 0 {
		return nil, "", WrapError(Internal, err, "a new API key's ID or hash is taken")
	}
	if err != nil {
		return nil, "", err
	}
	return k, key, nil
}

// LastUsedInterval is the resolution of an API key's last use
// (APIKey.LastUsedAt): a use is recorded only if none is recorded within
// this interval before it.
const LastUsedInterval = 5 * time.Minute

// Authenticate returns the API key that key is. Unauthorized if it is
// malformed, unknown or revoked. A verified key is cached for the auth
// cache TTL; revocation through this Service takes effect at once.
func (s *Service) Authenticate(ctx context.Context, key string) (*APIKey, error) {
	if len(key) != apiKeyLen || !strings.HasPrefix(key, APIKeyPrefix) {
		return nil, Errorf(Unauthorized, "the API key is malformed")
	}
	hash := HashAPIKey(key)
	// Only well-formed keys are cached, so a hit needs no decoding: its
	// hash is a verified key's.
	if k, ok := s.auth.get(hash); ok {
		return k, nil
	}
	if _, err := keyEncoding.DecodeString(key[len(APIKeyPrefix):]); err != nil {
		return nil, Errorf(Unauthorized, "the API key is malformed")
	}
	// A revocation through this Service after this point keeps the key
	// out of the cache, even if the read below still finds it.
	revocations := s.revocations.Load()
	it, err := s.get(ctx, apiKeyKey(hash))
	if err != nil {
		return nil, err
	}
	if it == nil {
		return nil, Errorf(Unauthorized, "the API key is unknown or revoked")
	}
	k, err := s.apiKeyFrom(it)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(k.Hash), []byte(hash)) != 1 {
		return nil, Errorf(Unauthorized, "the API key is unknown or revoked")
	}
	// Record the use, unless a use is already recorded within the last
	// LastUsedInterval: a key in steady use costs one read per cache miss,
	// not a read and two writes.
	now := s.Now()
	if k.LastUsedAt.IsZero() || now.Sub(k.LastUsedAt) >= LastUsedInterval {
		touched := *k
		touched.LastUsedAt = now
		err := s.commit(ctx, nil, nil,
			kv.Put(apiKeyItem(apiKeyKey(k.Hash), &touched), kv.IfExists()),
			kv.Put(apiKeyItem(keyListingKey(k.Project, k.ID), &touched), kv.IfExists()),
		)
		switch {
		case err == nil:
			k = &touched
		case conditionFailed(err) >= 0: // revoked since the read above
			return nil, Errorf(Unauthorized, "the API key is unknown or revoked")
		}
	}
	s.auth.putIf(hash, k, func() bool { return s.revocations.Load() == revocations })
	return k, nil
}

// ListAPIKeys returns the project's keys (never the key strings), oldest
// first.
func (s *Service) ListAPIKeys(ctx context.Context, project string) ([]*APIKey, error) {
	out := []*APIKey{}
	if !ValidProject(project) {
		return out, nil
	}
	q := kv.Query{Partition: projectPart(project), Prefix: "K#", Limit: MaxPageSize}
	for {
		items, err := s.query(ctx, q)
		if err != nil {
			return nil, err
		}
		for i := range items {
			k, err := s.apiKeyFrom(&items[i])
			if err != nil {
				return nil, err
			}
			out = append(out, k)
		}
		if len(items) < q.Limit {
			break
		}
		q.After = items[len(items)-1].Sort
	}
	slices.SortStableFunc(out, func(a, b *APIKey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func apiKeyItem(k kv.Key, key *APIKey) kv.Item {
	return kv.Item{Key: k, Value: encode(apiKeyToRec(key))}
}

// RevokeAPIKey deletes the key; it stops working at once on this server.
func (s *Service) RevokeAPIKey(ctx context.Context, project, id string) error {
	if !IsAPIKeyID(id) {
		return Errorf(NotFound, "API key %q not found in project %q", Shorten(id, 40), project)
	}
	notFound := Errorf(NotFound, "API key %q not found in project %q", id, Shorten(project, MaxProjectLen))
	if !ValidProject(project) {
		return notFound
	}
	it, err := s.get(ctx, keyListingKey(project, id))
	if err != nil {
		return err
	}
	if it == nil {
		return notFound
	}
	k, err := s.apiKeyFrom(it)
	if err != nil {
		return err
	}
	err = s.commit(ctx, nil, []*Event{{Type: EventAPIKeyRevoked, Project: project, KeyID: id}},
		kv.Delete(keyListingKey(project, id), kv.IfExists()),
		kv.Delete(apiKeyKey(k.Hash), kv.Cond{}),
	)
	if conditionFailed(err) >= 0 {
		return notFound
	}
	if err != nil {
		return err
	}
	// Count first, then empty the cache: an authentication that read the
	// key before the delete either sees the count change and does not
	// cache it, or cached it already and is removed here.
	s.revocations.Add(1)
	s.auth.removeIf(func(k *APIKey) bool { return k.ID == id && k.Project == project })
	// Its grants are refused from now on: forget every grant's liveness
	// (revocations are rare; the next resolve of each re-reads it).
	s.grants.removeIf(func(bool) bool { return true })
	return nil
}
