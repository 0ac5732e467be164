package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// testLabels: labels are set on create, replaced as a whole on update,
// shown by get and list, never part of the digest, and filter lists (all
// must match).
func testLabels(t *testing.T, e *Env) {
	vals := map[string]string{"k": "labelled"}
	a, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "a", Values: vals, Labels: map[string]string{"env": "prod", "team": "pay"}})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "b", Values: vals})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "c", Values: vals, Labels: map[string]string{"env": "prod", "team": "ops", "note": ""}}); err != nil {
		t.Fatal(err)
	}
	got, err := e.Svc.GetSecret(e.Ctx, e.Project, "a")
	if err != nil {
		t.Fatal(err)
	}
	WantEqual(t, "labels of a", got.Labels, map[string]string{"env": "prod", "team": "pay"})
	va, _, _ := e.Svc.GetVersion(e.Ctx, e.Project, "a", "1")
	vb, _, _ := e.Svc.GetVersion(e.Ctx, e.Project, plain.ID, "1")
	if va.SHA256 != vb.SHA256 || va.SHA256 != secrets.Digest(vals) {
		t.Fatalf("labels changed the digest: %s vs %s", va.SHA256, vb.SHA256)
	}
	for _, c := range []struct {
		labels map[string]string
		want   []string
	}{
		{map[string]string{"env": "prod"}, []string{"a", "c"}},
		{map[string]string{"env": "prod", "team": "pay"}, []string{"a"}},
		{map[string]string{"env": "prod", "team": "nope"}, nil},
		{map[string]string{"note": ""}, []string{"c"}},
		{map[string]string{"env": "Prod"}, nil},
		{nil, []string{"a", "b", "c"}},
	} {
		wantNames(t, fmt.Sprintf("labels %v", c.labels), e.listNames(e.Project, secrets.ListQuery{Labels: c.labels}), c.want)
	}
	// An update replaces the labels as a whole; an empty map removes them.
	s, err := e.Svc.UpdateSecret(e.Ctx, e.Project, "a", secrets.UpdateSecretInput{Labels: map[string]string{"env": "dev"}})
	if err != nil {
		t.Fatal(err)
	}
	WantEqual(t, "labels after the update", s.Labels, map[string]string{"env": "dev"})
	desc := "kept"
	s, err = e.Svc.UpdateSecret(e.Ctx, e.Project, "a", secrets.UpdateSecretInput{Description: &desc})
	if err != nil || len(s.Labels) != 1 {
		t.Fatalf("an update without labels changed them: %+v, %v", s.Labels, err)
	}
	wantNames(t, "env:prod after the update", e.listNames(e.Project, secrets.ListQuery{Labels: map[string]string{"env": "prod"}}), []string{"c"})
	if s, err = e.Svc.UpdateSecret(e.Ctx, e.Project, a.ID, secrets.UpdateSecretInput{Labels: map[string]string{}}); err != nil || len(s.Labels) != 0 {
		t.Fatalf("clearing the labels: %+v, %v", s, err)
	}
	many := map[string]string{}
	for i := range secrets.MaxLabels + 1 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	for what, labels := range map[string]map[string]string{
		"too many labels":            many,
		"a key with a space":         {"a b": "v"},
		"an empty key":               {"": "v"},
		"a value too long":           {"k": strings.Repeat("é", secrets.MaxLabelValueLen+1)},
		"a value with a tab":         {"k": "a\tb"},
		"a value with an escape":     {"k": "\x1b[31m"},
		"a value that is not UTF-8":  {"k": "\xff"},
		"a key of 129 characters":    {strings.Repeat("k", 129): "v"},
		"a value of a C1 control":    {"k": "\u0085"},
		"a value with a line break":  {"k": "a\nb"},
		"a value with a 0 character": {"k": "a\x00"},
	} {
		_, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "bad", Values: vals, Labels: labels})
		WantCode(t, "create with "+what, err, secrets.Invalid)
		_, err = e.Svc.UpdateSecret(e.Ctx, e.Project, "b", secrets.UpdateSecretInput{Labels: labels})
		WantCode(t, "update with "+what, err, secrets.Invalid)
	}
	ok := map[string]string{"k": strings.Repeat("é", secrets.MaxLabelValueLen)}
	if _, err := e.Svc.UpdateSecret(e.Ctx, e.Project, "b", secrets.UpdateSecretInput{Labels: ok}); err != nil {
		t.Fatalf("a value of %d characters: %v", secrets.MaxLabelValueLen, err)
	}
	_, _, err = e.Svc.ListSecrets(e.Ctx, e.Project, secrets.ListQuery{Labels: map[string]string{"a b": "x"}})
	WantCode(t, "a label filter with a bad key", err, secrets.Invalid)
}

