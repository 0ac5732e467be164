package secrets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// The store knows its key. A meta record (M / keycheck) holds a data key
// wrapped under the key that seals the store, with the wrapper's key ID;
// opening it proves the configured key is that key. CheckKey refuses a
// store holding data whose key check is missing or does not open, so a
// wrong, replaced or missing key never silently starts a mixed store.
//
// Service keys (M / key:<purpose>) are 32-byte keys the service itself
// needs (the page-token signing key, the resolve-grant key): generated once,
// stored wrapped by the same key, unwrapped once per process.

// KeyIdentifier is implemented by key wrappers that can name their key
// (a KMS key ARN, a fingerprint of a local key file), for messages.
type KeyIdentifier interface {
	KeyID() string
}

// Emptier is implemented by drivers that can tell whether they hold no
// item at all: a store may get a new key only while it is empty.
type Emptier interface {
	Empty(ctx context.Context) (bool, error)
}

const keyCheckName = "keycheck"

type keyCheckRec struct {
	KeyID   string `json:"key_id,omitempty" cbor:"0,keyasint,omitempty"`
	Wrapped []byte `json:"wrapped" cbor:"1,keyasint"`
	Sum     []byte `json:"sum" cbor:"2,keyasint"` // SHA-256 of the data key, to tell a wrong key from a right one
	Created stamp  `json:"ca" cbor:"3,keyasint"`
}

type serviceKeyRec struct {
	Purpose string `json:"purpose" cbor:"0,keyasint"`
	Wrapped []byte `json:"wrapped" cbor:"1,keyasint"`
	Created stamp  `json:"ca" cbor:"2,keyasint"`
}

func keyCheckContext() map[string]string { return map[string]string{"purpose": "mobius key check"} }
func serviceKeyContext(purpose string) map[string]string {
	return map[string]string{"purpose": "mobius service key", "service_key": purpose}
}

func (s *Service) keyID() string {
	if ki, ok := s.keys.(KeyIdentifier); ok {
		return ki.KeyID()
	}
	return ""
}

// KeyCheckMode says what CheckKey may do when the store has no key check.
type KeyCheckMode int

const (
	// KeyCheckOff: the Service checks nothing by itself (Options.KeyCheck);
	// its owner calls CheckKey at start.
	KeyCheckOff KeyCheckMode = iota
	// KeyCheckInit writes the key check into an empty store that has none,
	// and refuses a store that holds data without one.
	KeyCheckInit
	// KeyCheckVerify only verifies a key check that exists (a reader, such
	// as the resolve function, which may not write).
	KeyCheckVerify
)

// ensureKey runs the check of Options.KeyCheck before the first use of the
// key, once it has passed: a process that must not call out at start (a
// Lambda function's cold start) checks its key on the first request that
// needs it, and every request fails with the check's error until it passes.
func (s *Service) ensureKey(ctx context.Context) error {
	if s.keyCheck == KeyCheckOff || s.keyChecked.Load() {
		return nil
	}
	if err := s.CheckKey(ctx, s.keyCheck); err != nil {
		return err
	}
	s.keyChecked.Store(true)
	return nil
}

// ErrKeyMismatch is in the chain of CheckKey's error when the configured
// key is not the one the store is sealed under.
var ErrKeyMismatch = fmt.Errorf("the configured key does not open this store")

// CheckKey verifies that the configured key is the one the store's data is
// sealed under. Misconfigured (wrapping ErrKeyMismatch) when it is not, or
// when the store holds data but records no key; Unavailable when the store
// or the key service cannot be reached. With KeyCheckInit, a store with no
// item gets the key check of the configured key.
func (s *Service) CheckKey(ctx context.Context, mode KeyCheckMode) error {
	it, err := s.get(ctx, metaKey(keyCheckName))
	if err != nil {
		return err
	}
	if it == nil {
		if mode == KeyCheckVerify {
			return nil
		}
		return s.initKeyCheck(ctx)
	}
	var rec keyCheckRec
	if err := s.decode(it, &rec); err != nil {
		return err
	}
	dek, err := s.keys.UnwrapDataKey(ctx, rec.Wrapped, keyCheckContext())
	if err == nil {
		sum := sha256.Sum256(dek)
		clear(dek)
		if bytes.Equal(sum[:], rec.Sum) {
			return nil
		}
		err = Errorf(Integrity, "the key check does not match")
	}
	if code := ErrorCode(err); code != Integrity {
		return keyError(err)
	}
	stored := rec.KeyID
	if stored == "" {
		stored = "another key"
	}
	return &Error{Code: Misconfigured, Err: ErrKeyMismatch, Message: fmt.Sprintf(
		"the store is sealed under %s, and the configured key (%s) does not open it: configure the key the data was written with (restore the key file kept with this data), or point at the store that key seals; nothing was changed",
		stored, orUnknown(s.keyID()))}
}

