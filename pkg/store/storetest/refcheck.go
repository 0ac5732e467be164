package storetest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// noCiphertext is a driver that fails the test on any read of a
// ciphertext: a reference check works from metadata only.
type noCiphertext struct {
	kv.Driver
	t *testing.T
}

func (d noCiphertext) Get(ctx context.Context, keys ...kv.Key) ([]kv.Item, error) {
	for _, k := range keys {
		if strings.HasPrefix(k.Sort, "C#") {
			d.t.Errorf("a reference check read the ciphertext %s", k)
		}
	}
	return d.Driver.Get(ctx, keys...)
}

func (d noCiphertext) Query(ctx context.Context, q kv.Query) ([]kv.Item, error) {
	d.t.Errorf("a reference check queried %s %q: it reads by key only", q.Partition, q.Prefix)
	return d.Driver.Query(ctx, q)
}

// testReferenceCheck: a reference check agrees with RevealAll on every
// selector (which version, its digest, whether the key is there, and the
// same words when it would not resolve), follows aliases, and never reads
// a ciphertext.
func testReferenceCheck(t *testing.T, e *Env) {
	now := time.Date(2026, 8, 1, 9, 0, 0, 0, time.UTC)
	svc := e.clocked(&now)
	checker := secrets.NewService(noCiphertext{e.KV, t}, e.Keys, secrets.Options{Now: func() time.Time { return now }, Logger: quietLogger()})
	grace := time.Hour
	if _, err := svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "hook", Values: map[string]string{"k": "v1", "old": "x"}, PreviousGrace: &grace}); err != nil {
		t.Fatal(err)
	}
	for _, in := range []secrets.UpdateSecretInput{
		{Values: map[string]string{"k": "v2"}},
		{Values: map[string]string{"k": "v3"}},
		{Values: map[string]string{"k": "v4", "new": "y"}, Stage: secrets.Pending},
	} {
		if _, err := svc.UpdateSecret(e.Ctx, e.Project, "hook", in); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := svc.ChangeVersionState(e.Ctx, e.Project, "hook", "1", secrets.ActionDestroy, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "empty", Values: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.ChangeVersionState(e.Ctx, e.Project, "empty", "1", secrets.ActionDisable, nil); err != nil {
		t.Fatal(err)
	}
	renamed := "hook2"
	if _, err := svc.UpdateSecret(e.Ctx, e.Project, "hook", secrets.UpdateSecretInput{Name: &renamed}); err != nil {
		t.Fatal(err)
	}
	var refs []secrets.Ref
	for _, name := range []string{"hook", "hook2", "empty", "absent"} {
		for _, sel := range []secrets.Selector{{}, selPending, selPrevious, selN(1), selN(2), selN(3), selN(4), selN(9)} {
			for _, key := range []string{"k", "new", "old"} {
				refs = append(refs, secrets.Ref{Name: name, Key: key, Sel: sel})
			}
		}
	}
	check := func(when string) {
		got, err := checker.CheckReferences(e.Ctx, e.Project, refs)
		if err != nil {
			t.Fatal(err)
		}
		var wants []secrets.Want
		for _, r := range refs {
			wants = append(wants, r.Want())
		}
		revealed, err := svc.RevealAll(e.Ctx, e.Project, wants, nil)
		if err != nil {
			t.Fatal(err)
		}
		resolvable := 0
		for _, r := range refs {
			c, rv := got[r], revealed[r.Want()]
			if c == nil {
				t.Fatalf("%s: %s has no check", when, r)
			}
			switch {
			case rv == nil:
				if c.SecretID != "" || !strings.Contains(c.Problem, "not found") {
					t.Errorf("%s: %s names no secret, check says %+v", when, r, c)
				}
			case rv.Version == nil:
				if c.Problem != rv.Problem || c.Version != 0 {
					t.Errorf("%s: %s: check %+v, resolve says %q", when, r, c, rv.Problem)
				}
			default:
				_, has := rv.Values[r.Key]
				v, _, err := svc.GetVersion(e.Ctx, e.Project, rv.Secret.ID, strconv.Itoa(rv.Version.Number))
				if err != nil {
					t.Fatal(err)
				}
				if (c.Warning != "") != (rv.Alias != "") || (rv.Alias != "" && !strings.Contains(c.Warning, "until")) {
					t.Errorf("%s: %s: warning %q, alias %q", when, r, c.Warning, rv.Alias)
				}
				if c.SecretID != rv.Secret.ID || c.Alias != rv.Alias || c.Version != rv.Version.Number || c.State != rv.Version.State || c.SHA256 != v.SHA256 || c.KeyFound != has {
					t.Errorf("%s: %s: check %+v, resolve read version %d (%s, alias %q, key there %v)", when, r, c, rv.Version.Number, rv.Version.State, rv.Alias, has)
				}
				if has {
					resolvable++
					if c.Problem != "" {
						t.Errorf("%s: %s resolves, check says %q", when, r, c.Problem)
					}
				} else if c.Problem != r.MissingKey(rv.Version.Number) {
					t.Errorf("%s: %s: problem %q", when, r, c.Problem)
				}
			}
		}
		if resolvable == 0 {
			t.Fatalf("%s: nothing resolvable: the case checks nothing", when)
		}
	}
	check("in the grace")
	now = now.Add(grace)
	check("after the grace")
	if got, err := checker.CheckReferences(e.Ctx, "Bad Project!", refs[:1]); err != nil || !strings.Contains(got[refs[0]].Problem, "not found") {
		t.Fatalf("an invalid project: %+v, %v", got[refs[0]], err)
	}
}
