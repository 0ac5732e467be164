// Package storetest is the conformance suite every secrets.Store must pass:
// Run checks the Store contract method by method (pkg/secrets/store.go), and
// RunService checks the domain rules and races through a secrets.Service
// built on the store.
//
// A bug found in one backend becomes a case here, so every backend is held
// to it. Each case runs on a fresh store from the caller's newStore.
//
// It is imported from tests only. It imports pkg/secrets, pkg/keys/local
// and the standard library.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// Case is one named check of a store.
type Case struct {
	Name string
	Func func(t *testing.T, e *Env)
}

// Env is what a Store case works with: a fresh store, a context and a
// deterministic clock.
type Env struct {
	T     *testing.T
	Ctx   context.Context
	Store secrets.Store

	mu    sync.Mutex
	clock time.Time
}

// StoreCases are the cases Run runs, in order. Add a case here to hold every
// backend to it.
var StoreCases = []Case{
	{"CreateAndGet", testCreateAndGet},
	{"GetMissing", testGetMissing},
	{"InputIsCopied", testInputIsCopied},
	{"NameUniquePerProject", testNameUniquePerProject},
	{"ListPrefixAfterLimit", testListPrefixAfterLimit},
	{"ListPageWalk", testListPageWalk},
	{"ListByteOrder", testListByteOrder},
	{"UpdateDescription", testUpdateDescription},
	{"UpdateStaleRevision", testUpdateStaleRevision},
	{"UpdateStaleMetadataOnly", testUpdateStaleMetadataOnly},
	{"UpdateMissing", testUpdateMissing},
	{"UpdatePutExistingNumber", testUpdatePutExisting},
	{"UpdateChangeFromMismatch", testUpdateChangeFromMismatch},
	{"UpdateChangeMissingVersion", testUpdateChangeMissingVersion},
	{"Rotate", testRotate},
	{"Rename", testRename},
	{"RenameAndRotate", testRenameAndRotate},
	{"RenameIntoTakenName", testRenameIntoTaken},
	{"DestroyRemovesCiphertext", testDestroy},
	{"Delete", testDelete},
	{"DeleteStaleRevision", testDeleteStale},
	{"DeleteMissing", testDeleteMissing},
	{"GetVersionExactBytes", testGetVersionExact},
	{"ListVersions", testListVersions},
	{"CurrentVersions", testCurrentVersions},
	{"ReturnedValuesAreCopies", testReturnedCopies},
	{"APIKeyCreateGet", testAPIKeyCreateGet},
	{"APIKeyList", testAPIKeyList},
	{"APIKeyDelete", testAPIKeyDelete},
	{"APIKeyTouch", testAPIKeyTouch},
	{"Idempotency", testIdempotency},
	{"IdempotencyExpiry", testIdempotencyExpiry},
	{"Resolutions", testResolutions},
}

// Run runs every StoreCase as a subtest, each on a fresh store.
func Run(t *testing.T, newStore func(t *testing.T) secrets.Store) {
	t.Helper()
	for _, c := range StoreCases {
		t.Run(c.Name, func(t *testing.T) {
			c.Func(t, newEnv(t, newStore(t)))
		})
	}
}

func newEnv(t *testing.T, s secrets.Store) *Env {
	return &Env{T: t, Ctx: context.Background(), Store: s, clock: time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)}
}

// Tick advances the clock by a millisecond and returns it.
func (e *Env) Tick() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.clock = e.clock.Add(time.Millisecond)
	return e.clock
}

// NewSecret returns a secret record (revision 1) and its version 1, ENABLED,
// with random ciphertext; nothing is stored.
func (e *Env) NewSecret(project, name string) (*secrets.Secret, *secrets.Version) {
	now := e.Tick()
	s := &secrets.Secret{
		ID: "sec_" + secrets.NewULID(now, nil), Project: project, Name: name, Description: "about " + name,
		CurrentVersion: 1, LatestVersion: 1, CreatedAt: now, UpdatedAt: now, Revision: 1,
	}
	return s, e.NewVersion(s, 1, now)
}

// NewVersion returns version n of s, ENABLED, with random ciphertext.
func (e *Env) NewVersion(s *secrets.Secret, n int, at time.Time) *secrets.Version {
	sum := make([]byte, 32)
	rand.Read(sum)
	ct := make([]byte, 40+n%7)
	rand.Read(ct)
	return &secrets.Version{
		Project: s.Project, SecretID: s.ID, Number: n, State: secrets.Enabled,
		SHA256: hex.EncodeToString(sum), Keys: []string{"password", "user"},
		CreatedAt: at, StateChangedAt: at, Ciphertext: ct,
	}
}

// Create stores a new secret and fails the test if it cannot.
func (e *Env) Create(project, name string) (*secrets.Secret, *secrets.Version) {
	e.T.Helper()
	s, v := e.NewSecret(project, name)
	if err := e.Store.CreateSecret(e.Ctx, s, v); err != nil {
		e.T.Fatalf("CreateSecret %s/%s: %v", project, name, err)
	}
	return clone(s), cloneV(v)
}

