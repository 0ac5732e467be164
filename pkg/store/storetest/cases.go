package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// create makes secret name in project with one value, failing the test on
// error.
func (e *Env) create(project, name string) *secrets.Secret {
	e.T.Helper()
	s, err := e.Svc.CreateSecret(e.Ctx, project, secrets.CreateSecretInput{Name: name, Values: map[string]string{"k": "value of " + name}})
	if err != nil {
		e.T.Fatalf("CreateSecret %s/%s: %v", project, name, err)
	}
	return s
}

func (e *Env) listNames(project string, q secrets.ListQuery) []string {
	e.T.Helper()
	list, _, err := e.Svc.ListSecrets(e.Ctx, project, q)
	if err != nil {
		e.T.Fatalf("ListSecrets %+v: %v", q, err)
	}
	var out []string
	for _, s := range list {
		out = append(out, s.Name)
	}
	return out
}

func wantNames(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func testRenameAndRotate(t *testing.T, e *Env) {
	e.create(e.Project, "before")
	to := "after"
	s, err := e.Svc.UpdateSecret(e.Ctx, e.Project, "before", secrets.UpdateSecretInput{Name: &to, Values: map[string]string{"k": "two"}})
	WantCode(t, "rename and rotate", err, "")
	if s.Name != "after" || s.CurrentVersion != 2 {
		t.Fatalf("after rename and rotate: %+v", s)
	}
	got, n := e.Reveal("after")
	if n != 2 {
		t.Fatalf("Reveal after: version %d", n)
	}
	wantValues(t, "Reveal after", got, map[string]string{"k": "two"})
	if st := e.states("after"); st != "DIEN" {
		t.Fatalf("states %s", st)
	}
	wantNames(t, "list after rename", e.listNames(e.Project, secrets.ListQuery{}), []string{"after"})
	// The rename is taken from the stored record, not from the caller: a
	// second rename of the same secret frees "after", not "before".
	back := "before"
	if _, err := e.Svc.UpdateSecret(e.Ctx, e.Project, s.ID, secrets.UpdateSecretInput{Name: &back}); err != nil {
		t.Fatal(err)
	}
	wantNames(t, "list after renaming back", e.listNames(e.Project, secrets.ListQuery{}), []string{"before"})
	_, err = e.Svc.GetSecret(e.Ctx, e.Project, "after")
	WantCode(t, "the freed name", err, secrets.NotFound)
}

// testListPrefixAfterLimit: the embedded store once dropped "app" itself
// from {Prefix: "app", After: "a"}.
func testListPrefixAfterLimit(t *testing.T, e *Env) {
	const projB = "bravo"
	for _, n := range []string{"app-b", "app-a", "db", "app", "apple", "b-app", "app-c"} {
		e.create(e.Project, n)
	}
	e.create(projB, "app-0")
	for _, c := range []struct {
		q    secrets.ListQuery
		want []string
	}{
		{secrets.ListQuery{Limit: 100}, []string{"app", "app-a", "app-b", "app-c", "apple", "b-app", "db"}},
		{secrets.ListQuery{Prefix: "app-", Limit: 100}, []string{"app-a", "app-b", "app-c"}},
		{secrets.ListQuery{Prefix: "app", Limit: 100}, []string{"app", "app-a", "app-b", "app-c", "apple"}},
		{secrets.ListQuery{Prefix: "app", Limit: 2}, []string{"app", "app-a"}},
		{secrets.ListQuery{Prefix: "app", After: "a", Limit: 2}, []string{"app", "app-a"}},
		{secrets.ListQuery{Prefix: "app", After: "app-a", Limit: 2}, []string{"app-b", "app-c"}},
		{secrets.ListQuery{Prefix: "app-", After: "app", Limit: 100}, []string{"app-a", "app-b", "app-c"}},
		{secrets.ListQuery{Prefix: "app-", After: "app-c", Limit: 100}, nil},
		{secrets.ListQuery{Prefix: "app-", After: "zzz", Limit: 100}, nil},
		{secrets.ListQuery{After: "apple", Limit: 100}, []string{"b-app", "db"}},
		{secrets.ListQuery{After: "app-bb", Limit: 1}, []string{"app-c"}},
		{secrets.ListQuery{After: "a", Limit: 1}, []string{"app"}},
		{secrets.ListQuery{Prefix: "nothing", Limit: 100}, nil},
		{secrets.ListQuery{Prefix: "db", Limit: 1}, []string{"db"}},
	} {
		wantNames(t, fmt.Sprintf("ListSecrets %+v", c.q), e.listNames(e.Project, c.q), c.want)
	}
	wantNames(t, "ListSecrets of the other project", e.listNames(projB, secrets.ListQuery{Limit: 100}), []string{"app-0"})
	wantNames(t, "ListSecrets of an empty project", e.listNames("empty", secrets.ListQuery{Limit: 100}), nil)
	_, more, err := e.Svc.ListSecrets(e.Ctx, e.Project, secrets.ListQuery{Prefix: "app", Limit: 5})
	if err != nil || more {
		t.Fatalf("a page that holds the last name says more: %v, %v", more, err)
	}
	_, more, _ = e.Svc.ListSecrets(e.Ctx, e.Project, secrets.ListQuery{Prefix: "app", Limit: 4})
	if !more {
		t.Fatal("a page short of the last name says no more")
	}
}

func testListPageWalk(t *testing.T, e *Env) {
	prefixes := []string{"app-", "App", "db_", "0", "z", "app", "a"}
	var all []string
	for i := 0; i < 120; i++ {
		all = append(all, fmt.Sprintf("%s%d", prefixes[i%len(prefixes)], i*7919%1000))
	}
	errs := Parallel(len(all), func(i int) error {
		_, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: all[i], Values: map[string]string{"k": "v"}})
		return err
	})
	for i, err := range errs {
		WantCode(t, "CreateSecret "+all[i], err, "")
	}
	e.create("bravo", "app-1")
	e.create("bravo", "zz")
	sort.Strings(all)
	walk := func(prefix string, limit int) []string {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > len(all)+1 {
				t.Fatalf("page walk prefix %q limit %d does not end", prefix, limit)
			}
			list, more, err := e.Svc.ListSecrets(e.Ctx, e.Project, secrets.ListQuery{Prefix: prefix, After: after, Limit: limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(list) > limit {
				t.Fatalf("page of %d names, limit %d", len(list), limit)
			}
			for _, s := range list {
				got = append(got, s.Name)
			}
			if !more {
				return got
			}
			after = list[len(list)-1].Name
		}
	}
	for _, limit := range []int{1, 7, 50, 120, 1000} {
		wantNames(t, fmt.Sprintf("page walk, limit %d", limit), walk("", limit), all)
	}
	for _, prefix := range []string{"app", "app-", "App", "a", "0", "db_", "q"} {
		var want []string
		for _, n := range all {
			if len(n) >= len(prefix) && n[:len(prefix)] == prefix {
				want = append(want, n)
			}
		}
		wantNames(t, fmt.Sprintf("page walk, prefix %q", prefix), walk(prefix, 7), want)
	}
}

