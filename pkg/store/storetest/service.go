package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Case is one named check of the domain over a store.
type Case struct {
	Name string
	Func func(t *testing.T, e *Env)
}

// Env is what a Case works with: a Service over a fresh store driver and a
// local key wrapper with a random key.
type Env struct {
	T       *testing.T
	Ctx     context.Context
	KV      kv.Driver
	Keys    secrets.KeyWrapper
	Svc     *secrets.Service
	Project string
	// NewDriver makes another fresh driver of the kind under test, for
	// cases that need several stores.
	NewDriver func(t *testing.T) kv.Driver
}

// newDriver returns a fresh driver of the kind under test.
func (e *Env) newDriver(t *testing.T) kv.Driver {
	t.Helper()
	if e.NewDriver == nil {
		t.Fatal("storetest: this Env was not made by Run, and cannot make another driver")
	}
	return e.NewDriver(t)
}

// Cases are the cases Run runs, in order. Add a case here to hold every
// backend to it.
var Cases = []Case{
	{"CreateAndReveal", testSvcCreateAndReveal},
	{"CreateTakenName", testSvcCreateTaken},
	{"RotateMovesEnabledToDisabled", testSvcRotate},
	{"EnableDisableDestroy", testSvcVersionActions},
	{"RenameKeepsValues", testSvcRename},
	{"RenameAndRotate", testRenameAndRotate},
	{"DeleteFreesName", testSvcDelete},
	{"IfRevision", testSvcIfRevision},
	{"ListPrefixAfterLimit", testListPrefixAfterLimit},
	{"ListPageWalk", testListPageWalk},
	{"ListByteOrder", testListByteOrder},
	{"ListDefaultLimit", testListDefaultLimit},
	{"ListVersionsPaging", testListVersionsPaging},
	{"VersionsBeyondTheList", testVersionNumbers},
	{"ProjectsAreIsolated", testProjectsIsolated},
	{"AuditSurvivesDelete", testAuditSurvivesDelete},
	{"AuditPaging", testAuditPaging},
	{"CancelledContextIsUnavailable", testCancelledContext},
	{"DamagedRecordIsRefused", testDamagedRecord},
	{"MisplacedRecordIsRefused", testMisplacedRecord},
	{"APIKeysOldestFirst", testAPIKeysOldestFirst},
	{"APIKeyRevoke", testAPIKeyRevoke},
	{"ConcurrentRotations", testSvcConcurrentRotations},
	{"ConcurrentCreates", testSvcConcurrentCreates},
	{"APIKeyLastUsed", testSvcAPIKeyLastUsed},
	{"RevokeDuringAuthentication", testSvcRevokeDuringAuth},
	{"KeyCheck", testKeyCheck},
	{"KeyCheckDataWithoutCheck", testKeyCheckDataWithoutCheck},
	{"ServiceKeys", testServiceKeys},
	{"GrantMintAndVerify", testGrantMintAndVerify},
	{"GrantMintRefusals", testGrantMintRefusals},
	{"GrantLifetime", testGrantLifetime},
	{"GrantBindsIDs", testGrantBindsIDs},
	{"StagedRotation", testStagedRotation},
	{"GraceAndPins", testGraceAndPins},
	{"Consumers", testConsumers},
	{"ReferenceCheck", testReferenceCheck},
	{"Labels", testLabels},
	{"LabelFilterIsBounded", testLabelFilterIsBounded},
	{"PagesBoundedByBytes", testPagesBoundedByBytes},
	{"Expiry", testExpiry},
	{"EventPerChange", testEventPerChange},
	{"EventPaging", testEventPaging},
	{"EventCommitDeadline", testEventCommitDeadline},
	{"EventWait", testEventWait},
	{"EventsUnderFaults", testEventsUnderFaults},
	{"EventsUnderConcurrency", testEventsUnderConcurrency},
	{"TrashRestore", testTrashRestore},
	{"DeleteWithPurge", testDeleteWithPurge},
	{"TrashRetention", testTrashRetention},
	{"RemindersOnce", testRemindersOnce},
	{"SweepExpired", testSweepExpired},
}

