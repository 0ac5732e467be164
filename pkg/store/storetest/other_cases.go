package storetest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// NewAPIKey stores a new API key with every scope and returns it.
func (e *Env) NewAPIKey(project, name string) *secrets.APIKey {
	e.T.Helper()
	raw := make([]byte, 32)
	rand.Read(raw)
	now := e.Tick()
	k := &secrets.APIKey{
		ID: "key_" + secrets.NewULID(now, nil), Project: project, Name: name,
		Scopes: append([]string(nil), secrets.AllScopes...), Hash: secrets.HashAPIKey(hex.EncodeToString(raw)), CreatedAt: now,
	}
	if err := e.Store.CreateAPIKey(e.Ctx, k); err != nil {
		e.T.Fatalf("CreateAPIKey: %v", err)
	}
	c := *k
	c.Scopes = append([]string(nil), k.Scopes...)
	return &c
}

func keyIDs(ks []*secrets.APIKey) []string {
	out := []string{}
	for _, k := range ks {
		out = append(out, k.ID)
	}
	return out
}

func testAPIKeyCreateGet(t *testing.T, e *Env) {
	k := e.NewAPIKey(projA, "ci")
	got, err := e.Store.GetAPIKeyByHash(e.Ctx, k.Hash)
	WantCode(t, "GetAPIKeyByHash", err, "")
	WantEqual(t, "API key", got, k)
	_, err = e.Store.GetAPIKeyByHash(e.Ctx, secrets.HashAPIKey("unknown"))
	WantCode(t, "GetAPIKeyByHash of an unknown hash", err, secrets.NotFound)

	sameHash := *k
	sameHash.ID, sameHash.Project = "key_"+secrets.NewULID(e.Tick(), nil), projB
	WantCode(t, "CreateAPIKey of an existing hash", e.Store.CreateAPIKey(e.Ctx, &sameHash), secrets.Conflict)
	sameID := *k
	sameID.Hash = secrets.HashAPIKey("another key")
	WantCode(t, "CreateAPIKey of an existing ID", e.Store.CreateAPIKey(e.Ctx, &sameID), secrets.Conflict)
	_, err = e.Store.GetAPIKeyByHash(e.Ctx, sameID.Hash)
	WantCode(t, "GetAPIKeyByHash of the refused key", err, secrets.NotFound)
	list, err := e.Store.ListAPIKeys(e.Ctx, projB)
	WantCode(t, "ListAPIKeys", err, "")
	if len(list) != 0 {
		t.Fatalf("the refused key was stored: %v", keyIDs(list))
	}
	got, _ = e.Store.GetAPIKeyByHash(e.Ctx, k.Hash)
	WantEqual(t, "API key after the refused creates", got, k)
}

func testAPIKeyList(t *testing.T, e *Env) {
	var want []*secrets.APIKey
	for i := 0; i < 5; i++ {
		want = append(want, e.NewAPIKey(projA, fmt.Sprintf("key-%d", i)))
		if i == 2 {
			e.NewAPIKey(projB, "other")
		}
	}
	list, err := e.Store.ListAPIKeys(e.Ctx, projA)
	WantCode(t, "ListAPIKeys", err, "")
	WantEqual(t, "ListAPIKeys, oldest first", list, want)
	list, err = e.Store.ListAPIKeys(e.Ctx, projB)
	WantCode(t, "ListAPIKeys of the other project", err, "")
	if len(list) != 1 || list[0].Name != "other" {
		t.Fatalf("ListAPIKeys of the other project: %v", keyIDs(list))
	}
	list, err = e.Store.ListAPIKeys(e.Ctx, "empty")
	WantCode(t, "ListAPIKeys of an empty project", err, "")
	if len(list) != 0 {
		t.Fatalf("ListAPIKeys of an empty project: %v", keyIDs(list))
	}
}

func testAPIKeyDelete(t *testing.T, e *Env) {
	k := e.NewAPIKey(projA, "doomed")
	kept := e.NewAPIKey(projA, "kept")
	WantCode(t, "DeleteAPIKey from another project", e.Store.DeleteAPIKey(e.Ctx, projB, k.ID), secrets.NotFound)
	if _, err := e.Store.GetAPIKeyByHash(e.Ctx, k.Hash); err != nil {
		t.Fatalf("key after a refused delete from another project: %v", err)
	}
	WantCode(t, "DeleteAPIKey", e.Store.DeleteAPIKey(e.Ctx, projA, k.ID), "")
	_, err := e.Store.GetAPIKeyByHash(e.Ctx, k.Hash)
	WantCode(t, "GetAPIKeyByHash after delete", err, secrets.NotFound)
	list, err := e.Store.ListAPIKeys(e.Ctx, projA)
	WantCode(t, "ListAPIKeys after delete", err, "")
	WantEqual(t, "ListAPIKeys after delete", list, []*secrets.APIKey{kept})
	WantCode(t, "DeleteAPIKey again", e.Store.DeleteAPIKey(e.Ctx, projA, k.ID), secrets.NotFound)
	WantCode(t, "TouchAPIKey after delete", e.Store.TouchAPIKey(e.Ctx, projA, k.ID, e.Tick()), secrets.NotFound)
	if _, err := e.Store.GetAPIKeyByHash(e.Ctx, k.Hash); secrets.ErrorCode(err) != secrets.NotFound {
		t.Fatalf("TouchAPIKey brought a deleted key back: %v", err)
	}
}