// countingDriver counts the items each Query returns.
type countingDriver struct {
	kv.Driver
	items atomic.Int64
}

func (c *countingDriver) Query(ctx context.Context, q kv.Query) ([]kv.Item, error) {
	items, err := c.Driver.Query(ctx, q)
	c.items.Add(int64(len(items)))
	return items, err
}

// testLabelFilterIsBounded: a filter that matches few secrets of many reads
// a bounded number of names per call and continues from its cursor, so
// that walking the pages finds every match and no call reads the project.
func testLabelFilterIsBounded(t *testing.T, e *Env) {
	const n, scan = 230, 40
	errs := Parallel(n, func(i int) error {
		in := secrets.CreateSecretInput{Name: fmt.Sprintf("s%03d", i), Values: map[string]string{"k": "v"}}
		if i == 7 || i == 150 || i == 229 {
			in.Labels = map[string]string{"rare": "yes"}
		}
		_, err := e.Svc.CreateSecret(e.Ctx, e.Project, in)
		return err
	})
	for _, err := range errs {
		WantCode(t, "create", err, "")
	}
	cd := &countingDriver{Driver: e.KV}
	svc := secrets.NewService(cd, e.Keys, secrets.Options{Logger: quietLogger(), ListScan: scan})
	var got []string
	q := secrets.ListQuery{Labels: map[string]string{"rare": "yes"}, Limit: 10}
	calls := 0
	for {
		calls++
		if calls > n {
			t.Fatal("the page walk does not end")
		}
		cd.items.Store(0)
		p, err := svc.ListSecretsPage(e.Ctx, e.Project, q)
		if err != nil {
			t.Fatal(err)
		}
		if read := cd.items.Load(); read > scan {
			t.Fatalf("one call read %d names; the bound is %d", read, scan)
		}
		for _, s := range p.Secrets {
			got = append(got, s.Name)
		}
		if p.Next == "" {
			break
		}
		q.After = p.Next
	}
	wantNames(t, "every rare secret", got, []string{"s007", "s150", "s229"})
	if calls < n/scan {
		t.Fatalf("%d calls walked %d names with a bound of %d", calls, n, scan)
	}
	// A full page of matches stops at the page, with its last name.
	p, err := e.Svc.ListSecretsPage(e.Ctx, e.Project, secrets.ListQuery{Labels: map[string]string{"rare": "yes"}, Limit: 1, After: "s100"})
	if err != nil || len(p.Secrets) != 1 || p.Secrets[0].Name != "s150" || p.Next != "s150" {
		t.Fatalf("a page of one: %+v, %v", p, err)
	}
}