// Run runs every Case as a subtest, each on a fresh driver.
func Run(t *testing.T, newDriver func(t *testing.T) kv.Driver) {
	t.Helper()
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			env := NewEnv(t, newDriver(t))
			env.NewDriver = newDriver
			c.Func(t, env)
		})
	}
}

// NewEnv returns a Service over d with a fresh random local key.
func NewEnv(t *testing.T, d kv.Driver) *Env {
	kek := make([]byte, 32)
	rand.Read(kek)
	w, err := local.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	return &Env{T: t, Ctx: context.Background(), KV: d, Keys: w, Project: "acme",
		Svc: secrets.NewService(d, w, secrets.Options{Logger: quietLogger()})}
}

// Reveal returns the values of name's ENABLED version (nil if none) and the
// version's number (0 if none), failing the test if the secret is absent.
func (e *Env) Reveal(name string) (map[string]string, int) {
	e.T.Helper()
	out, err := e.Svc.Reveal(e.Ctx, e.Project, []string{name}, nil)
	if err != nil {
		e.T.Fatalf("Reveal %s: %v", name, err)
	}
	r, ok := out[name]
	if !ok {
		e.T.Fatalf("Reveal %s: absent", name)
	}
	if r.Version == nil {
		return nil, 0
	}
	return r.Values, r.Version.Number
}

// Check verifies the invariants of a secret: versions 1..latest all exist,
// at most one is ENABLED, and it is the secret's current version. It returns
// the versions, oldest first.
func (e *Env) Check(name string) (*secrets.Secret, []*secrets.Version) {
	e.T.Helper()
	sec, err := e.Svc.GetSecret(e.Ctx, e.Project, name)
	if err != nil {
		e.T.Fatalf("GetSecret %s: %v", name, err)
	}
	list, more, err := e.Svc.ListVersions(e.Ctx, e.Project, name, 0, secrets.MaxPageSize)
	if err != nil || more {
		e.T.Fatalf("ListVersions %s: more %v, %v", name, more, err)
	}
	if len(list) != sec.LatestVersion {
		e.T.Fatalf("%s: %d versions, latest is %d", name, len(list), sec.LatestVersion)
	}
	enabled := 0
	oldest := make([]*secrets.Version, len(list))
	for i, v := range list {
		if want := sec.LatestVersion - i; v.Number != want {
			e.T.Fatalf("%s: version %d listed where %d belongs (numbering must be gapless, newest first)", name, v.Number, want)
		}
		if v.State == secrets.Enabled {
			enabled++
			if v.Number != sec.CurrentVersion {
				e.T.Fatalf("%s: version %d is ENABLED, current version is %d", name, v.Number, sec.CurrentVersion)
			}
		}
		oldest[len(list)-1-i] = v
	}
	if enabled > 1 || (enabled == 0) != (sec.CurrentVersion == 0) {
		e.T.Fatalf("%s: %d ENABLED versions, current version %d", name, enabled, sec.CurrentVersion)
	}
	return sec, oldest
}

func (e *Env) states(name string) string {
	e.T.Helper()
	_, vs := e.Check(name)
	s := ""
	for _, v := range vs {
		s += string(v.State[:2])
	}
	return s
}

func (e *Env) action(name string, n int, action string) (*secrets.Version, error) {
	v, _, err := e.Svc.ChangeVersionState(e.Ctx, e.Project, name, strconv.Itoa(n), action, nil)
	return v, err
}

func (e *Env) rotate(name string, values map[string]string) *secrets.Secret {
	e.T.Helper()
	s, err := e.Svc.UpdateSecret(e.Ctx, e.Project, name, secrets.UpdateSecretInput{Values: values})
	if err != nil {
		e.T.Fatalf("rotate %s: %v", name, err)
	}
	return s
}

func wantValues(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if !maps.Equal(got, want) {
		// Test values only: these are not real secrets.
		t.Fatalf("%s: revealed %v, want %v", what, got, want)
	}
}