func testListByteOrder(t *testing.T, e *Env) {
	// '-' < '0'-'9' < 'A'-'Z' < '_' < 'a'-'z'
	for _, n := range []string{"b", "a_", "a-", "a0", "aZ", "aa", "A", "9", "Z-", "a"} {
		e.create(e.Project, n)
	}
	want := []string{"9", "A", "Z-", "a", "a-", "a0", "aZ", "a_", "aa", "b"}
	wantNames(t, "byte order", e.listNames(e.Project, secrets.ListQuery{Limit: 100}), want)
	wantNames(t, "byte order after a-", e.listNames(e.Project, secrets.ListQuery{After: "a-", Limit: 3}), []string{"a0", "aZ", "a_"})
}

// testListDefaultLimit: a limit of zero or less once meant "all" on the
// embedded store and 1000 on DynamoDB; it means the default page size.
func testListDefaultLimit(t *testing.T, e *Env) {
	n := secrets.DefaultPageSize + 3
	errs := Parallel(n, func(i int) error {
		_, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: fmt.Sprintf("s%03d", i), Values: map[string]string{"k": "v"}})
		return err
	})
	for _, err := range errs {
		WantCode(t, "create", err, "")
	}
	for _, limit := range []int{0, -1} {
		list, more, err := e.Svc.ListSecrets(e.Ctx, e.Project, secrets.ListQuery{Limit: limit})
		if err != nil || len(list) != secrets.DefaultPageSize || !more {
			t.Fatalf("limit %d: %d secrets, more %v, %v; want %d and more", limit, len(list), more, err, secrets.DefaultPageSize)
		}
	}
	_, _, err := e.Svc.ListSecrets(e.Ctx, e.Project, secrets.ListQuery{Limit: secrets.MaxPageSize + 1})
	WantCode(t, "limit over the maximum", err, secrets.Invalid)
}

