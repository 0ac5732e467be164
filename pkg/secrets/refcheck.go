package secrets

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// RefCheck is what a reference check says of one well-formed reference:
// what it would resolve to now, from metadata only. No ciphertext is read
// and nothing is decrypted, so a check needs only read access.
type RefCheck struct {
	Ref Ref
	// SecretID is the secret the name reads (through an alias after a
	// rename, when Alias is set); "" if the name exists nowhere.
	SecretID string
	Alias    string
	// Version is the version the reference selects, with its state and
	// digest; 0 when it selects none (Problem says why).
	Version int
	State   State
	SHA256  string
	// KeyFound reports whether that version holds Ref.Key.
	KeyFound bool
	// Problem says why the reference would not resolve now; "" if it would
	// (for a caller allowed to read the secret).
	Problem string
	// Warning says what will break a reference that resolves now: a name
	// that is only an alias, kept for a while after a rename.
	Warning string
}

// MissingKey is the problem of a reference whose key the selected version
// does not hold: the same words in a check and in resolve.
func (r Ref) MissingKey(version int) string {
	return fmt.Sprintf("key %q not found in secret %q (version %d)", r.Key, r.Name, version)
}

// CheckReferences says, for each distinct reference in refs, whether its
// secret exists, which version it selects (with its number, state and
// digest) and whether that version holds the key, by the same selection
// rules as RevealAll, reading metadata only. The result is keyed by
// reference.
func (s *Service) CheckReferences(ctx context.Context, project string, refs []Ref) (map[Ref]*RefCheck, error) {
	out := make(map[Ref]*RefCheck, len(refs))
	var wants []Want
	for _, r := range refs {
		if _, ok := out[r]; ok {
			continue
		}
		out[r] = &RefCheck{Ref: r}
		if !slices.Contains(wants, r.Want()) {
			wants = append(wants, r.Want())
		}
	}
	if len(wants) == 0 {
		return out, nil
	}
	if !ValidProject(project) { // no secret lives there
		for r, c := range out {
			c.Problem = fmt.Sprintf("secret %q not found", r.Name)
		}
		return out, nil
	}
	secs, aliases, trashed, err := s.readNames(ctx, project, wants)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	var keys []kv.Key
	pick := map[Ref]int{}
	pinned := map[Ref]bool{} // a pinned number that does not resolve
	for r, c := range out {
		if t := trashed[r.Name]; t != nil {
			c.SecretID, c.Problem = t.AliasOf, trashProblem(r.Name, t)
			continue
		}
		sec := secs[r.Name]
		if sec == nil {
			c.Problem = fmt.Sprintf("secret %q not found", r.Name)
			continue
		}
		c.SecretID, c.Alias = sec.ID, aliases[r.Name]
		if c.Alias != "" {
			c.Warning = fmt.Sprintf("%q is an old name of secret %q, kept as an alias for now: reference the secret by its name", r.Name, sec.Name)
			for _, a := range sec.Aliases {
				if a.Name == r.Name {
					c.Warning = fmt.Sprintf("%q is an old name of secret %q, kept as an alias until %s: reference the secret by its name", r.Name, sec.Name, a.Until.UTC().Format(time.RFC3339))
				}
			}
		}
		if problem := expiryProblem(sec, now); problem != "" {
			c.Problem = problem
			continue
		}
		n, problem := selectVersion(sec, r.Sel, now)
		if problem != "" {
			c.Problem = problem
			continue
		}
		if n == 0 { // a pinned number that does not resolve: name its state
			n, pinned[r] = r.Sel.Number, true
		}
		pick[r] = n
		if k := versionKey(project, sec.ID, n); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	items, err := s.getMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	for r, n := range pick {
		c, sec := out[r], secs[r.Name]
		it := items[versionKey(project, sec.ID, n)]
		if pinned[r] {
			c.Problem = s.pinProblem(it, sec, n)
			continue
		}
		if it == nil {
			// Destroyed and gone between the two reads: say so rather than
			// guess.
			c.Problem = fmt.Sprintf("version %d of secret %q not found", n, sec.Name)
			continue
		}
		v, err := s.versionFrom(it, project, sec.ID)
		if err != nil {
			return nil, err
		}
		c.Version, c.State, c.SHA256 = v.Number, v.State, v.SHA256
		c.KeyFound = slices.Contains(v.Keys, r.Key)
		if !c.KeyFound {
			c.Problem = r.MissingKey(v.Number)
		}
	}
	return out, nil
}
