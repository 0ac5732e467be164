// Package bolt is the embedded Store: one bbolt file on local disk, for
// `mobius serve` on one machine.
//
// Every operation is one bbolt transaction. Writes go through db.Batch, so
// concurrent writers share one commit (and one fsync); each write is still
// durable before it returns. Values are decoded inside the transaction into
// fresh memory, so nothing returned aliases the memory map.
//
// Layout (keys join their parts with a 0 byte, which no project, name or ID
// contains; version numbers are 4-byte big-endian, so byte order is number
// order):
//
//	meta         "schema"                    → format version
//	secrets      project 0 secretID          → secret record (JSON)
//	names        project 0 name              → secretID
//	versions     project 0 secretID 0 n      → version metadata (JSON)
//	ciphertexts  project 0 secretID 0 n      → sealed envelope, raw; deleted on destroy
//	apikeys      hash                        → API key record (JSON)
//	apikey_ids   project 0 keyID             → hash
//	idempotency  project 0 key               → idempotency record (JSON)
//	resolutions  project 0 secretID 0 resID  → resolution record (JSON)
//
// The store sees only metadata and ciphertext: plaintext never reaches it.
// When destroy or delete removes ciphertext, the pages that held it are
// overwritten with zeros before the call returns (scrub.go), so it does not
// linger in the file's free space.
//
// It imports pkg/secrets and go.etcd.io/bbolt.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mobius-secrets/mobius/pkg/secrets"
	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrInUse is returned by Open when another process holds the data file.
var ErrInUse = errors.New("the data file is in use by another process")

// schemaVersion is the on-disk format this package reads and writes.
const schemaVersion = "1"

var (
	bMeta        = []byte("meta")
	bSecrets     = []byte("secrets")
	bNames       = []byte("names")
	bVersions    = []byte("versions")
	bCiphertexts = []byte("ciphertexts")
	bAPIKeys     = []byte("apikeys")
	bAPIKeyIDs   = []byte("apikey_ids")
	bIdempotency = []byte("idempotency")
	bResolutions = []byte("resolutions")

	allBuckets = [][]byte{bMeta, bSecrets, bNames, bVersions, bCiphertexts, bAPIKeys, bAPIKeyIDs, bIdempotency, bResolutions}
	schemaKey  = []byte("schema")
)

// Options tune Open. The zero value is usable.
type Options struct {
	// Timeout bounds the wait for the file lock when another process holds
	// the file; Open then fails with ErrInUse. 1s if zero.
	Timeout time.Duration
	// MaxBatchDelay is how long a write waits for concurrent writes to share
	// its commit. 2ms if zero.
	MaxBatchDelay time.Duration
}

// Store is a secrets.Store in one bbolt file. It is safe for concurrent use
// by one process.
type Store struct {
	db *bbolt.DB
	// mu is held shared by every operation and exclusively by scrub, which
	// must see no open read transaction.
	mu sync.RWMutex
	// scrubPending is set when a scrub after a removal failed; the next
	// write tries again.
	scrubPending atomic.Bool
}

var _ secrets.Store = (*Store)(nil)