func orUnknown(s string) string {
	if s == "" {
		return "unnamed"
	}
	return s
}

func (s *Service) initKeyCheck(ctx context.Context) error {
	em, ok := s.kv.(Emptier)
	if !ok {
		return Errorf(Misconfigured, "the store records no key check, and its driver cannot tell whether it is empty")
	}
	empty, err := em.Empty(ctx)
	if err != nil {
		return storeError(ctx, err)
	}
	if !empty {
		return &Error{Code: Misconfigured, Err: ErrKeyMismatch, Message: "the store holds data but records no key check, so the configured key cannot be verified; nothing was changed"}
	}
	dek, wrapped, err := s.keys.GenerateDataKey(ctx, keyCheckContext())
	if err != nil {
		return keyError(err)
	}
	sum := sha256.Sum256(dek)
	clear(dek)
	rec := &keyCheckRec{KeyID: s.keyID(), Wrapped: wrapped, Sum: sum[:], Created: at(s.Now())}
	// Not s.commit, which checks the key first.
	err = s.kv.Commit(ctx, kv.Put(kv.Item{Key: metaKey(keyCheckName), Value: encode(rec)}, kv.IfAbsent(time.Time{})))
	if conditionFailed(err) >= 0 {
		// Another process made it first: verify against theirs.
		return s.CheckKey(ctx, KeyCheckVerify)
	}
	return storeError(ctx, err)
}

// serviceKeys caches unwrapped service keys by purpose.
type serviceKeys struct {
	mu   sync.Mutex
	keys map[string][]byte
}

// ServiceKey returns the service's 32-byte key for purpose, generating and
// storing it (wrapped) on first use. Every process on one store gets the
// same key. It is unwrapped once per process.
func (s *Service) ServiceKey(ctx context.Context, purpose string) ([]byte, error) {
	return s.serviceKey(ctx, purpose, true)
}

// errNoServiceKey is serviceKey's answer, without create, for a key that
// was never made.
var errNoServiceKey = errors.New("the service key does not exist yet")

// serviceKey is ServiceKey; without create, a key that does not exist yet
// is errNoServiceKey (a reader, such as the resolve function, never makes
// one).
func (s *Service) serviceKey(ctx context.Context, purpose string, create bool) ([]byte, error) {
	// The key check comes first: a service key written into an empty
	// store would make it look like a store with data but no key check.
	if err := s.ensureKey(ctx); err != nil {
		return nil, err
	}
	s.skeys.mu.Lock()
	defer s.skeys.mu.Unlock()
	if k, ok := s.skeys.keys[purpose]; ok {
		return k, nil
	}
	mk := metaKey("key:" + purpose)
	for range 3 {
		it, err := s.get(ctx, mk)
		if err != nil {
			return nil, err
		}
		if it != nil {
			var rec serviceKeyRec
			if err := s.decode(it, &rec); err != nil {
				return nil, err
			}
			if rec.Purpose != purpose {
				return nil, s.misplaced(it, "service key")
			}
			k, err := s.keys.UnwrapDataKey(ctx, rec.Wrapped, serviceKeyContext(purpose))
			if err != nil {
				if ErrorCode(err) == Integrity {
					return nil, WrapError(Misconfigured, err, "the stored %s key does not open under the configured key", purpose)
				}
				return nil, keyError(err)
			}
			if s.skeys.keys == nil {
				s.skeys.keys = map[string][]byte{}
			}
			s.skeys.keys[purpose] = k
			return k, nil
		}
		if !create {
			return nil, errNoServiceKey
		}
		dek, wrapped, err := s.keys.GenerateDataKey(ctx, serviceKeyContext(purpose))
		if err != nil {
			return nil, keyError(err)
		}
		clear(dek) // the stored, wrapped form is the one every process unwraps
		rec := &serviceKeyRec{Purpose: purpose, Wrapped: wrapped, Created: at(s.Now())}
		err = s.commit(ctx, nil, nil, kv.Put(kv.Item{Key: mk, Value: encode(rec)}, kv.IfAbsent(time.Time{})))
		if err != nil && conditionFailed(err) < 0 {
			return nil, err
		}
		// Stored, or another process stored one first: read it back.
	}
	return nil, Errorf(Unavailable, "could not settle the %s key; try again", purpose)
}

// Purposes of the service keys.
const (
	PurposePageToken = "page-token" // signs page tokens (pkg/httpapi)
	PurposeGrant     = "grant"      // signs resolve grants
)