func testSvcCreateAndReveal(t *testing.T, e *Env) {
	vals := map[string]string{"user": "admin", "password": "hunter2"}
	s, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "db", Description: "main database", Values: vals})
	WantCode(t, "CreateSecret", err, "")
	if s.CurrentVersion != 1 || s.LatestVersion != 1 {
		t.Fatalf("created secret: current %d latest %d", s.CurrentVersion, s.LatestVersion)
	}
	byID, err := e.Svc.GetSecret(e.Ctx, e.Project, s.ID)
	WantCode(t, "GetSecret by ID", err, "")
	WantEqual(t, "secret by ID", byID, s)
	got, n := e.Reveal("db")
	wantValues(t, "Reveal", got, vals)
	if n != 1 {
		t.Fatalf("Reveal: version %d, want 1", n)
	}
	v, _, err := e.Svc.GetVersion(e.Ctx, e.Project, "db", "current")
	WantCode(t, "GetVersion current", err, "")
	if v.Number != 1 || v.State != secrets.Enabled || v.SHA256 != secrets.Digest(vals) || v.Ciphertext != nil {
		t.Fatalf("version 1: %+v", v)
	}
	if st := e.states("db"); st != "EN" {
		t.Fatalf("states %s", st)
	}
	out, err := e.Svc.Reveal(e.Ctx, e.Project, []string{"db", "absent"}, nil)
	WantCode(t, "Reveal with an absent name", err, "")
	if _, ok := out["absent"]; ok || len(out) != 1 {
		t.Fatalf("Reveal of an absent name: %d entries", len(out))
	}
	out, err = e.Svc.Reveal(e.Ctx, "other-project", []string{"db"}, nil)
	WantCode(t, "Reveal from another project", err, "")
	if len(out) != 0 {
		t.Fatal("Reveal from another project found the secret")
	}
}

func testSvcCreateTaken(t *testing.T, e *Env) {
	first := map[string]string{"k": "first"}
	if _, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "taken", Values: first}); err != nil {
		t.Fatal(err)
	}
	_, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "taken", Values: map[string]string{"k": "second"}})
	WantCode(t, "CreateSecret of a taken name", err, secrets.Conflict)
	got, _ := e.Reveal("taken")
	wantValues(t, "Reveal after the refused create", got, first)
	if _, err := e.Svc.CreateSecret(e.Ctx, "other-project", secrets.CreateSecretInput{Name: "taken", Values: first}); err != nil {
		t.Fatalf("same name in another project: %v", err)
	}
}

func testSvcRotate(t *testing.T, e *Env) {
	if _, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "api", Values: map[string]string{"token": "v1"}}); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 4; i++ {
		vals := map[string]string{"token": fmt.Sprintf("v%d", i)}
		s := e.rotate("api", vals)
		if s.CurrentVersion != i || s.LatestVersion != i {
			t.Fatalf("rotation %d: current %d latest %d", i, s.CurrentVersion, s.LatestVersion)
		}
		got, n := e.Reveal("api")
		wantValues(t, fmt.Sprintf("Reveal after rotation %d", i), got, vals)
		if n != i {
			t.Fatalf("Reveal after rotation %d: version %d", i, n)
		}
	}
	if st := e.states("api"); st != "DIDIDIEN" {
		t.Fatalf("states after three rotations: %s, want DIDIDIEN", st)
	}
}