// Open opens (creating if needed, mode 0600) the data file at path. It fails
// with an error wrapping ErrInUse if another process holds the file for
// longer than opts.Timeout.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.MaxBatchDelay <= 0 {
		opts.MaxBatchDelay = 2 * time.Millisecond
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.Timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w (waited %s for its lock; is another mobius server running on it?)", path, ErrInUse, opts.Timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.MaxBatchDelay = opts.MaxBatchDelay
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bMeta)
		switch v := meta.Get(schemaKey); {
		case v == nil:
			return meta.Put(schemaKey, []byte(schemaVersion))
		case string(v) != schemaVersion:
			return fmt.Errorf("the data file has format version %q; this program reads version %s", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db}
	// Zero what an earlier process freed but could not scrub (it stopped
	// between a destroy's commit and its scrub).
	if _, err := s.scrub(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// Close releases the file. Operations after Close fail with Unavailable.
func (s *Store) Close() error { return s.db.Close() }

// Path returns the data file's path.
func (s *Store) Path() string { return s.db.Path() }

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return storeError(s.db.View(fn))
}

// write runs fn in a batched write transaction. fn may run more than once
// (bbolt retries a batch when one of its calls fails), so it must start from
// scratch each time. A domain error (*secrets.Error) from fn is its result,
// not a failure of the batch: fn must return it before writing anything, so
// that the rest of the batch can still commit.
func (s *Store) write(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var result error
	s.mu.RLock()
	err := s.db.Batch(func(tx *bbolt.Tx) error {
		result = nil
		err := fn(tx)
		var e *secrets.Error
		if errors.As(err, &e) {
			result = err
			return nil
		}
		return err
	})
	s.mu.RUnlock()
	if s.scrubPending.CompareAndSwap(true, false) {
		s.scrubAfterRemoval()
	}
	if err != nil {
		return storeError(err)
	}
	return result
}

// storeError classifies an error of bbolt itself.
func storeError(err error) error {
	if err == nil {
		return nil
	}
	var e *secrets.Error
	if errors.As(err, &e) {
		return err
	}
	return secrets.WrapError(secrets.Unavailable, err, "the embedded store failed")
}

func corrupt(err error, what string) error {
	return secrets.WrapError(secrets.Internal, err, "the embedded store holds a damaged %s record", what)
}

// key joins parts with 0 bytes.
func key(parts ...string) []byte {
	n := len(parts) - 1
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n+4)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

func versionKey(project, secretID string, n int) []byte {
	return binary.BigEndian.AppendUint32(key(project, secretID, ""), uint32(n))
}

// appendVersionKey appends versionKey(project, secretID, n) to dst: a read
// builds its lookup key in a buffer on its stack.
func appendVersionKey(dst []byte, project, secretID string, n int) []byte {
	dst = append(append(append(append(dst, project...), 0), secretID...), 0)
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

func validNumber(n int) bool { return n >= 1 && n <= math.MaxUint32 }

// upperBound returns the first key after every key that starts with prefix.
func upperBound(prefix []byte) []byte {
	b := bytes.Clone(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return b[:i+1]
		}
	}
	return nil
}

// reverseFrom positions c on the last key before bound that starts with
// prefix (bound nil: the last key with prefix), or returns nil.
func reverseFrom(c *bbolt.Cursor, prefix, bound []byte) (k, v []byte) {
	if bound == nil {
		bound = upperBound(prefix)
	}
	if bound == nil {
		k, v = c.Last()
	} else if k, _ = c.Seek(bound); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, nil
	}
	return k, v
}

// Records. Field names are short and stable: they are the file format.

type secretRec struct {
	ID          string    `json:"id"`
	Project     string    `json:"project"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Current     int       `json:"current"`
	Latest      int       `json:"latest"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	Revision    int64     `json:"revision"`
}

func secretToRec(s *secrets.Secret) *secretRec {
	return &secretRec{
		ID: s.ID, Project: s.Project, Name: s.Name, Description: s.Description,
		Current: s.CurrentVersion, Latest: s.LatestVersion,
		Created: s.CreatedAt, Updated: s.UpdatedAt, Revision: s.Revision,
	}
}

func (r *secretRec) secret() *secrets.Secret {
	return &secrets.Secret{
		ID: r.ID, Project: r.Project, Name: r.Name, Description: r.Description,
		CurrentVersion: r.Current, LatestVersion: r.Latest,
		CreatedAt: r.Created, UpdatedAt: r.Updated, Revision: r.Revision,
	}
}