// Rotate adds version latest+1 ENABLED and moves the ENABLED one (if any)
// to DISABLED, as the Service does; it returns the new secret and version.
func (e *Env) Rotate(s *secrets.Secret) (*secrets.Secret, *secrets.Version) {
	e.T.Helper()
	now := e.Tick()
	next := clone(s)
	n := s.LatestVersion + 1
	v := e.NewVersion(s, n, now)
	u := &secrets.Update{Secret: next, PrevRevision: s.Revision, Put: v}
	if s.CurrentVersion != 0 {
		u.Changes = []secrets.StateChange{{Number: s.CurrentVersion, From: secrets.Enabled, To: secrets.Disabled, At: now}}
	}
	next.LatestVersion, next.CurrentVersion = n, n
	next.UpdatedAt, next.Revision = now, s.Revision+1
	if err := e.Store.UpdateSecret(e.Ctx, u); err != nil {
		e.T.Fatalf("UpdateSecret rotate %s to %d: %v", s.Name, n, err)
	}
	return clone(next), cloneV(v)
}

// Change applies state changes to s's versions and returns the new secret.
func (e *Env) Change(s *secrets.Secret, current int, changes ...secrets.StateChange) *secrets.Secret {
	e.T.Helper()
	next := clone(s)
	next.CurrentVersion = current
	next.UpdatedAt, next.Revision = e.Tick(), s.Revision+1
	if err := e.Store.UpdateSecret(e.Ctx, &secrets.Update{Secret: next, PrevRevision: s.Revision, Changes: changes}); err != nil {
		e.T.Fatalf("UpdateSecret changes %+v: %v", changes, err)
	}
	return clone(next)
}

// MustGet returns the secret by ID, failing the test if it cannot.
func (e *Env) MustGet(project, id string) *secrets.Secret {
	e.T.Helper()
	s, err := e.Store.GetSecret(e.Ctx, project, id)
	if err != nil {
		e.T.Fatalf("GetSecret %s/%s: %v", project, id, err)
	}
	return s
}

// MustGetVersion returns a version, failing the test if it cannot.
func (e *Env) MustGetVersion(project, id string, n int) *secrets.Version {
	e.T.Helper()
	v, err := e.Store.GetVersion(e.Ctx, project, id, n)
	if err != nil {
		e.T.Fatalf("GetVersion %s/%s/%d: %v", project, id, n, err)
	}
	return v
}

func clone(s *secrets.Secret) *secrets.Secret { c := *s; return &c }

func cloneV(v *secrets.Version) *secrets.Version {
	c := *v
	c.Keys = append([]string(nil), v.Keys...)
	c.Ciphertext = append([]byte(nil), v.Ciphertext...)
	return &c
}

// WantCode fails the test unless err has code want ("" for no error).
func WantCode(t testing.TB, what string, err error, want secrets.Code) {
	t.Helper()
	if got := secrets.ErrorCode(err); got != want {
		t.Fatalf("%s: error code %q (%v), want %q", what, got, err, orNone(want))
	}
}

func orNone(c secrets.Code) string {
	if c == "" {
		return "no error"
	}
	return string(c)
}

// normalize returns a copy of v (a pointer to a domain struct, or a slice or
// map of them) with times in UTC and empty slices and maps as nil, so that
// stores that encode differently compare equal.
func normalize(v any) any {
	return norm(reflect.ValueOf(v)).Interface()
}

var timeType = reflect.TypeOf(time.Time{})

func norm(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(norm(v.Elem()))
		return p
	case reflect.Struct:
		if v.Type() == timeType {
			t := v.Interface().(time.Time)
			if t.IsZero() {
				return reflect.ValueOf(time.Time{})
			}
			return reflect.ValueOf(t.UTC())
		}
		c := reflect.New(v.Type()).Elem()
		for i := 0; i < v.NumField(); i++ {
			c.Field(i).Set(norm(v.Field(i)))
		}
		return c
	case reflect.Slice:
		if v.Len() == 0 {
			return reflect.Zero(v.Type())
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			c.Index(i).Set(norm(v.Index(i)))
		}
		return c
	case reflect.Map:
		if v.Len() == 0 {
			return reflect.Zero(v.Type())
		}
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			c.SetMapIndex(it.Key(), norm(it.Value()))
		}
		return c
	}
	return v
}

// WantEqual fails the test unless got and want are equal after normalize.
func WantEqual(t testing.TB, what string, got, want any) {
	t.Helper()
	g, w := normalize(got), normalize(want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got  %s\n want %s", what, show(g), show(w))
	}
}

func show(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = show(rv.Index(i).Interface())
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return fmt.Sprintf("&%+v", rv.Elem().Interface())
	}
	return fmt.Sprintf("%+v", v)
}

// Parallel runs fn(0..n-1) concurrently and returns each call's error.
func Parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}