func testAPIKeyTouch(t *testing.T, e *Env) {
	k := e.NewAPIKey(projA, "used")
	at := e.Tick().Add(time.Hour)
	WantCode(t, "TouchAPIKey", e.Store.TouchAPIKey(e.Ctx, projA, k.ID, at), "")
	got, err := e.Store.GetAPIKeyByHash(e.Ctx, k.Hash)
	WantCode(t, "GetAPIKeyByHash", err, "")
	k.LastUsedAt = at
	WantEqual(t, "API key after touch", got, k)
	list, _ := e.Store.ListAPIKeys(e.Ctx, projA)
	WantEqual(t, "listed API key after touch", list, []*secrets.APIKey{k})
	WantCode(t, "TouchAPIKey from another project", e.Store.TouchAPIKey(e.Ctx, projB, k.ID, e.Tick()), secrets.NotFound)
	WantCode(t, "TouchAPIKey of an unknown key", e.Store.TouchAPIKey(e.Ctx, projA, "key_01ARZ3NDEKTSV4RRFFQ69G5FAV", e.Tick()), secrets.NotFound)
	if _, err := e.Store.ListAPIKeys(e.Ctx, projB); err != nil {
		t.Fatal(err)
	}
}

func testIdempotency(t *testing.T, e *Env) {
	now := e.Tick()
	r := &secrets.IdempotencyRecord{Project: projA, Key: "retry-1", RequestHash: "aaaa", CreatedAt: now, ExpiresAt: now.Add(secrets.IdempotencyTTL)}
	WantCode(t, "CreateIdempotency", e.Store.CreateIdempotency(e.Ctx, r), "")
	got, err := e.Store.GetIdempotency(e.Ctx, projA, "retry-1", now)
	WantCode(t, "GetIdempotency", err, "")
	WantEqual(t, "idempotency record", got, r)

	later := now.Add(time.Minute)
	again := &secrets.IdempotencyRecord{Project: projA, Key: "retry-1", RequestHash: "bbbb", CreatedAt: later, ExpiresAt: later.Add(secrets.IdempotencyTTL)}
	WantCode(t, "CreateIdempotency while live", e.Store.CreateIdempotency(e.Ctx, again), secrets.Conflict)
	got, _ = e.Store.GetIdempotency(e.Ctx, projA, "retry-1", later)
	WantEqual(t, "idempotency record after the refused create", got, r)

	other := *again
	other.Project = projB
	WantCode(t, "CreateIdempotency of the same key in another project", e.Store.CreateIdempotency(e.Ctx, &other), "")
	_, err = e.Store.GetIdempotency(e.Ctx, projA, "retry-2", later)
	WantCode(t, "GetIdempotency of an unknown key", err, secrets.NotFound)

	done := &secrets.IdempotencyRecord{Project: projA, Key: "retry-1", RequestHash: "aaaa", Done: true, Status: 201,
		Header: map[string]string{"ETag": `"2"`, "Location": "/v1/projects/acme/secrets/x"}, Body: []byte(`{"id":"sec_x"}`),
		CreatedAt: later, ExpiresAt: later.Add(secrets.IdempotencyTTL)}
	WantCode(t, "CompleteIdempotency", e.Store.CompleteIdempotency(e.Ctx, done), "")
	got, err = e.Store.GetIdempotency(e.Ctx, projA, "retry-1", later)
	WantCode(t, "GetIdempotency after complete", err, "")
	WantEqual(t, "completed record", got, done)
	got, _ = e.Store.GetIdempotency(e.Ctx, projB, "retry-1", later)
	WantEqual(t, "other project's record after complete", got, &other)

	WantCode(t, "DeleteIdempotency", e.Store.DeleteIdempotency(e.Ctx, projA, "retry-1"), "")
	_, err = e.Store.GetIdempotency(e.Ctx, projA, "retry-1", later)
	WantCode(t, "GetIdempotency after delete", err, secrets.NotFound)
	WantCode(t, "DeleteIdempotency of an absent key", e.Store.DeleteIdempotency(e.Ctx, projA, "retry-1"), "")
	if _, err := e.Store.GetIdempotency(e.Ctx, projB, "retry-1", later); err != nil {
		t.Fatalf("delete in one project removed another project's record: %v", err)
	}
	WantCode(t, "CreateIdempotency after delete", e.Store.CreateIdempotency(e.Ctx, again), "")
}