type versionRec struct {
	Project        string        `json:"project"`
	SecretID       string        `json:"secret_id"`
	Number         int           `json:"number"`
	State          secrets.State `json:"state"`
	SHA256         string        `json:"sha256"`
	Keys           []string      `json:"keys"`
	Created        time.Time     `json:"created"`
	StateChangedAt time.Time     `json:"state_changed"`
}

func versionToRec(v *secrets.Version) *versionRec {
	return &versionRec{
		Project: v.Project, SecretID: v.SecretID, Number: v.Number, State: v.State,
		SHA256: v.SHA256, Keys: v.Keys, Created: v.CreatedAt, StateChangedAt: v.StateChangedAt,
	}
}

func (r *versionRec) version() *secrets.Version {
	return &secrets.Version{
		Project: r.Project, SecretID: r.SecretID, Number: r.Number, State: r.State,
		SHA256: r.SHA256, Keys: r.Keys, CreatedAt: r.Created, StateChangedAt: r.StateChangedAt,
	}
}

type apiKeyRec struct {
	ID       string    `json:"id"`
	Project  string    `json:"project"`
	Name     string    `json:"name,omitempty"`
	Scopes   []string  `json:"scopes"`
	Hash     string    `json:"hash"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used"`
}

func (r *apiKeyRec) apiKey() *secrets.APIKey {
	return &secrets.APIKey{ID: r.ID, Project: r.Project, Name: r.Name, Scopes: r.Scopes, Hash: r.Hash, CreatedAt: r.Created, LastUsedAt: r.LastUsed}
}

type idempotencyRec struct {
	Project     string            `json:"project"`
	Key         string            `json:"key"`
	RequestHash string            `json:"request_hash"`
	Done        bool              `json:"done"`
	Status      int               `json:"status,omitempty"`
	Header      map[string]string `json:"header,omitempty"`
	Body        []byte            `json:"body,omitempty"`
	Created     time.Time         `json:"created"`
	Expires     time.Time         `json:"expires"`
}

func (r *idempotencyRec) record() *secrets.IdempotencyRecord {
	return &secrets.IdempotencyRecord{
		Project: r.Project, Key: r.Key, RequestHash: r.RequestHash, Done: r.Done,
		Status: r.Status, Header: r.Header, Body: r.Body, CreatedAt: r.Created, ExpiresAt: r.Expires,
	}
}

type resolutionRec struct {
	ID         string          `json:"id"`
	Project    string          `json:"project"`
	SecretID   string          `json:"secret_id"`
	SecretName string          `json:"secret_name"`
	Version    int             `json:"version"`
	Keys       []string        `json:"keys"`
	Run        json.RawMessage `json:"run,omitempty"`
	ResolvedAt time.Time       `json:"resolved_at"`
}

func (r *resolutionRec) resolution() *secrets.Resolution {
	return &secrets.Resolution{
		ID: r.ID, Project: r.Project, SecretID: r.SecretID, SecretName: r.SecretName,
		Version: r.Version, Keys: r.Keys, Run: r.Run, ResolvedAt: r.ResolvedAt,
	}
}

func put(b *bbolt.Bucket, k []byte, rec any) error {
	v, err := json.Marshal(rec)
	if err != nil {
		// Not a *secrets.Error: the whole transaction must roll back.
		return fmt.Errorf("encoding a record: %w", err)
	}
	return b.Put(k, v)
}

// decode unmarshals v (memory-mapped) into rec; the result owns its memory.
func decode(v []byte, rec any, what string) error {
	if err := json.Unmarshal(v, rec); err != nil {
		return corrupt(err, what)
	}
	return nil
}

// Secrets.

// getSecretRec reads the record of the secret id: a string, or the bytes
// of an ID read from the name index, which need no copy.
func getSecretRec[ID string | []byte](tx *bbolt.Tx, project string, id ID) (*secretRec, error) {
	return secretRecIn(tx.Bucket(bSecrets), project, id)
}

