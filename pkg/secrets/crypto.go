package secrets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/mobius-secrets/mobius/pkg/envelope"
)

// EncryptionContext is what binds a version's data key (KMS
// EncryptionContext, or the local wrapper's associated data) to its place:
// project, immutable secret ID and version number. Never the name, which
// can change, and nothing sensitive: it is logged by KMS.
func EncryptionContext(project, secretID string, n int) map[string]string {
	return map[string]string{"project": project, "secret_id": secretID, "version": strconv.Itoa(n)}
}

// AssociatedData binds a version's ciphertext to project, secret ID and
// version number.
func AssociatedData(project, secretID string, n int) []byte {
	b := make([]byte, 0, 16+len(project)+len(secretID))
	b = append(b, "mobius/v1\x00"...)
	b = append(b, project...)
	b = append(b, 0)
	b = append(b, secretID...)
	b = append(b, 0)
	return strconv.AppendInt(b, int64(n), 10)
}

func (s *Service) seal(ctx context.Context, project, secretID string, n int, plain []byte) ([]byte, error) {
	dek, wrapped, err := s.keys.GenerateDataKey(ctx, EncryptionContext(project, secretID, n))
	if err != nil {
		return nil, keyError(err)
	}
	defer clear(dek)
	ct, err := envelope.Seal(s.rand, dek, wrapped, AssociatedData(project, secretID, n), plain)
	if err != nil {
		return nil, WrapError(Internal, err, "sealing version")
	}
	return ct, nil
}

// open decrypts the ciphertext of the version that sits in slot n of secret
// sec, using the data-key cache. The binding (associated data and key
// context) comes from the slot that was asked for, never from the fields of
// the stored record, so a record copied into another slot (an old version
// replayed as the current one, or a version moved between secrets or
// projects) fails authentication.
func (s *Service) open(ctx context.Context, sec *Secret, n int, v *Version) ([]byte, error) {
	if v.Project != sec.Project || v.SecretID != sec.ID || v.Number != n {
		return nil, s.integrity(v, errors.New("stored version record is not in its own slot"))
	}
	env, err := envelope.Parse(v.Ciphertext)
	if err != nil {
		return nil, s.integrity(v, err)
	}
	ec := EncryptionContext(sec.Project, sec.ID, n)
	ad := AssociatedData(sec.Project, sec.ID, n)
	sum := sha256.Sum256(append(ad, env.WrappedKey...))
	ck := string(sum[:])
	// A cached key comes out as a copy: the cache zeroes its own when the
	// entry expires or is evicted, which may happen while this one is used.
	dek, ok := s.dekc.getWith(ck, bytes.Clone)
	if !ok {
		dek, err = s.keys.UnwrapDataKey(ctx, env.WrappedKey, ec)
		if err != nil {
			if ErrorCode(err) == Integrity {
				return nil, s.integrity(v, err)
			}
			return nil, keyError(err)
		}
		s.dekc.put(ck, bytes.Clone(dek)) // the cache owns (and eventually zeroes) its copy
	}
	defer clear(dek)
	pt, err := env.Open(dek, ad)
	if err != nil {
		return nil, s.integrity(v, err)
	}
	return pt, nil
}

func (s *Service) integrity(v *Version, err error) error {
	s.log.Error("INTEGRITY FAILURE: stored ciphertext failed authentication; refusing to decrypt",
		"project", v.Project, "secret_id", v.SecretID, "version", v.Number, "err", err.Error())
	return WrapError(Integrity, err, "stored ciphertext of version %d failed its integrity check", v.Number)
}

// keyError classifies a key wrapper failure: its own *Error passes through;
// anything else means the key service is unavailable.
func keyError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return WrapError(Unavailable, err, "the key service is unavailable")
}

func digestBytes(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// Revealed is a secret's ENABLED version with its decrypted values. It is
// only ever produced for the resolve function.
type Revealed struct {
	Secret  *Secret
	Version *Version
	Values  map[string]string
}

// Reveal decrypts the ENABLED version of each named secret. Names that do
// not exist are absent from the result; a secret with no ENABLED version
// has a nil Version and Values. Integrity if a ciphertext fails its check.
// Every other read path of the service returns metadata only.
func (s *Service) Reveal(ctx context.Context, project string, names []string) (map[string]*Revealed, error) {
	cur, err := s.store.CurrentVersions(ctx, project, names)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Revealed, len(cur))
	for name, c := range cur {
		r := &Revealed{Secret: c.Secret, Version: c.Version}
		if c.Version != nil {
			if v := c.Version; v.Project != c.Secret.Project || v.SecretID != c.Secret.ID || v.Number != c.Secret.CurrentVersion {
				return nil, s.integrity(v, errors.New("stored version record is not in its own slot"))
			}
			if c.Version.State != Enabled || c.Version.Ciphertext == nil {
				r.Version = nil
			} else {
				pt, err := s.open(ctx, c.Secret, c.Secret.CurrentVersion, c.Version)
				if err != nil {
					return nil, err
				}
				if err := json.Unmarshal(pt, &r.Values); err != nil {
					clear(pt)
					return nil, s.integrity(c.Version, err)
				}
				clear(pt)
				r.Version.Ciphertext = nil
			}
		}
		out[name] = r
	}
	return out, nil
}

// RecordResolutions stores audit records of a resolve call.
func (s *Service) RecordResolutions(ctx context.Context, rs []*Resolution) error {
	now := s.Now()
	for _, r := range rs {
		if r.ID == "" {
			r.ID = NewULID(now, s.rand)
		}
		if r.ResolvedAt.IsZero() {
			r.ResolvedAt = now
		}
	}
	if len(rs) == 0 {
		return nil
	}
	return s.store.AddResolutions(ctx, rs)
}