func testSvcVersionActions(t *testing.T, e *Env) {
	v := func(i int) map[string]string { return map[string]string{"k": fmt.Sprintf("value-%d", i)} }
	if _, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "s", Values: v(1)}); err != nil {
		t.Fatal(err)
	}
	e.rotate("s", v(2))
	e.rotate("s", v(3))

	steps := []struct {
		n       int
		action  string
		code    secrets.Code
		states  string
		current int
	}{
		{1, secrets.ActionEnable, "", "ENDIDI", 1},
		{1, secrets.ActionEnable, "", "ENDIDI", 1},  // no-op
		{3, secrets.ActionDisable, "", "ENDIDI", 1}, // no-op
		{1, secrets.ActionDisable, "", "DIDIDI", 0},
		{2, secrets.ActionDestroy, "", "DIDEDI", 0},
		{2, secrets.ActionEnable, secrets.Conflict, "DIDEDI", 0},
		{2, secrets.ActionDisable, secrets.Conflict, "DIDEDI", 0},
		{2, secrets.ActionDestroy, "", "DIDEDI", 0}, // no-op
		{3, secrets.ActionEnable, "", "DIDEEN", 3},
		{3, secrets.ActionDestroy, "", "DIDEDE", 0},
		{1, secrets.ActionEnable, "", "ENDEDE", 1},
		{4, secrets.ActionEnable, secrets.NotFound, "ENDEDE", 1},
	}
	for _, st := range steps {
		what := fmt.Sprintf("%s %d", st.action, st.n)
		got, err := e.action("s", st.n, st.action)
		WantCode(t, what, err, st.code)
		if err == nil && (got.Number != st.n || got.Ciphertext != nil) {
			t.Fatalf("%s returned version %d (ciphertext %v)", what, got.Number, got.Ciphertext != nil)
		}
		if states := e.states("s"); states != st.states {
			t.Fatalf("after %s: states %s, want %s", what, states, st.states)
		}
		vals, n := e.Reveal("s")
		if n != st.current {
			t.Fatalf("after %s: Reveal version %d, want %d", what, n, st.current)
		}
		if n != 0 {
			wantValues(t, "Reveal after "+what, vals, v(n))
		}
	}
	for _, n := range []int{2, 3} {
		if _, _, err := e.Svc.GetVersion(e.Ctx, e.Project, "s", fmt.Sprint(n)); err != nil {
			t.Fatalf("DESTROYED version %d: %v", n, err)
		} else if ct := e.ciphertext("s", n); ct != nil {
			t.Fatalf("DESTROYED version %d keeps %d bytes of ciphertext", n, len(ct))
		}
	}
	if ct := e.ciphertext("s", 1); len(ct) == 0 {
		t.Fatal("a DISABLED version lost its ciphertext")
	}
	e.rotate("s", v(4))
	if st := e.states("s"); st != "DIDEDEEN" {
		t.Fatalf("after rotating: states %s, want DIDEDEEN", st)
	}
}

func (e *Env) secretID(name string) string {
	e.T.Helper()
	s, err := e.Svc.GetSecret(e.Ctx, e.Project, name)
	if err != nil {
		e.T.Fatal(err)
	}
	return s.ID
}

// ciphertext returns what the store holds as version n's ciphertext (nil
// if nothing).
func (e *Env) ciphertext(name string, n int) []byte {
	e.T.Helper()
	items, err := e.KV.Get(e.Ctx, secrets.CiphertextItemKey(e.Project, e.secretID(name), n))
	if err != nil {
		e.T.Fatal(err)
	}
	if len(items) == 0 {
		return nil
	}
	return items[0].Value
}

// partitionItems returns every item the store holds under partition.
func (e *Env) partitionItems(partition string) []kv.Item {
	e.T.Helper()
	items, err := e.KV.Query(e.Ctx, kv.Query{Partition: partition, Limit: 10000})
	if err != nil {
		e.T.Fatal(err)
	}
	return items
}

