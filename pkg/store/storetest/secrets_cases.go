package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

const (
	projA = "acme"
	projB = "globex"
)

func testCreateAndGet(t *testing.T, e *Env) {
	s, v := e.Create(projA, "db-main")
	WantEqual(t, "GetSecret", e.MustGet(projA, s.ID), s)
	byName, err := e.Store.GetSecretByName(e.Ctx, projA, "db-main")
	WantCode(t, "GetSecretByName", err, "")
	WantEqual(t, "GetSecretByName", byName, s)
	WantEqual(t, "GetVersion 1", e.MustGetVersion(projA, s.ID, 1), v)
}

func testGetMissing(t *testing.T, e *Env) {
	s, _ := e.Create(projA, "present")
	_, err := e.Store.GetSecret(e.Ctx, projA, "sec_01ARZ3NDEKTSV4RRFFQ69G5FAV")
	WantCode(t, "GetSecret of an unknown ID", err, secrets.NotFound)
	_, err = e.Store.GetSecret(e.Ctx, projB, s.ID)
	WantCode(t, "GetSecret from another project", err, secrets.NotFound)
	_, err = e.Store.GetSecretByName(e.Ctx, projA, "absent")
	WantCode(t, "GetSecretByName of an unknown name", err, secrets.NotFound)
	_, err = e.Store.GetSecretByName(e.Ctx, projB, "present")
	WantCode(t, "GetSecretByName from another project", err, secrets.NotFound)
	_, err = e.Store.GetVersion(e.Ctx, projA, s.ID, 2)
	WantCode(t, "GetVersion of an unwritten number", err, secrets.NotFound)
	_, err = e.Store.GetVersion(e.Ctx, projA, s.ID, 0)
	WantCode(t, "GetVersion 0", err, secrets.NotFound)
	_, err = e.Store.GetVersion(e.Ctx, projB, s.ID, 1)
	WantCode(t, "GetVersion from another project", err, secrets.NotFound)
	list, err := e.Store.ListVersions(e.Ctx, projA, "sec_01ARZ3NDEKTSV4RRFFQ69G5FAV", 0, 10)
	WantCode(t, "ListVersions of an unknown secret", err, "")
	if len(list) != 0 {
		t.Fatalf("ListVersions of an unknown secret: %d versions", len(list))
	}
}

func testInputIsCopied(t *testing.T, e *Env) {
	s, v := e.NewSecret(projA, "copied")
	want, wantV := clone(s), cloneV(v)
	if err := e.Store.CreateSecret(e.Ctx, s, v); err != nil {
		t.Fatal(err)
	}
	s.Name, s.Description = "changed", "changed"
	v.Keys[0] = "changed"
	v.Ciphertext[0] ^= 0xff
	WantEqual(t, "secret after the caller changed its input", e.MustGet(projA, want.ID), want)
	WantEqual(t, "version after the caller changed its input", e.MustGetVersion(projA, want.ID, 1), wantV)
}

func testNameUniquePerProject(t *testing.T, e *Env) {
	first, _ := e.Create(projA, "stripe")
	dup, dupV := e.NewSecret(projA, "stripe")
	WantCode(t, "CreateSecret of a taken name", e.Store.CreateSecret(e.Ctx, dup, dupV), secrets.Conflict)
	_, err := e.Store.GetSecret(e.Ctx, projA, dup.ID)
	WantCode(t, "GetSecret of the refused secret", err, secrets.NotFound)
	_, err = e.Store.GetVersion(e.Ctx, projA, dup.ID, 1)
	WantCode(t, "GetVersion of the refused secret", err, secrets.NotFound)
	got, err := e.Store.GetSecretByName(e.Ctx, projA, "stripe")
	WantCode(t, "GetSecretByName after the refused create", err, "")
	WantEqual(t, "holder of the name", got, first)
	list, err := e.Store.ListSecrets(e.Ctx, projA, secrets.ListQuery{Limit: 10})
	WantCode(t, "ListSecrets", err, "")
	if len(list) != 1 {
		t.Fatalf("ListSecrets after the refused create: %d secrets, want 1", len(list))
	}

	other, _ := e.Create(projB, "stripe")
	got, err = e.Store.GetSecretByName(e.Ctx, projB, "stripe")
	WantCode(t, "GetSecretByName in the other project", err, "")
	WantEqual(t, "same name in another project", got, other)
	got, err = e.Store.GetSecretByName(e.Ctx, projA, "stripe")
	WantCode(t, "GetSecretByName in the first project", err, "")
	WantEqual(t, "first project's holder after the other project's create", got, first)
}

