package secrets_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// A name's item holds a secret's record or, after a rename, an alias. A
// secret's description may hold the alias's member name, quotes and all;
// it is still read as the secret, and an alias is still read as an alias,
// in the record form of this version and in the JSON of earlier ones.
func TestNameItemSecretOrAlias(t *testing.T) {
	svc, st := boltService(t, secrets.Options{})
	ctx := context.Background()
	for _, legacy := range []bool{false, true} {
		// asBefore rewrites the name items of names in the JSON form.
		asBefore := func(t *testing.T, names ...string) {
			t.Helper()
			if !legacy {
				return
			}
			for _, n := range names {
				items, err := st.Get(ctx, secrets.NameItemKey("acme", n))
				if err != nil || len(items) != 1 {
					t.Fatalf("%s: %v", n, err)
				}
				j, err := secrets.JSONForm(items[0])
				if err != nil {
					t.Fatal(err)
				}
				it := items[0]
				it.Value = j
				if err := st.Commit(ctx, kv.Put(it, kv.IfRev(it.Rev))); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, tc := range []struct{ name, description string }{
			{"plain", "a database password"},
			{"quoted", `looks like "alias_of":"sec_01JABCDEFGHJKMNPQRSTVWXYZ0" but is text`},
			{"bare", "alias_of"},
		} {
			name := tc.name + map[bool]string{true: "-json"}[legacy]
			t.Run(name, func(t *testing.T) {
				created, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: name, Description: tc.description, Values: map[string]string{"k": "v"}})
				if err != nil {
					t.Fatal(err)
				}
				asBefore(t, name)
				got, err := svc.GetSecret(ctx, "acme", name)
				if err != nil {
					t.Fatalf("get by name: %v", err)
				}
				if got.ID != created.ID || got.Description != tc.description {
					t.Errorf("get by name: %s %q, want %s %q", got.ID, got.Description, created.ID, tc.description)
				}
				renamed := name + "-renamed"
				if _, err := svc.UpdateSecret(ctx, "acme", name, secrets.UpdateSecretInput{Name: &renamed}); err != nil {
					t.Fatal(err)
				}
				asBefore(t, name, renamed)
				_, err = svc.GetSecret(ctx, "acme", name)
				if secrets.ErrorCode(err) != secrets.NotFound || !strings.Contains(secrets.ErrorMessage(err), "renamed") {
					t.Errorf("get by the old name: %v, want NotFound saying it was renamed", err)
				}
				if got, err := svc.GetSecret(ctx, "acme", renamed); err != nil || got.ID != created.ID || got.Description != tc.description {
					t.Errorf("get by the new name: %v, %+v", err, got)
				}
			})
		}
	}
}