func testSvcRename(t *testing.T, e *Env) {
	vals := map[string]string{"k": "renamed-value"}
	created, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "before", Values: vals})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "other", Values: vals}); err != nil {
		t.Fatal(err)
	}
	to := "after"
	s, err := e.Svc.UpdateSecret(e.Ctx, e.Project, "before", secrets.UpdateSecretInput{Name: &to})
	WantCode(t, "rename", err, "")
	if s.ID != created.ID || s.Name != "after" || s.LatestVersion != 1 {
		t.Fatalf("renamed secret: %+v", s)
	}
	got, _ := e.Reveal("after")
	wantValues(t, "Reveal by the new name", got, vals)
	// The old name is an alias: references to it still resolve, the API
	// does not serve it, and nobody else may take it until it ends.
	out, _ := e.Svc.Reveal(e.Ctx, e.Project, []string{"before"}, nil)
	if r := out["before"]; r == nil || r.Secret.ID != created.ID || r.Alias != "before" {
		t.Fatal("the old name does not resolve as an alias")
	}
	wantValues(t, "Reveal by the old name", out["before"].Values, vals)
	_, err = e.Svc.GetSecret(e.Ctx, e.Project, "before")
	WantCode(t, "GetSecret by the old name", err, secrets.NotFound)
	_, err = e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "before", Values: vals})
	WantCode(t, "create with an alias's name", err, secrets.Conflict)
	if !strings.Contains(secrets.ErrorMessage(err), "alias") {
		t.Fatalf("the Conflict does not say why: %v", err)
	}
	taken := "other"
	_, err = e.Svc.UpdateSecret(e.Ctx, e.Project, "after", secrets.UpdateSecretInput{Name: &taken, Values: map[string]string{"k": "x"}})
	WantCode(t, "rename into a taken name", err, secrets.Conflict)
	if st := e.states("after"); st != "EN" {
		t.Fatalf("a refused rename with values wrote a version: %s", st)
	}
	if _, err := e.Svc.DeleteAlias(e.Ctx, e.Project, "after", "before"); err != nil {
		t.Fatal(err)
	}
	if out, _ := e.Svc.Reveal(e.Ctx, e.Project, []string{"before"}, nil); len(out) != 0 {
		t.Fatal("an ended alias still resolves")
	}
	if _, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "before", Values: vals}); err != nil {
		t.Fatalf("create with the freed name: %v", err)
	}
	// With no alias time, a rename frees the old name at once.
	none := time.Duration(0)
	if _, err := e.Svc.UpdateSecret(e.Ctx, e.Project, "other", secrets.UpdateSecretInput{AliasTTL: &none}); err != nil {
		t.Fatal(err)
	}
	third := "third"
	if _, err := e.Svc.UpdateSecret(e.Ctx, e.Project, "other", secrets.UpdateSecretInput{Name: &third}); err != nil {
		t.Fatal(err)
	}
	if out, _ := e.Svc.Reveal(e.Ctx, e.Project, []string{"other"}, nil); len(out) != 0 {
		t.Fatal("a rename without alias time left an alias")
	}
}

// testSvcDelete: a delete moves the secret to the trash and frees its name
// at once; a purge erases its versions.
func testSvcDelete(t *testing.T, e *Env) {
	first, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "gone", Values: map[string]string{"k": "one"}})
	if err != nil {
		t.Fatal(err)
	}
	e.rotate("gone", map[string]string{"k": "two"})
	WantCode(t, "DeleteSecret", e.Svc.DeleteSecret(e.Ctx, e.Project, "gone", nil), "")
	_, err = e.Svc.GetSecret(e.Ctx, e.Project, first.ID)
	WantCode(t, "GetSecret after delete", err, secrets.NotFound)
	if !strings.Contains(secrets.ErrorMessage(err), "trash") {
		t.Fatalf("the NotFound of a trashed secret does not say where it is: %v", err)
	}
	out, _ := e.Svc.Reveal(e.Ctx, e.Project, []string{"gone"}, nil)
	if r := out["gone"]; r != nil && (r.Version != nil || !strings.Contains(r.Problem, "trash")) {
		t.Fatalf("a deleted secret still resolves: %+v", r)
	}
	WantCode(t, "DeleteSecret again", e.Svc.DeleteSecret(e.Ctx, e.Project, "gone", nil), secrets.NotFound)
	again, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "gone", Values: map[string]string{"k": "three"}})
	WantCode(t, "CreateSecret of the freed name", err, "")
	if again.ID == first.ID || again.LatestVersion != 1 {
		t.Fatalf("re-created secret: %+v", again)
	}
	got, _ := e.Reveal("gone")
	wantValues(t, "Reveal of the re-created secret", got, map[string]string{"k": "three"})
	WantCode(t, "purge", e.Svc.PurgeTrash(e.Ctx, e.Project, first.ID), "")
	if left := e.partitionItems(secrets.VersionItemKey(e.Project, first.ID, 1).Partition); len(left) != 0 {
		t.Fatalf("%d items of the purged secret's versions remain", len(left))
	}
	got, _ = e.Reveal("gone")
	wantValues(t, "Reveal of the re-created secret after the purge", got, map[string]string{"k": "three"})
}