func testListVersionsPaging(t *testing.T, e *Env) {
	e.create(e.Project, "many")
	for i := 2; i <= 12; i++ {
		e.rotate("many", map[string]string{"k": fmt.Sprint(i)})
	}
	var got []int
	before := 0
	for {
		list, more, err := e.Svc.ListVersions(e.Ctx, e.Project, "many", before, 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range list {
			got = append(got, v.Number)
			if v.Ciphertext != nil {
				t.Fatalf("a listed version carries ciphertext")
			}
		}
		if !more {
			break
		}
		before = list[len(list)-1].Number
	}
	want := []int{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
	if !slices.Equal(got, want) {
		t.Fatalf("versions paged: %v, want %v", got, want)
	}
	list, _, _ := e.Svc.ListVersions(e.Ctx, e.Project, "many", 1, 5)
	if len(list) != 0 {
		t.Fatalf("versions before 1: %d", len(list))
	}
	list, _, _ = e.Svc.ListVersions(e.Ctx, e.Project, "many", 1<<40, 2)
	if len(list) != 2 || list[0].Number != 12 {
		t.Fatalf("versions before a huge number: %v", list)
	}
}

// testVersionNumbers: numbers order as numbers past 9 and 99, and a version
// beyond the latest is NotFound.
func testVersionNumbers(t *testing.T, e *Env) {
	s := e.create(e.Project, "n")
	for i := 2; i <= 10; i++ {
		e.rotate("n", map[string]string{"k": fmt.Sprint(i)})
	}
	v, _, err := e.Svc.GetVersion(e.Ctx, e.Project, s.ID, "current")
	if err != nil || v.Number != 10 || v.State != secrets.Enabled || v.SHA256 != secrets.Digest(map[string]string{"k": "10"}) {
		t.Fatalf("current version: %+v, %v", v, err)
	}
	_, _, err = e.Svc.GetVersion(e.Ctx, e.Project, "n", "11")
	WantCode(t, "version 11 of 10", err, secrets.NotFound)
	_, _, err = e.Svc.GetVersion(e.Ctx, e.Project, "n", "0")
	WantCode(t, "version 0", err, secrets.Invalid)
}

func testProjectsIsolated(t *testing.T, e *Env) {
	a := e.create(e.Project, "same")
	b := e.create("bravo", "same")
	if a.ID == b.ID {
		t.Fatal("two projects' secrets share an ID")
	}
	_, err := e.Svc.GetSecret(e.Ctx, "bravo", a.ID)
	WantCode(t, "another project's secret by ID", err, secrets.NotFound)
	out, err := e.Svc.Reveal(e.Ctx, "bravo", []string{"same"}, nil)
	if err != nil || out["same"].Secret.ID != b.ID {
		t.Fatalf("Reveal in bravo: %v", err)
	}
	WantCode(t, "delete in acme", e.Svc.DeleteSecret(e.Ctx, e.Project, "same", nil), "")
	if _, err := e.Svc.GetSecret(e.Ctx, "bravo", "same"); err != nil {
		t.Fatalf("deleting acme's secret touched bravo's: %v", err)
	}
	// A project handle that is a prefix of another shares nothing with it.
	e.create("ab", "x")
	e.create("a", "y")
	wantNames(t, "project a", e.listNames("a", secrets.ListQuery{}), []string{"y"})
}

func (e *Env) audit(secretID string, names ...string) {
	e.T.Helper()
	var rs []*secrets.Resolution
	for _, n := range names {
		rs = append(rs, &secrets.Resolution{Project: e.Project, SecretID: secretID, SecretName: n, Version: 1, Keys: []string{"k"}, Run: json.RawMessage(`{"run":"r1"}`)})
	}
	if err := e.Svc.RecordResolutions(e.Ctx, rs); err != nil {
		e.T.Fatal(err)
	}
}

// testAuditSurvivesDelete: the audit once survived a delete on the embedded
// store and was purged with the secret on DynamoDB. It is kept, and listed
// by the secret's ID.
func testAuditSurvivesDelete(t *testing.T, e *Env) {
	s := e.create(e.Project, "audited")
	e.audit(s.ID, "audited", "audited")
	WantCode(t, "delete", e.Svc.DeleteSecret(e.Ctx, e.Project, "audited", nil), "")
	list, _, err := e.Svc.ListResolutionsOf(e.Ctx, e.Project, s.ID, "", 10)
	if err != nil || len(list) != 2 {
		t.Fatalf("audit after delete: %d records, %v; want 2", len(list), err)
	}
	for _, r := range list {
		if r.SecretID != s.ID || r.SecretName != "audited" || string(r.Run) != `{"run":"r1"}` {
			t.Fatalf("audit record after delete: %+v", r)
		}
	}
	// A new secret of the same name has an audit of its own.
	again := e.create(e.Project, "audited")
	list, _, err = e.Svc.ListResolutions(e.Ctx, e.Project, "audited", "", 10)
	if err != nil || len(list) != 0 || again.ID == s.ID {
		t.Fatalf("the new secret's audit: %d records, %v", len(list), err)
	}
}

func testAuditPaging(t *testing.T, e *Env) {
	s := e.create(e.Project, "busy")
	var ids []string
	for i := 0; i < 23; i++ {
		r := &secrets.Resolution{Project: e.Project, SecretID: s.ID, SecretName: "busy", Version: 1, Keys: []string{"k"}}
		if err := e.Svc.RecordResolutions(e.Ctx, []*secrets.Resolution{r}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		time.Sleep(time.Millisecond) // distinct milliseconds: IDs in write order
	}
	slices.Reverse(ids)
	var got []string
	before := ""
	for {
		list, more, err := e.Svc.ListResolutions(e.Ctx, e.Project, "busy", before, 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list {
			got = append(got, r.ID)
		}
		if !more {
			break
		}
		before = list[len(list)-1].ID
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("audit paged newest first:\n got  %v\n want %v", got, ids)
	}
}

// testCancelledContext: a cancelled request was a raw context error (a 500)
// on the embedded store and Unavailable on DynamoDB. It is Unavailable, and
// writes nothing.
func testCancelledContext(t *testing.T, e *Env) {
	s := e.create(e.Project, "c")
	ctx, cancel := context.WithCancel(e.Ctx)
	cancel()
	vals := map[string]string{"k": "never"}
	desc := "never"
	for what, call := range map[string]func() error{
		"create": func() error {
			_, err := e.Svc.CreateSecret(ctx, e.Project, secrets.CreateSecretInput{Name: "d", Values: vals})
			return err
		},
		"get":  func() error { _, err := e.Svc.GetSecret(ctx, e.Project, "c"); return err },
		"list": func() error { _, _, err := e.Svc.ListSecrets(ctx, e.Project, secrets.ListQuery{}); return err },
		"update": func() error {
			_, err := e.Svc.UpdateSecret(ctx, e.Project, "c", secrets.UpdateSecretInput{Description: &desc})
			return err
		},
		"rotate": func() error {
			_, err := e.Svc.UpdateSecret(ctx, e.Project, "c", secrets.UpdateSecretInput{Values: vals})
			return err
		},
		"disable": func() error {
			_, _, err := e.Svc.ChangeVersionState(ctx, e.Project, "c", "1", "disable", nil)
			return err
		},
		"delete": func() error { return e.Svc.DeleteSecret(ctx, e.Project, "c", nil) },
		"versions": func() error {
			_, _, err := e.Svc.ListVersions(ctx, e.Project, "c", 0, 0)
			return err
		},
		"reveal": func() error { _, err := e.Svc.Reveal(ctx, e.Project, []string{"c"}, nil); return err },
		"audit":  func() error { _, _, err := e.Svc.ListResolutionsOf(ctx, e.Project, s.ID, "", 0); return err },
		"keys":   func() error { _, err := e.Svc.ListAPIKeys(ctx, e.Project); return err },
		"create key": func() error {
			_, _, err := e.Svc.CreateAPIKey(ctx, e.Project, "k", nil)
			return err
		},
	} {
		WantCode(t, what+" with a cancelled context", call(), secrets.Unavailable)
	}
	got, err := e.Svc.GetSecret(e.Ctx, e.Project, "c")
	if err != nil || got.Revision != s.Revision || got.Description != "" {
		t.Fatalf("after cancelled writes: %+v, %v", got, err)
	}
	if names := e.listNames(e.Project, secrets.ListQuery{}); !slices.Equal(names, []string{"c"}) {
		t.Fatalf("after a cancelled create: %v", names)
	}
}

// testDamagedRecord: a record that does not decode was Internal on the
// embedded store and silently became zero values on DynamoDB. It is
// refused alike, on every read of it.
func testDamagedRecord(t *testing.T, e *Env) {
	s := e.create(e.Project, "damaged")
	for _, k := range []kv.Key{secrets.NameItemKey(e.Project, "damaged"), secrets.VersionItemKey(e.Project, s.ID, 1)} {
		if err := e.KV.Commit(e.Ctx, kv.Put(kv.Item{Key: k, Value: []byte(`{"id":`), Rev: s.Revision}, kv.Cond{})); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.Svc.GetSecret(e.Ctx, e.Project, "damaged")
	WantCode(t, "get of a damaged record", err, secrets.Internal)
	_, err = e.Svc.Reveal(e.Ctx, e.Project, []string{"damaged"}, nil)
	WantCode(t, "reveal of a damaged record", err, secrets.Internal)
	_, _, err = e.Svc.ListSecrets(e.Ctx, e.Project, secrets.ListQuery{})
	WantCode(t, "list over a damaged record", err, secrets.Internal)
	_, _, err = e.Svc.GetVersion(e.Ctx, e.Project, s.ID, "1")
	WantCode(t, "a damaged version record", err, secrets.Internal)
}

// testMisplacedRecord: the check that a record sits in its own place
// existed only on DynamoDB. A secret's record copied under another name,
// a version's record copied into another version's place, and a
// ciphertext copied into another version's place are refused everywhere.
func testMisplacedRecord(t *testing.T, e *Env) {
	a := e.create(e.Project, "alpha")
	e.create(e.Project, "beta")
	e.rotate("alpha", map[string]string{"k": "two"})
	get := func(k kv.Key) kv.Item {
		items, err := e.KV.Get(e.Ctx, k)
		if err != nil || len(items) != 1 {
			t.Fatalf("reading %s: %v", k, err)
		}
		return items[0]
	}
	put := func(k kv.Key, it kv.Item) {
		it.Key = k
		if err := e.KV.Commit(e.Ctx, kv.Put(it, kv.Cond{})); err != nil {
			t.Fatal(err)
		}
	}
	// alpha's record under beta's name: resolving beta must not read alpha.
	put(secrets.NameItemKey(e.Project, "beta"), get(secrets.NameItemKey(e.Project, "alpha")))
	_, err := e.Svc.GetSecret(e.Ctx, e.Project, "beta")
	WantCode(t, "a secret record under another name", err, secrets.Integrity)
	_, err = e.Svc.Reveal(e.Ctx, e.Project, []string{"beta"}, nil)
	WantCode(t, "reveal of a secret record under another name", err, secrets.Integrity)
	// version 1's record in version 2's place.
	put(secrets.VersionItemKey(e.Project, a.ID, 2), get(secrets.VersionItemKey(e.Project, a.ID, 1)))
	_, _, err = e.Svc.GetVersion(e.Ctx, e.Project, "alpha", "2")
	WantCode(t, "a version record in another version's place", err, secrets.Integrity)
	// version 1's ciphertext in version 2's place (a rollback).
	put(secrets.CiphertextItemKey(e.Project, a.ID, 2), get(secrets.CiphertextItemKey(e.Project, a.ID, 1)))
	_, err = e.Svc.Reveal(e.Ctx, e.Project, []string{"alpha"}, nil)
	WantCode(t, "an old ciphertext in the current version's place", err, secrets.Integrity)
}

// testAPIKeysOldestFirst: the ordering of API keys was written twice, once
// per backend; it is the domain's: by creation time, then ID.
func testAPIKeysOldestFirst(t *testing.T, e *Env) {
	base := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	offsets := []time.Duration{3 * time.Hour, time.Hour, 2 * time.Hour, time.Hour}
	var want []string
	type made struct {
		at time.Time
		id string
	}
	var all []made
	for i, off := range offsets {
		at := base.Add(off)
		svc := secrets.NewService(e.KV, e.Keys, secrets.Options{Now: func() time.Time { return at }, Logger: quietLogger()})
		k, _, err := svc.CreateAPIKey(e.Ctx, e.Project, fmt.Sprintf("key-%d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, made{at, k.ID})
	}
	slices.SortStableFunc(all, func(a, b made) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		if a.id < b.id {
			return -1
		}
		return 1
	})
	for _, m := range all {
		want = append(want, m.id)
	}
	keys, err := e.Svc.ListAPIKeys(e.Ctx, e.Project)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("API keys:\n got  %v\n want %v (oldest first)", got, want)
	}
	other, err := e.Svc.ListAPIKeys(e.Ctx, "bravo")
	if err != nil || len(other) != 0 {
		t.Fatalf("another project's keys: %v, %v", other, err)
	}
}

func testAPIKeyRevoke(t *testing.T, e *Env) {
	k, key, err := e.Svc.CreateAPIKey(e.Ctx, e.Project, "ci", []string{secrets.ScopeRead, secrets.ScopeWrite})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Svc.Authenticate(e.Ctx, key)
	if err != nil || got.ID != k.ID || got.Project != e.Project || !slices.Equal(got.Scopes, []string{secrets.ScopeRead, secrets.ScopeWrite}) {
		t.Fatalf("Authenticate: %+v, %v", got, err)
	}
	WantCode(t, "revoke in another project", e.Svc.RevokeAPIKey(e.Ctx, "bravo", k.ID), secrets.NotFound)
	WantCode(t, "revoke", e.Svc.RevokeAPIKey(e.Ctx, e.Project, k.ID), "")
	WantCode(t, "revoke again", e.Svc.RevokeAPIKey(e.Ctx, e.Project, k.ID), secrets.NotFound)
	fresh := secrets.NewService(e.KV, e.Keys, secrets.Options{Logger: quietLogger()})
	_, err = fresh.Authenticate(e.Ctx, key)
	WantCode(t, "a revoked key on another server", err, secrets.Unauthorized)
	if keys, _ := e.Svc.ListAPIKeys(e.Ctx, e.Project); len(keys) != 0 {
		t.Fatalf("%d keys listed after revoking the only one", len(keys))
	}
}