func names(list []*secrets.Secret) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.Name
	}
	return out
}

func listNames(t *testing.T, e *Env, project string, q secrets.ListQuery) []string {
	t.Helper()
	list, err := e.Store.ListSecrets(e.Ctx, project, q)
	if err != nil {
		t.Fatalf("ListSecrets %s %+v: %v", project, q, err)
	}
	for _, s := range list {
		if s.Project != project {
			t.Fatalf("ListSecrets %s: secret %s of project %s", project, s.Name, s.Project)
		}
	}
	return names(list)
}

func wantNames(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func testListPrefixAfterLimit(t *testing.T, e *Env) {
	for _, n := range []string{"app-b", "app-a", "db", "app", "apple", "b-app", "app-c"} {
		e.Create(projA, n)
	}
	e.Create(projB, "app-0")
	for _, c := range []struct {
		q    secrets.ListQuery
		want []string
	}{
		{secrets.ListQuery{Limit: 100}, []string{"app", "app-a", "app-b", "app-c", "apple", "b-app", "db"}},
		{secrets.ListQuery{Prefix: "app-", Limit: 100}, []string{"app-a", "app-b", "app-c"}},
		{secrets.ListQuery{Prefix: "app", Limit: 100}, []string{"app", "app-a", "app-b", "app-c", "apple"}},
		{secrets.ListQuery{Prefix: "app", Limit: 2}, []string{"app", "app-a"}},
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
		wantNames(t, fmt.Sprintf("ListSecrets %+v", c.q), listNames(t, e, projA, c.q), c.want)
	}
	wantNames(t, "ListSecrets of the other project", listNames(t, e, projB, secrets.ListQuery{Limit: 100}), []string{"app-0"})
	wantNames(t, "ListSecrets of an empty project", listNames(t, e, "empty", secrets.ListQuery{Limit: 100}), nil)
}

func testListPageWalk(t *testing.T, e *Env) {
	prefixes := []string{"app-", "App", "db_", "0", "z", "app", "a"}
	var all []string
	for i := 0; i < 120; i++ {
		all = append(all, fmt.Sprintf("%s%d", prefixes[i%len(prefixes)], i*7919%1000))
	}
	errs := Parallel(len(all), func(i int) error {
		s, v := e.NewSecret(projA, all[i])
		return e.Store.CreateSecret(e.Ctx, s, v)
	})
	for i, err := range errs {
		WantCode(t, "CreateSecret "+all[i], err, "")
	}
	e.Create(projB, "app-1")
	e.Create(projB, "zz")
	sort.Strings(all)

	walk := func(prefix string, limit int) []string {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > len(all)+1 {
				t.Fatalf("page walk prefix %q limit %d does not end", prefix, limit)
			}
			page := listNames(t, e, projA, secrets.ListQuery{Prefix: prefix, After: after, Limit: limit})
			if len(page) > limit {
				t.Fatalf("page of %d names, limit %d", len(page), limit)
			}
			got = append(got, page...)
			if len(page) < limit {
				return got
			}
			after = page[len(page)-1]
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
	in := []string{"b", "a_", "a-", "a0", "aZ", "aa", "A", "_x", "9", "Z-", "a"}
	for _, n := range in {
		if n[0] == '_' {
			continue // names start with a letter or digit
		}
		e.Create(projA, n)
	}
	want := []string{"9", "A", "Z-", "a", "a-", "a0", "aZ", "a_", "aa", "b"}
	wantNames(t, "byte order", listNames(t, e, projA, secrets.ListQuery{Limit: 100}), want)
	wantNames(t, "byte order after a-", listNames(t, e, projA, secrets.ListQuery{After: "a-", Limit: 3}), []string{"a0", "aZ", "a_"})
}

func testUpdateDescription(t *testing.T, e *Env) {
	s, v := e.Create(projA, "described")
	next := clone(s)
	next.Description, next.Revision, next.UpdatedAt = "new words", 2, e.Tick()
	WantCode(t, "UpdateSecret", e.Store.UpdateSecret(e.Ctx, &secrets.Update{Secret: next, PrevRevision: 1}), "")
	WantEqual(t, "secret after update", e.MustGet(projA, s.ID), next)
	WantEqual(t, "version after update", e.MustGetVersion(projA, s.ID, 1), v)
}

func testUpdateStaleRevision(t *testing.T, e *Env) {
	s, v := e.Create(projA, "stale")
	s2, _ := e.Rotate(s) // revision 2
	other, _ := e.Create(projA, "bystander")
	next := clone(s2)
	next.Name, next.Description, next.Revision = "stale-renamed", "late", s.Revision+1
	put := e.NewVersion(s, 3, e.Tick())
	u := &secrets.Update{Secret: next, PrevRevision: s.Revision, OldName: "stale", Put: put,
		Changes: []secrets.StateChange{{Number: 2, From: secrets.Enabled, To: secrets.Disabled, At: e.Tick()}}}
	WantCode(t, "UpdateSecret with a stale revision", e.Store.UpdateSecret(e.Ctx, u), secrets.Aborted)
	WantEqual(t, "secret after the refused update", e.MustGet(projA, s.ID), s2)
	_, err := e.Store.GetVersion(e.Ctx, projA, s.ID, 3)
	WantCode(t, "version of the refused update", err, secrets.NotFound)
	if got := e.MustGetVersion(projA, s.ID, 2).State; got != secrets.Enabled {
		t.Fatalf("version 2 is %s after the refused update, want ENABLED", got)
	}
	v.State, v.StateChangedAt = secrets.Disabled, s2.UpdatedAt
	WantEqual(t, "version 1 after the refused update", e.MustGetVersion(projA, s.ID, 1), v)
	_, err = e.Store.GetSecretByName(e.Ctx, projA, "stale-renamed")
	WantCode(t, "new name of the refused update", err, secrets.NotFound)
	got, err := e.Store.GetSecretByName(e.Ctx, projA, "stale")
	WantCode(t, "old name after the refused update", err, "")
	WantEqual(t, "old name's holder", got, s2)
	WantEqual(t, "bystander", e.MustGet(projA, other.ID), other)
}

func testUpdateMissing(t *testing.T, e *Env) {
	s, _ := e.NewSecret(projA, "never-created")
	next := clone(s)
	next.Revision = 2
	WantCode(t, "UpdateSecret of an absent secret", e.Store.UpdateSecret(e.Ctx, &secrets.Update{Secret: next, PrevRevision: 1}), secrets.NotFound)
	_, err := e.Store.GetSecret(e.Ctx, projA, s.ID)
	WantCode(t, "GetSecret after updating an absent secret", err, secrets.NotFound)
	_, err = e.Store.GetSecretByName(e.Ctx, projA, s.Name)
	WantCode(t, "GetSecretByName after updating an absent secret", err, secrets.NotFound)
}

func testUpdatePutExisting(t *testing.T, e *Env) {
	s, v := e.Create(projA, "twice")
	next := clone(s)
	next.Description, next.Revision, next.LatestVersion = "changed", 2, 1
	put := e.NewVersion(s, 1, e.Tick())
	WantCode(t, "UpdateSecret putting an existing number", e.Store.UpdateSecret(e.Ctx, &secrets.Update{Secret: next, PrevRevision: 1, Put: put}), secrets.Aborted)
	WantEqual(t, "secret after the refused put", e.MustGet(projA, s.ID), s)
	WantEqual(t, "version 1 after the refused put", e.MustGetVersion(projA, s.ID, 1), v)
}

func testUpdateChangeFromMismatch(t *testing.T, e *Env) {
	s, v := e.Create(projA, "mismatch")
	next := clone(s)
	next.CurrentVersion, next.Revision = 0, 2
	u := &secrets.Update{Secret: next, PrevRevision: 1, Put: e.NewVersion(s, 2, e.Tick()),
		Changes: []secrets.StateChange{{Number: 1, From: secrets.Disabled, To: secrets.Destroyed, At: e.Tick()}}}
	WantCode(t, "UpdateSecret with a wrong From", e.Store.UpdateSecret(e.Ctx, u), secrets.Aborted)
	WantEqual(t, "secret after the refused change", e.MustGet(projA, s.ID), s)
	WantEqual(t, "version after the refused change", e.MustGetVersion(projA, s.ID, 1), v)
	_, err := e.Store.GetVersion(e.Ctx, projA, s.ID, 2)
	WantCode(t, "Put of the refused change", err, secrets.NotFound)
}

func testUpdateChangeMissingVersion(t *testing.T, e *Env) {
	s, v := e.Create(projA, "nine")
	next := clone(s)
	next.Revision = 2
	u := &secrets.Update{Secret: next, PrevRevision: 1,
		Changes: []secrets.StateChange{{Number: 9, From: secrets.Disabled, To: secrets.Enabled, At: e.Tick()}}}
	if err := e.Store.UpdateSecret(e.Ctx, u); err == nil {
		t.Fatal("UpdateSecret changing a version that does not exist: no error")
	}
	WantEqual(t, "secret after the refused change", e.MustGet(projA, s.ID), s)
	WantEqual(t, "version after the refused change", e.MustGetVersion(projA, s.ID, 1), v)
	_, err := e.Store.GetVersion(e.Ctx, projA, s.ID, 9)
	WantCode(t, "version 9", err, secrets.NotFound)
}

func testRotate(t *testing.T, e *Env) {
	s, v1 := e.Create(projA, "rotated")
	s2, v2 := e.Rotate(s)
	WantEqual(t, "secret after rotation", e.MustGet(projA, s.ID), s2)
	WantEqual(t, "version 2", e.MustGetVersion(projA, s.ID, 2), v2)
	got1 := e.MustGetVersion(projA, s.ID, 1)
	v1.State, v1.StateChangedAt = secrets.Disabled, s2.UpdatedAt
	WantEqual(t, "version 1 after rotation", got1, v1)
}

func testRename(t *testing.T, e *Env) {
	s, _ := e.Create(projA, "old-name")
	next := clone(s)
	next.Name, next.Revision, next.UpdatedAt = "new-name", 2, e.Tick()
	WantCode(t, "rename", e.Store.UpdateSecret(e.Ctx, &secrets.Update{Secret: next, PrevRevision: 1, OldName: "old-name"}), "")
	_, err := e.Store.GetSecretByName(e.Ctx, projA, "old-name")
	WantCode(t, "GetSecretByName of the old name", err, secrets.NotFound)
	got, err := e.Store.GetSecretByName(e.Ctx, projA, "new-name")
	WantCode(t, "GetSecretByName of the new name", err, "")
	WantEqual(t, "secret by its new name", got, next)
	WantEqual(t, "secret by ID", e.MustGet(projA, s.ID), next)
	wantNames(t, "list after rename", listNames(t, e, projA, secrets.ListQuery{Limit: 10}), []string{"new-name"})

	// The old name is free for another secret; renaming back is refused.
	taker, _ := e.Create(projA, "old-name")
	got, err = e.Store.GetSecretByName(e.Ctx, projA, "old-name")
	WantCode(t, "GetSecretByName of the reused name", err, "")
	WantEqual(t, "new holder of the old name", got, taker)
	back := clone(next)
	back.Name, back.Revision = "old-name", 3
	WantCode(t, "rename back into a taken name", e.Store.UpdateSecret(e.Ctx, &secrets.Update{Secret: back, PrevRevision: 2, OldName: "new-name"}), secrets.Conflict)
	wantNames(t, "list after renames", listNames(t, e, projA, secrets.ListQuery{Limit: 10}), []string{"new-name", "old-name"})
}

func testRenameAndRotate(t *testing.T, e *Env) {
	s, v1 := e.Create(projA, "before")
	now := e.Tick()
	next := clone(s)
	next.Name, next.Revision, next.UpdatedAt, next.LatestVersion, next.CurrentVersion = "after", 2, now, 2, 2
	v2 := e.NewVersion(s, 2, now)
	u := &secrets.Update{Secret: next, PrevRevision: 1, OldName: "before", Put: v2,
		Changes: []secrets.StateChange{{Number: 1, From: secrets.Enabled, To: secrets.Disabled, At: now}}}
	WantCode(t, "rename and rotate", e.Store.UpdateSecret(e.Ctx, u), "")
	_, err := e.Store.GetSecretByName(e.Ctx, projA, "before")
	WantCode(t, "GetSecretByName of the old name", err, secrets.NotFound)
	got, err := e.Store.GetSecretByName(e.Ctx, projA, "after")
	WantCode(t, "GetSecretByName of the new name", err, "")
	WantEqual(t, "secret by its new name", got, next)
	WantEqual(t, "version 2", e.MustGetVersion(projA, s.ID, 2), v2)
	v1.State, v1.StateChangedAt = secrets.Disabled, now
	WantEqual(t, "version 1", e.MustGetVersion(projA, s.ID, 1), v1)
	cur, err := e.Store.CurrentVersions(e.Ctx, projA, []string{"before", "after"})
	WantCode(t, "CurrentVersions", err, "")
	if len(cur) != 1 {
		t.Fatalf("CurrentVersions after rename: %d entries, want 1", len(cur))
	}
	WantEqual(t, "current of the renamed secret", cur["after"], &secrets.Current{Secret: next, Version: v2})
}

func testRenameIntoTaken(t *testing.T, e *Env) {
	a, av := e.Create(projA, "alpha")
	b, _ := e.Create(projA, "beta")
	next := clone(a)
	next.Name, next.Description, next.Revision = "beta", "changed", 2
	u := &secrets.Update{Secret: next, PrevRevision: 1, OldName: "alpha", Put: e.NewVersion(a, 2, e.Tick()),
		Changes: []secrets.StateChange{{Number: 1, From: secrets.Enabled, To: secrets.Disabled, At: e.Tick()}}}
	WantCode(t, "rename into a taken name", e.Store.UpdateSecret(e.Ctx, u), secrets.Conflict)
	WantEqual(t, "renamed secret after the conflict", e.MustGet(projA, a.ID), a)
	WantEqual(t, "holder after the conflict", e.MustGet(projA, b.ID), b)
	WantEqual(t, "version 1 after the conflict", e.MustGetVersion(projA, a.ID, 1), av)
	_, err := e.Store.GetVersion(e.Ctx, projA, a.ID, 2)
	WantCode(t, "Put of the refused rename", err, secrets.NotFound)
	for name, want := range map[string]*secrets.Secret{"alpha": a, "beta": b} {
		got, err := e.Store.GetSecretByName(e.Ctx, projA, name)
		WantCode(t, "GetSecretByName "+name, err, "")
		WantEqual(t, "holder of "+name, got, want)
	}
}

func testDestroy(t *testing.T, e *Env) {
	s, v1 := e.Create(projA, "destroyed")
	s2, _ := e.Rotate(s)
	at := e.Tick()
	e.Change(s2, 2, secrets.StateChange{Number: 1, From: secrets.Disabled, To: secrets.Destroyed, At: at})
	got := e.MustGetVersion(projA, s.ID, 1)
	if got.Ciphertext != nil {
		t.Fatalf("a DESTROYED version still has %d bytes of ciphertext", len(got.Ciphertext))
	}
	v1.State, v1.StateChangedAt, v1.Ciphertext = secrets.Destroyed, at, nil
	WantEqual(t, "DESTROYED version", got, v1)
	if e.MustGetVersion(projA, s.ID, 2).Ciphertext == nil {
		t.Fatal("destroying version 1 removed version 2's ciphertext")
	}

	// Destroying the ENABLED version directly.
	s3 := e.MustGet(projA, s.ID)
	e.Change(s3, 0, secrets.StateChange{Number: 2, From: secrets.Enabled, To: secrets.Destroyed, At: e.Tick()})
	if got := e.MustGetVersion(projA, s.ID, 2); got.Ciphertext != nil || got.State != secrets.Destroyed {
		t.Fatalf("version 2 after destroy: state %s, %d bytes of ciphertext", got.State, len(got.Ciphertext))
	}
	cur, err := e.Store.CurrentVersions(e.Ctx, projA, []string{"destroyed"})
	WantCode(t, "CurrentVersions", err, "")
	if c := cur["destroyed"]; c == nil || c.Version != nil {
		t.Fatalf("CurrentVersions after destroying every version: %+v", c)
	}
}

func testDelete(t *testing.T, e *Env) {
	s, _ := e.Create(projA, "doomed")
	s2, _ := e.Rotate(s)
	s3, _ := e.Rotate(s2)
	keep, keepV := e.Create(projA, "kept")
	WantCode(t, "DeleteSecret from another project", e.Store.DeleteSecret(e.Ctx, projB, s.ID, s3.Revision), secrets.NotFound)
	WantCode(t, "DeleteSecret", e.Store.DeleteSecret(e.Ctx, projA, s.ID, s3.Revision), "")
	_, err := e.Store.GetSecret(e.Ctx, projA, s.ID)
	WantCode(t, "GetSecret after delete", err, secrets.NotFound)
	_, err = e.Store.GetSecretByName(e.Ctx, projA, "doomed")
	WantCode(t, "GetSecretByName after delete", err, secrets.NotFound)
	for n := 1; n <= 3; n++ {
		_, err = e.Store.GetVersion(e.Ctx, projA, s.ID, n)
		WantCode(t, fmt.Sprintf("GetVersion %d after delete", n), err, secrets.NotFound)
	}
	list, err := e.Store.ListVersions(e.Ctx, projA, s.ID, 0, 10)
	WantCode(t, "ListVersions after delete", err, "")
	if len(list) != 0 {
		t.Fatalf("ListVersions after delete: %d versions", len(list))
	}
	cur, err := e.Store.CurrentVersions(e.Ctx, projA, []string{"doomed", "kept"})
	WantCode(t, "CurrentVersions after delete", err, "")
	if _, ok := cur["doomed"]; ok || cur["kept"] == nil {
		t.Fatalf("CurrentVersions after delete: %v", cur)
	}
	wantNames(t, "list after delete", listNames(t, e, projA, secrets.ListQuery{Limit: 10}), []string{"kept"})
	WantEqual(t, "other secret after delete", e.MustGet(projA, keep.ID), keep)
	WantEqual(t, "other secret's version after delete", e.MustGetVersion(projA, keep.ID, 1), keepV)

	again, _ := e.Create(projA, "doomed")
	if again.ID == s.ID {
		t.Fatal("test fixture reused an ID")
	}
	got, err := e.Store.GetSecretByName(e.Ctx, projA, "doomed")
	WantCode(t, "GetSecretByName of the re-created name", err, "")
	WantEqual(t, "re-created secret", got, again)
	WantCode(t, "DeleteSecret again", e.Store.DeleteSecret(e.Ctx, projA, s.ID, s3.Revision), secrets.NotFound)
}

func testDeleteStale(t *testing.T, e *Env) {
	s, v := e.Create(projA, "guarded")
	WantCode(t, "DeleteSecret with a stale revision", e.Store.DeleteSecret(e.Ctx, projA, s.ID, s.Revision+1), secrets.Aborted)
	WantEqual(t, "secret after the refused delete", e.MustGet(projA, s.ID), s)
	WantEqual(t, "version after the refused delete", e.MustGetVersion(projA, s.ID, 1), v)
	_, err := e.Store.GetSecretByName(e.Ctx, projA, "guarded")
	WantCode(t, "name after the refused delete", err, "")
}

func testDeleteMissing(t *testing.T, e *Env) {
	WantCode(t, "DeleteSecret of an absent secret", e.Store.DeleteSecret(e.Ctx, projA, "sec_01ARZ3NDEKTSV4RRFFQ69G5FAV", 1), secrets.NotFound)
}

func testGetVersionExact(t *testing.T, e *Env) {
	s, v := e.NewSecret(projA, "bytes")
	ct := make([]byte, 0, 512+70000)
	for i := 0; i < 512; i++ {
		ct = append(ct, byte(i))
	}
	ct = append(ct, bytes.Repeat([]byte{0, 0xff, '"', '\\'}, 70000/4)...)
	v.Ciphertext = ct
	if err := e.Store.CreateSecret(e.Ctx, s, v); err != nil {
		t.Fatal(err)
	}
	got := e.MustGetVersion(projA, s.ID, 1)
	if !bytes.Equal(got.Ciphertext, ct) {
		t.Fatalf("ciphertext of %d bytes came back as %d different bytes", len(ct), len(got.Ciphertext))
	}
	// The returned bytes are the caller's: changing them changes nothing
	// stored, and later writes (which may move or grow the store's memory)
	// do not change them.
	got.Ciphertext[0] ^= 0xff
	kept := e.MustGetVersion(projA, s.ID, 1)
	if !bytes.Equal(kept.Ciphertext, ct) {
		t.Fatal("changing returned ciphertext changed the stored ciphertext")
	}
	errs := Parallel(24, func(i int) error {
		o, ov := e.NewSecret(projA, fmt.Sprintf("filler-%d", i))
		ov.Ciphertext = bytes.Repeat([]byte{byte(i)}, 64<<10)
		return e.Store.CreateSecret(e.Ctx, o, ov)
	})
	for _, err := range errs {
		WantCode(t, "CreateSecret filler", err, "")
	}
	if !bytes.Equal(kept.Ciphertext, ct) {
		t.Fatal("returned ciphertext changed after later writes")
	}
}

func testListVersions(t *testing.T, e *Env) {
	s, _ := e.Create(projA, "history")
	for i := 0; i < 4; i++ {
		s, _ = e.Rotate(s)
	}
	o, _ := e.Create(projA, "neighbour")
	e.Rotate(o)

	numbers := func(before, limit int) []int {
		t.Helper()
		list, err := e.Store.ListVersions(e.Ctx, projA, s.ID, before, limit)
		WantCode(t, fmt.Sprintf("ListVersions before %d limit %d", before, limit), err, "")
		out := []int{}
		for _, v := range list {
			if v.Ciphertext != nil {
				t.Fatalf("ListVersions returned ciphertext for version %d", v.Number)
			}
			if v.SecretID != s.ID {
				t.Fatalf("ListVersions returned a version of secret %s", v.SecretID)
			}
			out = append(out, v.Number)
		}
		return out
	}
	for _, c := range []struct {
		before, limit int
		want          []int
	}{
		{0, 10, []int{5, 4, 3, 2, 1}},
		{0, 2, []int{5, 4}},
		{4, 2, []int{3, 2}},
		{2, 10, []int{1}},
		{1, 10, []int{}},
		{6, 10, []int{5, 4, 3, 2, 1}},
		{100, 1, []int{5}},
	} {
		if got := numbers(c.before, c.limit); !slices.Equal(got, c.want) {
			t.Fatalf("ListVersions before %d limit %d: %v, want %v", c.before, c.limit, got, c.want)
		}
	}
	list, err := e.Store.ListVersions(e.Ctx, projA, s.ID, 0, 10)
	WantCode(t, "ListVersions", err, "")
	want := cloneV(e.MustGetVersion(projA, s.ID, 3))
	want.Ciphertext = nil
	WantEqual(t, "listed version 3", list[2], want)
}

func testCurrentVersions(t *testing.T, e *Env) {
	a, av := e.Create(projA, "a")
	b, _ := e.Create(projA, "b")
	b, bv := e.Rotate(b)
	c, _ := e.Create(projA, "c")
	c = e.Change(c, 0, secrets.StateChange{Number: 1, From: secrets.Enabled, To: secrets.Disabled, At: e.Tick()})
	e.Create(projB, "d")

	cur, err := e.Store.CurrentVersions(e.Ctx, projA, []string{"a", "b", "c", "d", "missing", "a"})
	WantCode(t, "CurrentVersions", err, "")
	if len(cur) != 3 {
		t.Fatalf("CurrentVersions: %d entries, want a, b, c", len(cur))
	}
	WantEqual(t, "current of a", cur["a"], &secrets.Current{Secret: a, Version: av})
	WantEqual(t, "current of b", cur["b"], &secrets.Current{Secret: b, Version: bv})
	WantEqual(t, "current of c (none ENABLED)", cur["c"], &secrets.Current{Secret: c})
	if len(cur["a"].Version.Ciphertext) == 0 {
		t.Fatal("CurrentVersions returned no ciphertext")
	}

	empty, err := e.Store.CurrentVersions(e.Ctx, projA, nil)
	WantCode(t, "CurrentVersions of no names", err, "")
	if len(empty) != 0 {
		t.Fatalf("CurrentVersions of no names: %v", empty)
	}
}

func testReturnedCopies(t *testing.T, e *Env) {
	s, v := e.Create(projA, "original")
	e.Create(projA, "second")

	got := e.MustGet(projA, s.ID)
	got.Name, got.Revision = "mutated", 99
	byName, _ := e.Store.GetSecretByName(e.Ctx, projA, "original")
	byName.Description = "mutated"
	gv := e.MustGetVersion(projA, s.ID, 1)
	gv.Ciphertext[0] ^= 0xff
	gv.Keys[0] = "mutated"
	gv.State = secrets.Destroyed
	list, _ := e.Store.ListSecrets(e.Ctx, projA, secrets.ListQuery{Limit: 10})
	for _, x := range list {
		x.Name = "mutated"
	}
	vs, _ := e.Store.ListVersions(e.Ctx, projA, s.ID, 0, 10)
	vs[0].Keys[1] = "mutated"
	cur, _ := e.Store.CurrentVersions(e.Ctx, projA, []string{"original"})
	cur["original"].Secret.Name = "mutated"
	cur["original"].Version.Ciphertext[1] ^= 0xff
	cur["original"].Version.Keys[0] = "mutated"

	WantEqual(t, "secret after mutating returned values", e.MustGet(projA, s.ID), s)
	WantEqual(t, "version after mutating returned values", e.MustGetVersion(projA, s.ID, 1), v)
	wantNames(t, "list after mutating returned values", listNames(t, e, projA, secrets.ListQuery{Limit: 10}), []string{"original", "second"})
	cur, _ = e.Store.CurrentVersions(e.Ctx, projA, []string{"original"})
	WantEqual(t, "current after mutating returned values", cur["original"], &secrets.Current{Secret: s, Version: v})

	k := e.NewAPIKey(projA, "copies")
	gk, err := e.Store.GetAPIKeyByHash(e.Ctx, k.Hash)
	WantCode(t, "GetAPIKeyByHash", err, "")
	gk.Scopes[0], gk.Name = "mutated", "mutated"
	lk, _ := e.Store.ListAPIKeys(e.Ctx, projA)
	lk[0].Scopes[1] = "mutated"
	gk, _ = e.Store.GetAPIKeyByHash(e.Ctx, k.Hash)
	WantEqual(t, "API key after mutating returned values", gk, k)

	r := &secrets.IdempotencyRecord{Project: projA, Key: "k", RequestHash: "h", Done: true, Status: 201,
		Header: map[string]string{"ETag": `"1"`}, Body: []byte(`{"id":"x"}`), CreatedAt: e.Tick(), ExpiresAt: e.Tick().Add(secrets.IdempotencyTTL)}
	WantCode(t, "CreateIdempotency", e.Store.CreateIdempotency(e.Ctx, r), "")
	want := *r
	want.Header = map[string]string{"ETag": `"1"`}
	want.Body = []byte(`{"id":"x"}`)
	r.Header["ETag"], r.Body[0] = "mutated", 'X'
	gr, err := e.Store.GetIdempotency(e.Ctx, projA, "k", e.Tick())
	WantCode(t, "GetIdempotency", err, "")
	WantEqual(t, "idempotency record after mutating the input", gr, &want)
	gr.Header["ETag"], gr.Body[0] = "mutated", 'X'
	gr, _ = e.Store.GetIdempotency(e.Ctx, projA, "k", e.Tick())
	WantEqual(t, "idempotency record after mutating returned values", gr, &want)

	res := &secrets.Resolution{ID: secrets.NewULID(e.Tick(), nil), Project: projA, SecretID: s.ID, SecretName: s.Name,
		Version: 1, Keys: []string{"password"}, Run: []byte(`{"run":"r1"}`), ResolvedAt: e.Tick()}
	WantCode(t, "AddResolutions", e.Store.AddResolutions(e.Ctx, []*secrets.Resolution{res}), "")
	rl, _ := e.Store.ListResolutions(e.Ctx, projA, s.ID, "", 10)
	rl[0].Keys[0], rl[0].Run[0] = "mutated", 'X'
	rl, _ = e.Store.ListResolutions(e.Ctx, projA, s.ID, "", 10)
	WantEqual(t, "resolutions after mutating returned values", rl, []*secrets.Resolution{res})
}

// testUpdateStaleMetadataOnly: an update that only changes metadata (no new
// version, no state change) must still be refused when the revision moved
// on, with or without a rename; nothing changes under either name.
func testUpdateStaleMetadataOnly(t *testing.T, e *Env) {
	s, _ := e.Create(projA, "meta")
	s, _ = e.Rotate(s)
	for _, rename := range []bool{false, true} {
		next := clone(s)
		next.Description, next.Revision = "late", s.Revision
		u := &secrets.Update{Secret: next, PrevRevision: s.Revision - 1}
		if rename {
			next.Name, u.OldName = "meta-renamed", "meta"
		}
		err := e.Store.UpdateSecret(e.Ctx, u)
		WantCode(t, fmt.Sprintf("stale metadata-only update (rename %v)", rename), err, secrets.Aborted)
		for _, got := range []*secrets.Secret{e.MustGet(projA, s.ID), mustByName(t, e, "meta")} {
			if got.Description != s.Description || got.Revision != s.Revision || got.Name != "meta" {
				t.Fatalf("rename %v: the refused update changed the secret: %+v", rename, got)
			}
		}
		if _, err := e.Store.GetSecretByName(e.Ctx, projA, "meta-renamed"); secrets.ErrorCode(err) != secrets.NotFound {
			t.Fatalf("rename %v: the refused rename claimed the new name: %v", rename, err)
		}
	}
}

func mustByName(t *testing.T, e *Env, name string) *secrets.Secret {
	t.Helper()
	s, err := e.Store.GetSecretByName(e.Ctx, projA, name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