func testSvcIfRevision(t *testing.T, e *Env) {
	s, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "etag", Values: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	stale := s.Revision
	desc := "changed"
	s2, err := e.Svc.UpdateSecret(e.Ctx, e.Project, "etag", secrets.UpdateSecretInput{Description: &desc, IfRevision: &stale})
	WantCode(t, "update with the current revision", err, "")
	if s2.Revision != stale+1 {
		t.Fatalf("revision %d after update from %d", s2.Revision, stale)
	}
	_, err = e.Svc.UpdateSecret(e.Ctx, e.Project, "etag", secrets.UpdateSecretInput{Values: map[string]string{"k": "w"}, IfRevision: &stale})
	WantCode(t, "update with a stale revision", err, secrets.PreconditionFailed)
	_, _, err = e.Svc.ChangeVersionState(e.Ctx, e.Project, "etag", "1", secrets.ActionDisable, &stale)
	WantCode(t, "version action with a stale revision", err, secrets.PreconditionFailed)
	WantCode(t, "delete with a stale revision", e.Svc.DeleteSecret(e.Ctx, e.Project, "etag", &stale), secrets.PreconditionFailed)
	if st := e.states("etag"); st != "EN" {
		t.Fatalf("states after refused writes: %s", st)
	}
}

func testSvcConcurrentRotations(t *testing.T, e *Env) {
	const n = 64
	if _, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "hot", Values: map[string]string{"k": "initial"}}); err != nil {
		t.Fatal(err)
	}
	vals := make([]map[string]string, n)
	digests := map[string]int{}
	for i := range vals {
		vals[i] = map[string]string{"k": fmt.Sprintf("rotation-%d", i)}
		digests[secrets.Digest(vals[i])] = i
	}
	errs := Parallel(n, func(i int) error {
		_, err := e.Svc.UpdateSecret(e.Ctx, e.Project, "hot", secrets.UpdateSecretInput{Values: vals[i]})
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
	}
	sec, vs := e.Check("hot")
	if sec.LatestVersion != n+1 || sec.CurrentVersion != n+1 {
		t.Fatalf("after %d concurrent rotations: latest %d current %d, want %d", n, sec.LatestVersion, sec.CurrentVersion, n+1)
	}
	seen := map[int]bool{}
	for _, v := range vs[1:] {
		i, ok := digests[v.SHA256]
		if !ok || seen[i] {
			t.Fatalf("version %d does not hold exactly one rotation's values (known %v, repeated %v)", v.Number, ok, seen[i])
		}
		seen[i] = true
		if want := secrets.Disabled; v.Number <= n && v.State != want {
			t.Fatalf("version %d is %s, want %s", v.Number, v.State, want)
		}
	}
	if vs[0].State != secrets.Disabled {
		t.Fatalf("version 1 is %s after rotations", vs[0].State)
	}
	got, num := e.Reveal("hot")
	if num != n+1 {
		t.Fatalf("Reveal: version %d, want %d", num, n+1)
	}
	wantValues(t, "Reveal after concurrent rotations", got, vals[digests[vs[n].SHA256]])
}