// A data file written by earlier versions keeps working: its records,
// written here in place of the new ones in the JSON form of the version
// before CBOR records (instants as Unix milliseconds, digests in base64)
// and in the oldest one (RFC 3339 strings, hex digests), read as the same
// secret, version, event and values; a change writes CBOR again.
func TestOldRecordFormat(t *testing.T) {
	clock := time.Date(2026, 12, 2, 4, 11, 33, 36e6, time.UTC)
	svc, st := boltService(t, secrets.Options{Now: func() time.Time { return clock }})
	ctx := context.Background()
	created, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "db", Values: map[string]string{"password": "hunter2"}})
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Minute)
	expires := clock.Add(48 * time.Hour)
	if _, err := svc.UpdateSecret(ctx, "acme", "db", secrets.UpdateSecretInput{ExpiresAt: &expires}); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Minute)
	read := func() (*secrets.Secret, *secrets.Version, []*secrets.Event, map[string]string) {
		t.Helper()
		sec, err := svc.GetSecret(ctx, "acme", "db")
		if err != nil {
			t.Fatal(err)
		}
		byID, err := svc.GetSecret(ctx, "acme", created.ID)
		if err != nil || !reflect.DeepEqual(byID, sec) {
			t.Fatalf("by ID: %v, %+v; by name %+v", err, byID, sec)
		}
		v, _, err := svc.GetVersion(ctx, "acme", "db", "1")
		if err != nil {
			t.Fatal(err)
		}
		page, err := svc.ListEvents(ctx, "acme", "", 10)
		if err != nil || len(page.Events) != 2 {
			t.Fatalf("events: %v, %+v", err, page)
		}
		rev, err := svc.Reveal(ctx, "acme", []string{"db"}, nil)
		if err != nil || rev["db"] == nil {
			t.Fatalf("reveal: %v, %+v", err, rev)
		}
		return sec, v, page.Events, rev["db"].Values
	}
	sec, v, evs, values := read()
	if values["password"] != "hunter2" || len(v.SHA256) != 64 || sec.ExpiresAt.IsZero() {
		t.Fatalf("as written: %+v %+v %v", sec, v, values)
	}

	// The old form of each record.
	ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	sum, _ := hex.DecodeString(v.SHA256)
	old := strings.NewReplacer(
		ms(sec.CreatedAt), `"2026-12-02T04:11:33.036Z"`,
		ms(sec.UpdatedAt), `"2026-12-02T04:12:33.036Z"`,
		ms(sec.ExpiresAt), `"2026-12-04T04:12:33.036Z"`,
		`"`+base64.RawURLEncoding.EncodeToString(sum)+`"`, `"`+v.SHA256+`"`,
	).Replace
	keys := []kv.Key{
		secrets.SecretItemKey("acme", created.ID), secrets.NameItemKey("acme", "db"), secrets.VersionItemKey("acme", created.ID, 1),
		{Partition: secrets.EventPartition("acme"), Sort: evs[0].ID}, {Partition: secrets.EventPartition("acme"), Sort: evs[1].ID},
	}
	written, err := st.Get(ctx, keys...)
	if err != nil || len(written) != len(keys) {
		t.Fatalf("%d items, %v", len(written), err)
	}
	for _, form := range []struct {
		name string
		of   func(string) string
	}{{"JSON", func(s string) string { return s }}, {"oldest JSON", old}} {
		items, err := st.Get(ctx, keys...)
		if err != nil || len(items) != len(keys) {
			t.Fatalf("%d items, %v", len(items), err)
		}
		var ops []kv.Op
		for i, it := range items {
			j, err := secrets.JSONForm(written[i])
			if err != nil {
				t.Fatal(err)
			}
			it.Value = []byte(form.of(string(j)))
			if it.Value[0] != '{' || (form.name == "oldest JSON" && strings.Contains(string(it.Value), ms(sec.CreatedAt))) {
				t.Fatalf("%s: no %s form: %s", it.Key, form.name, it.Value)
			}
			ops = append(ops, kv.Put(it, kv.IfRev(it.Rev)))
		}
		if err := st.Commit(ctx, ops...); err != nil {
			t.Fatal(err)
		}
		sec2, v2, evs2, values2 := read()
		if !reflect.DeepEqual(sec2, sec) || !reflect.DeepEqual(v2, v) || !reflect.DeepEqual(evs2, evs) || !reflect.DeepEqual(values2, values) {
			t.Errorf("the %s form reads as\n%+v\n%+v\n%+v\n%v\nwant\n%+v\n%+v\n%+v\n%v", form.name, sec2, v2, evs2, values2, sec, v, evs, values)
		}
	}
	// A change writes the record in the new form again.
	if _, err := svc.UpdateSecret(ctx, "acme", "db", secrets.UpdateSecretInput{Description: ptr("the database")}); err != nil {
		t.Fatal(err)
	}
	items, err := st.Get(ctx, keys[0])
	if err != nil || len(items) != 1 || items[0].Value[0] == '{' {
		t.Errorf("after a change: %v, %s", err, items[0].Value)
	}
}

func ptr[T any](v T) *T { return &v }