// secretRecIn is getSecretRec on the secrets bucket b, for loops: a read
// transaction opens a bucket anew on every tx.Bucket.
func secretRecIn[ID string | []byte](b *bbolt.Bucket, project string, id ID) (*secretRec, error) {
	var buf [128]byte // room for most keys: building key(project, id) does not allocate
	k := append(append(append(buf[:0], project...), 0), id...)
	v := b.Get(k)
	if v == nil {
		return nil, secrets.Errorf(secrets.NotFound, "secret %q not found in project %q", id, project)
	}
	var r secretRec
	if err := decode(v, &r, "secret"); err != nil {
		return nil, err
	}
	return &r, nil
}

func getVersionRec(tx *bbolt.Tx, project, secretID string, n int) (*versionRec, error) {
	var v []byte
	if validNumber(n) {
		var buf [128]byte
		v = tx.Bucket(bVersions).Get(appendVersionKey(buf[:0], project, secretID, n))
	}
	if v == nil {
		return nil, secrets.Errorf(secrets.NotFound, "version %d of secret %q not found", n, secretID)
	}
	var r versionRec
	if err := decode(v, &r, "version"); err != nil {
		return nil, err
	}
	return &r, nil
}

// CreateSecret stores s, its name and its first version v atomically.
// Conflict if the name (or the ID) is taken in the project.
func (s *Store) CreateSecret(ctx context.Context, sec *secrets.Secret, v *secrets.Version) error {
	if !validNumber(v.Number) {
		return secrets.Errorf(secrets.Invalid, "version number %d out of range", v.Number)
	}
	sk, nk, vk := key(sec.Project, sec.ID), key(sec.Project, sec.Name), versionKey(sec.Project, sec.ID, v.Number)
	return s.write(ctx, func(tx *bbolt.Tx) error {
		if tx.Bucket(bNames).Get(nk) != nil {
			return secrets.Errorf(secrets.Conflict, "secret %q already exists in project %q", sec.Name, sec.Project)
		}
		if tx.Bucket(bSecrets).Get(sk) != nil {
			return secrets.Errorf(secrets.Conflict, "secret ID %q already exists in project %q", sec.ID, sec.Project)
		}
		if err := put(tx.Bucket(bSecrets), sk, secretToRec(sec)); err != nil {
			return err
		}
		if err := tx.Bucket(bNames).Put(nk, []byte(sec.ID)); err != nil {
			return err
		}
		if err := put(tx.Bucket(bVersions), vk, versionToRec(v)); err != nil {
			return err
		}
		if len(v.Ciphertext) > 0 {
			return tx.Bucket(bCiphertexts).Put(vk, v.Ciphertext)
		}
		return nil
	})
}

// GetSecret returns the secret by ID. NotFound if absent.
func (s *Store) GetSecret(ctx context.Context, project, id string) (*secrets.Secret, error) {
	var out *secrets.Secret
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		r, err := getSecretRec(tx, project, id)
		if err != nil {
			return err
		}
		out = r.secret()
		return nil
	})
	return out, err
}

// GetSecretByName returns the secret that holds name. NotFound if absent.
func (s *Store) GetSecretByName(ctx context.Context, project, name string) (*secrets.Secret, error) {
	var out *secrets.Secret
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		id := tx.Bucket(bNames).Get(key(project, name))
		if id == nil {
			return secrets.Errorf(secrets.NotFound, "secret %q not found in project %q", name, project)
		}
		r, err := getSecretRec(tx, project, id)
		if err != nil {
			return err
		}
		out = r.secret()
		return nil
	})
	return out, err
}