func testSvcConcurrentCreates(t *testing.T, e *Env) {
	const n = 32
	created := make([]*secrets.Secret, n)
	errs := Parallel(n, func(i int) error {
		s, err := e.Svc.CreateSecret(e.Ctx, e.Project, secrets.CreateSecretInput{Name: "contested", Values: map[string]string{"k": fmt.Sprintf("creator-%d", i)}})
		created[i] = s
		return err
	})
	winner := -1
	for i, err := range errs {
		switch secrets.ErrorCode(err) {
		case "":
			if winner >= 0 {
				t.Fatalf("creates %d and %d of the same name both succeeded", winner, i)
			}
			winner = i
		case secrets.Conflict:
		default:
			t.Fatalf("create %d: %v, want success or Conflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no create succeeded")
	}
	got, _ := e.Reveal("contested")
	wantValues(t, "Reveal of the contested name", got, map[string]string{"k": fmt.Sprintf("creator-%d", winner)})
	sec, _ := e.Check("contested")
	if sec.ID != created[winner].ID {
		t.Fatalf("the name is held by %s, the winner created %s", sec.ID, created[winner].ID)
	}
	list, _, err := e.Svc.ListSecrets(e.Ctx, e.Project, secrets.ListQuery{})
	WantCode(t, "ListSecrets", err, "")
	if len(list) != 1 {
		t.Fatalf("%d secrets after contested creates, want 1", len(list))
	}
}

// testSvcAPIKeyLastUsed: authenticating records the key's last use, at most
// once per secrets.LastUsedInterval, however many servers (auth caches)
// see it.
func testSvcAPIKeyLastUsed(t *testing.T, e *Env) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	server := func() *secrets.Service { // a fresh auth cache, on the same store and clock
		return secrets.NewService(e.KV, nil, secrets.Options{Now: func() time.Time { return now }, AuthCacheTTL: -1})
	}
	k, key, err := server().CreateAPIKey(e.Ctx, e.Project, "ci", nil)
	if err != nil {
		t.Fatal(err)
	}
	lastUsed := func() time.Time {
		t.Helper()
		keys, err := e.Svc.ListAPIKeys(e.Ctx, e.Project)
		if err != nil || len(keys) != 1 || keys[0].ID != k.ID {
			t.Fatalf("ListAPIKeys: %v, %v", keys, err)
		}
		return keys[0].LastUsedAt
	}
	if !lastUsed().IsZero() {
		t.Fatal("a new key has a last use")
	}
	auth := func(when string, want time.Time) {
		t.Helper()
		got, err := server().Authenticate(e.Ctx, key)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if !got.LastUsedAt.Equal(want) || !lastUsed().Equal(want) {
			t.Fatalf("%s: last use %v returned, %v stored; want %v", when, got.LastUsedAt, lastUsed(), want)
		}
	}
	first := now
	auth("first use", first)
	now = now.Add(secrets.LastUsedInterval - time.Second)
	auth("a use within the interval", first)
	now = now.Add(time.Second)
	auth("a use one interval later", now)
}

// pausingDriver holds the next read of an API key after it is read, until
// released, as a slow store would, so that a revocation can land between
// the read and what the authentication does with it.
type pausingDriver struct {
	kv.Driver
	mu            sync.Mutex
	read, release chan struct{} // set for the next lookup only
}

func (p *pausingDriver) Get(ctx context.Context, keys ...kv.Key) ([]kv.Item, error) {
	items, err := p.Driver.Get(ctx, keys...)
	p.mu.Lock()
	read, release := p.read, p.release
	if read != nil && len(keys) == 1 && strings.HasPrefix(keys[0].Partition, "K#") {
		p.read, p.release = nil, nil
	} else {
		read = nil
	}
	p.mu.Unlock()
	if read != nil {
		close(read)
		<-release
	}
	return items, err
}

func (p *pausingDriver) pauseNext() (read, release chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.read, p.release = make(chan struct{}), make(chan struct{})
	return p.read, p.release
}

// testSvcRevokeDuringAuth: a key revoked through a server while
// one of its requests is authenticating there is refused by that server
// from then on; the request in flight is refused too when it still had
// to record the key's use.
func testSvcRevokeDuringAuth(t *testing.T, e *Env) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ps := &pausingDriver{Driver: e.KV}
	svc := secrets.NewService(ps, nil, secrets.Options{Now: func() time.Time { return now }})
	for _, recent := range []bool{false, true} {
		k, key, err := svc.CreateAPIKey(e.Ctx, e.Project, fmt.Sprintf("recent-%v", recent), nil)
		if err != nil {
			t.Fatal(err)
		}
		if recent {
			// A use recorded a moment ago (so the next authentication
			// writes nothing), and no longer in the auth cache.
			if _, err := svc.Authenticate(e.Ctx, key); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Minute)
		}
		read, release := ps.pauseNext()
		inflight := make(chan error, 1)
		go func() { _, err := svc.Authenticate(e.Ctx, key); inflight <- err }()
		<-read
		if err := svc.RevokeAPIKey(e.Ctx, e.Project, k.ID); err != nil {
			t.Fatal(err)
		}
		close(release)
		err = <-inflight
		if !recent && secrets.ErrorCode(err) != secrets.Unauthorized {
			t.Errorf("the request in flight during the revocation: %v, want Unauthorized", err)
		}
		if _, err := svc.Authenticate(e.Ctx, key); secrets.ErrorCode(err) != secrets.Unauthorized {
			t.Errorf("recent use %v: a request after the revocation: %v, want Unauthorized", recent, err)
		}
	}
}