// testExpiry: after expires_at, references fail NotFound naming the
// expiry and nothing is deleted; list filters by both dates; a date can be
// cleared.
func testExpiry(t *testing.T, e *Env) {
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	svc := e.clocked(&now)
	exp := now.Add(time.Hour)
	rot := now.Add(48 * time.Hour)
	s, err := svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "temp", Values: map[string]string{"k": "soon gone"}, ExpiresAt: exp, RotateBy: rot})
	if err != nil {
		t.Fatal(err)
	}
	if !s.ExpiresAt.Equal(exp) || !s.RotateBy.Equal(rot) {
		t.Fatalf("dates: %v %v", s.ExpiresAt, s.RotateBy)
	}
	if _, err := svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "later", Values: map[string]string{"k": "v"}, ExpiresAt: now.Add(30 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e.create(e.Project, "forever")
	if r := revealOne(t, e, svc, "temp", secrets.Selector{}); r.Version == nil || r.Values["k"] != "soon gone" {
		t.Fatalf("before the expiry: %+v", r)
	}
	for _, c := range []struct {
		q    secrets.ListQuery
		want []string
	}{
		{secrets.ListQuery{ExpiringBefore: now.Add(7 * 24 * time.Hour)}, []string{"temp"}},
		{secrets.ListQuery{ExpiringBefore: now.Add(60 * 24 * time.Hour)}, []string{"later", "temp"}},
		{secrets.ListQuery{ExpiringBefore: exp}, nil}, // before, strictly
		{secrets.ListQuery{RotateBefore: now.Add(72 * time.Hour)}, []string{"temp"}},
		{secrets.ListQuery{RotateBefore: now.Add(time.Hour)}, nil},
	} {
		wantNames(t, fmt.Sprintf("list %+v", c.q), e.listNames(e.Project, c.q), c.want)
	}
	now = exp
	for _, sel := range []secrets.Selector{{}, selN(1), selPrevious} {
		r := revealOne(t, e, svc, "temp", sel)
		if r == nil || r.Version != nil || r.Values != nil || !strings.Contains(r.Problem, "expired at "+exp.Format(time.RFC3339)) {
			t.Fatalf("@%s at the expiry: %+v", sel, r)
		}
	}
	got, err := svc.GetSecret(e.Ctx, e.Project, "temp")
	if err != nil || got.CurrentVersion != 1 {
		t.Fatalf("an expired secret is kept: %+v, %v", got, err)
	}
	if st := e.states("temp"); st != "EN" {
		t.Fatalf("states of an expired secret: %s", st)
	}
	// Clearing the date brings it back.
	if _, err := svc.UpdateSecret(e.Ctx, e.Project, "temp", secrets.UpdateSecretInput{ExpiresAt: &time.Time{}}); err != nil {
		t.Fatal(err)
	}
	if r := revealOne(t, e, svc, "temp", secrets.Selector{}); r.Version == nil {
		t.Fatalf("after clearing expires_at: %+v", r)
	}
	got, _ = svc.GetSecret(e.Ctx, e.Project, "temp")
	if !got.ExpiresAt.IsZero() || !got.RotateBy.Equal(rot) {
		t.Fatalf("clearing expires_at: %v, rotate_by %v", got.ExpiresAt, got.RotateBy)
	}
	for _, bad := range []time.Time{time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		_, err := svc.UpdateSecret(e.Ctx, e.Project, "temp", secrets.UpdateSecretInput{RotateBy: &bad})
		WantCode(t, fmt.Sprintf("rotate_by %v", bad), err, secrets.Invalid)
		if secrets.ErrorField(err) != "rotate_by" {
			t.Fatalf("field %q", secrets.ErrorField(err))
		}
		_, err = svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "bad", Values: map[string]string{"k": "v"}, ExpiresAt: bad})
		WantCode(t, fmt.Sprintf("expires_at %v", bad), err, secrets.Invalid)
	}
}

// testPagesBoundedByBytes: a page stops before its records pass
// MaxPageBytes, however large the limit, and says more follow; walking
// the pages finds every secret once.
func testPagesBoundedByBytes(t *testing.T, e *Env) {
	labels := map[string]string{}
	for i := range secrets.MaxLabels {
		labels[fmt.Sprintf("%03d%s", i, strings.Repeat("k", 125))] = strings.Repeat("v", secrets.MaxLabelValueLen)
	}
	const n = 70 // about 17 KB each: more than MaxPageBytes together
	for i := range n {
		if _, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: fmt.Sprintf("big-%02d", i), Values: map[string]string{"k": "v"}, Labels: labels}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	after, pages := "", 0
	for {
		page, err := e.Svc.ListSecretsPage(e.Ctx, e.Project, secrets.ListQuery{Limit: secrets.MaxPageSize, After: after})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page.Secrets) == 0 || len(page.Secrets) >= n && pages == 1 {
			t.Fatalf("page %d holds %d secrets of %d with %d labels each", pages, len(page.Secrets), n, secrets.MaxLabels)
		}
		for _, s := range page.Secrets {
			if seen[s.Name] {
				t.Fatalf("%s listed twice", s.Name)
			}
			seen[s.Name] = true
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if len(seen) != n || pages < 2 {
		t.Fatalf("%d secrets in %d pages, want %d in at least 2", len(seen), pages, n)
	}
}