// ListSecrets returns at most q.Limit (all, if not positive) secrets of the
// project whose names start with q.Prefix and sort after q.After, in byte
// order of name. It scans the name index from the first candidate on.
func (s *Store) ListSecrets(ctx context.Context, project string, q secrets.ListQuery) ([]*secrets.Secret, error) {
	var out []*secrets.Secret
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		out = nil
		prefix := key(project, q.Prefix)
		start := prefix
		if q.After >= q.Prefix {
			start = key(project, q.After)
		}
		c, recs := tx.Bucket(bNames).Cursor(), tx.Bucket(bSecrets)
		k, id := c.Seek(start)
		if q.After != "" && bytes.Equal(k, start) {
			k, id = c.Next()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, id = c.Next() {
			if q.Limit > 0 && len(out) >= q.Limit {
				break
			}
			r, err := secretRecIn(recs, project, id)
			if err != nil {
				return corrupt(err, "name index")
			}
			out = append(out, r.secret())
		}
		return nil
	})
	return out, err
}

// UpdateSecret applies u atomically. The rename is taken from the stored
// name: if it differs from u.Secret.Name, the stored name is freed and the
// new one claimed.
func (s *Store) UpdateSecret(ctx context.Context, u *secrets.Update) error {
	sec := u.Secret
	project, id := sec.Project, sec.ID
	if u.Put != nil && !validNumber(u.Put.Number) {
		return secrets.Errorf(secrets.Invalid, "version number %d out of range", u.Put.Number)
	}
	destroys := slices.ContainsFunc(u.Changes, func(ch secrets.StateChange) bool { return ch.To == secrets.Destroyed })
	err := s.write(ctx, func(tx *bbolt.Tx) error {
		// Every check comes before the first write.
		cur, err := getSecretRec(tx, project, id)
		if err != nil {
			return err
		}
		if cur.Revision != u.PrevRevision {
			return secrets.Errorf(secrets.Aborted, "secret %q is at revision %d, not %d", id, cur.Revision, u.PrevRevision)
		}
		versions, cts := tx.Bucket(bVersions), tx.Bucket(bCiphertexts)
		var putKey []byte
		if u.Put != nil {
			putKey = versionKey(project, id, u.Put.Number)
			if versions.Get(putKey) != nil {
				return secrets.Errorf(secrets.Aborted, "version %d of secret %q already exists", u.Put.Number, id)
			}
		}
		changed := make([]*versionRec, len(u.Changes))
		for i, ch := range u.Changes {
			r, err := getVersionRec(tx, project, id, ch.Number)
			if err != nil {
				return secrets.WrapError(secrets.Aborted, err, "version %d of secret %q is gone", ch.Number, id)
			}
			if r.State != ch.From {
				return secrets.Errorf(secrets.Aborted, "version %d of secret %q is %s, not %s", ch.Number, id, r.State, ch.From)
			}
			changed[i] = r
		}
		names := tx.Bucket(bNames)
		renamed := cur.Name != sec.Name
		if renamed {
			if holder := names.Get(key(project, sec.Name)); holder != nil && string(holder) != id {
				return secrets.Errorf(secrets.Conflict, "secret %q already exists in project %q", sec.Name, project)
			}
		}

		if err := put(tx.Bucket(bSecrets), key(project, id), secretToRec(sec)); err != nil {
			return err
		}
		if renamed {
			if err := names.Delete(key(project, cur.Name)); err != nil {
				return err
			}
			if err := names.Put(key(project, sec.Name), []byte(id)); err != nil {
				return err
			}
		}
		if u.Put != nil {
			if err := put(versions, putKey, versionToRec(u.Put)); err != nil {
				return err
			}
			if len(u.Put.Ciphertext) > 0 {
				if err := cts.Put(putKey, u.Put.Ciphertext); err != nil {
					return err
				}
			}
		}
		for i, ch := range u.Changes {
			r := changed[i]
			r.State, r.StateChangedAt = ch.To, ch.At
			vk := versionKey(project, id, ch.Number)
			if err := put(versions, vk, r); err != nil {
				return err
			}
			if ch.To == secrets.Destroyed {
				if err := cts.Delete(vk); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil && destroys {
		s.scrubAfterRemoval()
	}
	return err
}

// DeleteSecret removes the secret, its name and every version, with their
// ciphertext, in one transaction, and then wipes the freed pages (scrub).
// Resolution records stay, for audit.
func (s *Store) DeleteSecret(ctx context.Context, project, id string, prevRevision int64) error {
	err := s.write(ctx, func(tx *bbolt.Tx) error {
		cur, err := getSecretRec(tx, project, id)
		if err != nil {
			return err
		}
		if cur.Revision != prevRevision {
			return secrets.Errorf(secrets.Aborted, "secret %q is at revision %d, not %d", id, cur.Revision, prevRevision)
		}
		if err := tx.Bucket(bSecrets).Delete(key(project, id)); err != nil {
			return err
		}
		names := tx.Bucket(bNames)
		nk := key(project, cur.Name)
		if string(names.Get(nk)) == id {
			if err := names.Delete(nk); err != nil {
				return err
			}
		}
		prefix := key(project, id, "")
		for _, name := range [][]byte{bVersions, bCiphertexts} {
			b := tx.Bucket(name)
			var keys [][]byte
			c := b.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				keys = append(keys, bytes.Clone(k))
			}
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil {
		s.scrubAfterRemoval()
	}
	return err
}

// GetVersion returns version n with its ciphertext (nil once destroyed).
func (s *Store) GetVersion(ctx context.Context, project, secretID string, n int) (*secrets.Version, error) {
	var out *secrets.Version
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		r, err := getVersionRec(tx, project, secretID, n)
		if err != nil {
			return err
		}
		out = r.version()
		var buf [128]byte
		out.Ciphertext = bytes.Clone(tx.Bucket(bCiphertexts).Get(appendVersionKey(buf[:0], project, secretID, n)))
		return nil
	})
	return out, err
}

// ListVersions returns at most limit (all, if not positive) versions numbered
// below before (all, if before <= 0), newest first, without ciphertext.
func (s *Store) ListVersions(ctx context.Context, project, secretID string, before, limit int) ([]*secrets.Version, error) {
	var out []*secrets.Version
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		out = nil
		prefix := key(project, secretID, "")
		var bound []byte
		if before > 0 {
			bound = versionKey(project, secretID, min(before, math.MaxUint32))
		}
		c := tx.Bucket(bVersions).Cursor()
		for k, v := reverseFrom(c, prefix, bound); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			if limit > 0 && len(out) >= limit {
				break
			}
			var r versionRec
			if err := decode(v, &r, "version"); err != nil {
				return err
			}
			out = append(out, r.version())
		}
		return nil
	})
	return out, err
}

// CurrentVersions returns the named secrets with their ENABLED versions, in
// one read transaction.
func (s *Store) CurrentVersions(ctx context.Context, project string, names []string) (map[string]*secrets.Current, error) {
	out := make(map[string]*secrets.Current, len(names))
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		clear(out)
		nb, recs, cts := tx.Bucket(bNames), tx.Bucket(bSecrets), tx.Bucket(bCiphertexts)
		for _, name := range names {
			if _, done := out[name]; done {
				continue
			}
			id := nb.Get(key(project, name))
			if id == nil {
				continue
			}
			sr, err := secretRecIn(recs, project, id)
			if err != nil {
				return corrupt(err, "name index")
			}
			c := &secrets.Current{Secret: sr.secret()}
			if sr.Current > 0 {
				vr, err := getVersionRec(tx, project, sr.ID, sr.Current)
				if err != nil {
					return corrupt(err, "secret")
				}
				if vr.State == secrets.Enabled {
					c.Version = vr.version()
					var buf [128]byte
					c.Version.Ciphertext = bytes.Clone(cts.Get(appendVersionKey(buf[:0], project, sr.ID, sr.Current)))
				}
			}
			out[name] = c
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// API keys.

// CreateAPIKey stores k. Conflict if its hash exists, or its ID exists in
// its project.
func (s *Store) CreateAPIKey(ctx context.Context, k *secrets.APIKey) error {
	rec := &apiKeyRec{ID: k.ID, Project: k.Project, Name: k.Name, Scopes: slices.Clone(k.Scopes), Hash: k.Hash, Created: k.CreatedAt, LastUsed: k.LastUsedAt}
	hk, ik := []byte(k.Hash), key(k.Project, k.ID)
	return s.write(ctx, func(tx *bbolt.Tx) error {
		keys, ids := tx.Bucket(bAPIKeys), tx.Bucket(bAPIKeyIDs)
		if keys.Get(hk) != nil || ids.Get(ik) != nil {
			return secrets.Errorf(secrets.Conflict, "API key %q already exists", k.ID)
		}
		if err := put(keys, hk, rec); err != nil {
			return err
		}
		return ids.Put(ik, hk)
	})
}

func getAPIKeyRec(tx *bbolt.Tx, hash []byte) (*apiKeyRec, error) {
	v := tx.Bucket(bAPIKeys).Get(hash)
	if v == nil {
		return nil, secrets.Errorf(secrets.NotFound, "API key not found")
	}
	var r apiKeyRec
	if err := decode(v, &r, "API key"); err != nil {
		return nil, err
	}
	return &r, nil
}

// GetAPIKeyByHash returns the key whose hash is hash. NotFound if absent.
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash string) (*secrets.APIKey, error) {
	var out *secrets.APIKey
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		r, err := getAPIKeyRec(tx, []byte(hash))
		if err != nil {
			return err
		}
		out = r.apiKey()
		return nil
	})
	return out, err
}