func testIdempotencyExpiry(t *testing.T, e *Env) {
	now := e.Tick()
	r := &secrets.IdempotencyRecord{Project: projA, Key: "k", RequestHash: "aaaa", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	WantCode(t, "CreateIdempotency", e.Store.CreateIdempotency(e.Ctx, r), "")
	if _, err := e.Store.GetIdempotency(e.Ctx, projA, "k", now.Add(time.Hour-time.Millisecond)); err != nil {
		t.Fatalf("GetIdempotency just before expiry: %v", err)
	}
	_, err := e.Store.GetIdempotency(e.Ctx, projA, "k", now.Add(time.Hour))
	WantCode(t, "GetIdempotency at expiry", err, secrets.NotFound)
	_, err = e.Store.GetIdempotency(e.Ctx, projA, "k", now.Add(2*time.Hour))
	WantCode(t, "GetIdempotency after expiry", err, secrets.NotFound)

	early := now.Add(time.Hour - time.Millisecond)
	live := &secrets.IdempotencyRecord{Project: projA, Key: "k", RequestHash: "bbbb", CreatedAt: early, ExpiresAt: early.Add(time.Hour)}
	WantCode(t, "CreateIdempotency just before expiry", e.Store.CreateIdempotency(e.Ctx, live), secrets.Conflict)

	late := now.Add(time.Hour)
	fresh := &secrets.IdempotencyRecord{Project: projA, Key: "k", RequestHash: "cccc", CreatedAt: late, ExpiresAt: late.Add(time.Hour)}
	WantCode(t, "CreateIdempotency over an expired record", e.Store.CreateIdempotency(e.Ctx, fresh), "")
	got, err := e.Store.GetIdempotency(e.Ctx, projA, "k", late)
	WantCode(t, "GetIdempotency of the re-created record", err, "")
	WantEqual(t, "re-created record", got, fresh)
}

func resolutionIDs(rs []*secrets.Resolution) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func testResolutions(t *testing.T, e *Env) {
	a, _ := e.Create(projA, "a")
	b, _ := e.Create(projA, "b")
	mk := func(project string, s *secrets.Secret, n int) *secrets.Resolution {
		at := e.Tick()
		return &secrets.Resolution{ID: secrets.NewULID(at, nil), Project: project, SecretID: s.ID, SecretName: s.Name,
			Version: n, Keys: []string{"password", "user"}, Run: json.RawMessage(fmt.Sprintf(`{"run":"r%d","step":"s"}`, n)), ResolvedAt: at}
	}
	var ofA []*secrets.Resolution
	var batch []*secrets.Resolution
	for i := 1; i <= 6; i++ {
		r := mk(projA, a, i)
		ofA = append(ofA, r)
		batch = append(batch, r, mk(projA, b, i))
		if i%2 == 0 {
			WantCode(t, "AddResolutions", e.Store.AddResolutions(e.Ctx, batch), "")
			batch = nil
		}
	}
	WantCode(t, "AddResolutions in another project", e.Store.AddResolutions(e.Ctx, []*secrets.Resolution{mk(projB, a, 9)}), "")

	newestFirst := make([]*secrets.Resolution, len(ofA))
	for i, r := range ofA {
		newestFirst[len(ofA)-1-i] = r
	}
	list, err := e.Store.ListResolutions(e.Ctx, projA, a.ID, "", 100)
	WantCode(t, "ListResolutions", err, "")
	WantEqual(t, "ListResolutions, newest first", list, newestFirst)

	var walked []string
	before := ""
	for i := 0; i < 10; i++ {
		page, err := e.Store.ListResolutions(e.Ctx, projA, a.ID, before, 4)
		WantCode(t, "ListResolutions page", err, "")
		walked = append(walked, resolutionIDs(page)...)
		if len(page) < 4 {
			break
		}
		before = page[len(page)-1].ID
	}
	WantEqual(t, "ListResolutions walked by beforeID", walked, resolutionIDs(newestFirst))

	list, _ = e.Store.ListResolutions(e.Ctx, projA, a.ID, ofA[0].ID, 10)
	if len(list) != 0 {
		t.Fatalf("ListResolutions before the oldest: %v", resolutionIDs(list))
	}
	list, _ = e.Store.ListResolutions(e.Ctx, projA, a.ID, "~", 2)
	WantEqual(t, "ListResolutions before an ID after every ID", resolutionIDs(list), resolutionIDs(newestFirst[:2]))
	list, _ = e.Store.ListResolutions(e.Ctx, projB, a.ID, "", 10)
	if len(list) != 1 || list[0].Version != 9 || list[0].Project != projB {
		t.Fatalf("ListResolutions of the other project: %v", resolutionIDs(list))
	}
	list, _ = e.Store.ListResolutions(e.Ctx, projA, b.ID, "", 10)
	if len(list) != 6 || list[0].SecretID != b.ID {
		t.Fatalf("ListResolutions of b: %v", resolutionIDs(list))
	}
}