// ListAPIKeys returns the project's keys, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context, project string) ([]*secrets.APIKey, error) {
	var out []*secrets.APIKey
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		out = nil
		prefix := key(project, "")
		c := tx.Bucket(bAPIKeyIDs).Cursor()
		for k, hash := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, hash = c.Next() {
			r, err := getAPIKeyRec(tx, hash)
			if err != nil {
				return corrupt(err, "API key index")
			}
			out = append(out, r.apiKey())
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b *secrets.APIKey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, err
}

// DeleteAPIKey revokes the key. NotFound if absent from the project.
func (s *Store) DeleteAPIKey(ctx context.Context, project, id string) error {
	ik := key(project, id)
	return s.write(ctx, func(tx *bbolt.Tx) error {
		ids := tx.Bucket(bAPIKeyIDs)
		hash := ids.Get(ik)
		if hash == nil {
			return secrets.Errorf(secrets.NotFound, "API key %q not found in project %q", id, project)
		}
		if err := tx.Bucket(bAPIKeys).Delete(bytes.Clone(hash)); err != nil {
			return err
		}
		return ids.Delete(ik)
	})
}

// TouchAPIKey records that the key was used at t. NotFound if absent.
func (s *Store) TouchAPIKey(ctx context.Context, project, id string, t time.Time) error {
	ik := key(project, id)
	return s.write(ctx, func(tx *bbolt.Tx) error {
		hash := tx.Bucket(bAPIKeyIDs).Get(ik)
		if hash == nil {
			return secrets.Errorf(secrets.NotFound, "API key %q not found in project %q", id, project)
		}
		hash = bytes.Clone(hash)
		r, err := getAPIKeyRec(tx, hash)
		if err != nil {
			return corrupt(err, "API key index")
		}
		r.LastUsed = t
		return put(tx.Bucket(bAPIKeys), hash, r)
	})
}

// Idempotency records.

func idempotencyToRec(r *secrets.IdempotencyRecord) *idempotencyRec {
	return &idempotencyRec{
		Project: r.Project, Key: r.Key, RequestHash: r.RequestHash, Done: r.Done,
		Status: r.Status, Header: r.Header, Body: r.Body, Created: r.CreatedAt, Expires: r.ExpiresAt,
	}
}

func getIdempotencyRec(tx *bbolt.Tx, k []byte) (*idempotencyRec, error) {
	v := tx.Bucket(bIdempotency).Get(k)
	if v == nil {
		return nil, secrets.Errorf(secrets.NotFound, "idempotency key not found")
	}
	var r idempotencyRec
	if err := decode(v, &r, "idempotency"); err != nil {
		return nil, err
	}
	return &r, nil
}

// CreateIdempotency stores r unless a live record (one that expires after
// r.CreatedAt) holds its key: then Conflict.
func (s *Store) CreateIdempotency(ctx context.Context, r *secrets.IdempotencyRecord) error {
	k, rec := key(r.Project, r.Key), idempotencyToRec(r)
	return s.write(ctx, func(tx *bbolt.Tx) error {
		old, err := getIdempotencyRec(tx, k)
		if err == nil && old.Expires.After(r.CreatedAt) {
			return secrets.Errorf(secrets.Conflict, "idempotency key already in use")
		}
		if err != nil && secrets.ErrorCode(err) != secrets.NotFound {
			return err
		}
		return put(tx.Bucket(bIdempotency), k, rec)
	})
}

// GetIdempotency returns the record. NotFound if absent or expired at now.
func (s *Store) GetIdempotency(ctx context.Context, project, idemKey string, now time.Time) (*secrets.IdempotencyRecord, error) {
	var out *secrets.IdempotencyRecord
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		r, err := getIdempotencyRec(tx, key(project, idemKey))
		if err != nil {
			return err
		}
		if !r.Expires.After(now) {
			return secrets.Errorf(secrets.NotFound, "idempotency key expired")
		}
		out = r.record()
		return nil
	})
	return out, err
}

// CompleteIdempotency replaces the stored record with r.
func (s *Store) CompleteIdempotency(ctx context.Context, r *secrets.IdempotencyRecord) error {
	k, rec := key(r.Project, r.Key), idempotencyToRec(r)
	return s.write(ctx, func(tx *bbolt.Tx) error {
		return put(tx.Bucket(bIdempotency), k, rec)
	})
}

// DeleteIdempotency removes the record; absent is not an error.
func (s *Store) DeleteIdempotency(ctx context.Context, project, idemKey string) error {
	k := key(project, idemKey)
	return s.write(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bIdempotency).Delete(k)
	})
}

// Resolutions.

// AddResolutions stores audit records.
func (s *Store) AddResolutions(ctx context.Context, rs []*secrets.Resolution) error {
	type kv struct {
		k   []byte
		rec *resolutionRec
	}
	recs := make([]kv, len(rs))
	for i, r := range rs {
		recs[i] = kv{key(r.Project, r.SecretID, r.ID), &resolutionRec{
			ID: r.ID, Project: r.Project, SecretID: r.SecretID, SecretName: r.SecretName,
			Version: r.Version, Keys: r.Keys, Run: r.Run, ResolvedAt: r.ResolvedAt,
		}}
	}
	return s.write(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bResolutions)
		for _, r := range recs {
			if err := put(b, r.k, r.rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListResolutions returns at most limit (all, if not positive) records of
// the secret whose IDs sort before beforeID (all, if empty), newest first.
func (s *Store) ListResolutions(ctx context.Context, project, secretID, beforeID string, limit int) ([]*secrets.Resolution, error) {
	var out []*secrets.Resolution
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		out = nil
		prefix := key(project, secretID, "")
		var bound []byte
		if beforeID != "" {
			bound = key(project, secretID, beforeID)
		}
		c := tx.Bucket(bResolutions).Cursor()
		for k, v := reverseFrom(c, prefix, bound); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			if limit > 0 && len(out) >= limit {
				break
			}
			var r resolutionRec
			if err := decode(v, &r, "resolution"); err != nil {
				return err
			}
			out = append(out, r.resolution())
		}
		return nil
	})
	return out, err
}
