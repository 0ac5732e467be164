package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv/memkv"
)

// FuzzVerifyGrant checks the grant's parser and verifier. Any string is
// either the one grant minted (accepted) or Unauthorized, never another
// error nor a panic; and a payload of any bytes, signed with the real grant
// key (as only the service can), is accepted only when it names that live
// grant, its project and its minting key: a signed payload for any other
// grant ID, project or key finds no record, and is refused.
func FuzzVerifyGrant(f *testing.F) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	svc := memService(func() time.Time { return now })
	by, _, err := svc.CreateAPIKey(ctx, "acme", "scheduler", AllScopes)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := svc.CreateSecret(ctx, "acme", CreateSecretInput{Name: "db", Values: map[string]string{"k": "v"}}); err != nil {
		f.Fatal(err)
	}
	g, token, err := svc.MintGrant(ctx, "acme", by, MintGrantInput{Secrets: []string{"db"}, Run: []byte(`{"run_id":"r1"}`)})
	if err != nil {
		f.Fatal(err)
	}
	key, err := svc.serviceKey(ctx, PurposeGrant, false)
	if err != nil {
		f.Fatal(err)
	}
	body := token[len(GrantPrefix):]
	payload, _ := base64.RawURLEncoding.DecodeString(body[:len(body)-44])
	f.Add(token, payload)
	f.Add(token[:len(token)-1], []byte(`{"v":1}`))
	f.Add(GrantPrefix+"."+body, []byte(`{"v":1,"id":"`+g.ID+`","p":"bravo","s":["x"],"k":"`+by.ID+`","ca":0,"exp":9999999999999}`))
	f.Add("", []byte(`null`))
	f.Fuzz(func(t *testing.T, s string, payload []byte) {
		got, err := svc.VerifyGrant(ctx, s)
		switch {
		case s == token:
			if err != nil || got.ID != g.ID {
				t.Fatalf("the minted grant: %+v, %v", got, err)
			}
		case err == nil:
			t.Fatalf("accepted %q as %+v", s, got)
		case ErrorCode(err) != Unauthorized:
			t.Fatalf("%q: %v, want Unauthorized", s, err)
		}
		signed := GrantPrefix + base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(grantMAC(key, payload))
		got, err = svc.VerifyGrant(ctx, signed)
		switch {
		case err == nil:
			if got.ID != g.ID || got.Project != "acme" || got.KeyID != by.ID || len(got.Secrets) == 0 || !now.Before(got.ExpiresAt) {
				t.Fatalf("a signed payload %q accepted as %+v", payload, got)
			}
		case ErrorCode(err) != Unauthorized:
			t.Fatalf("a signed payload %q: %v, want Unauthorized", payload, err)
		}
	})
}

// BenchmarkVerifyGrantWarm is what a warm resolve pays for its grant: the
// MAC, the payload's decoding and the liveness cache, no store read.
func BenchmarkVerifyGrantWarm(b *testing.B) {
	ctx := context.Background()
	svc := memService(nil)
	by, _, err := svc.CreateAPIKey(ctx, "acme", "scheduler", AllScopes)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.CreateSecret(ctx, "acme", CreateSecretInput{Name: "db", Values: map[string]string{"k": "v"}}); err != nil {
		b.Fatal(err)
	}
	_, token, err := svc.MintGrant(ctx, "acme", by, MintGrantInput{Secrets: []string{"db"}, Run: []byte(`{"run_id":"r1"}`)})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.VerifyGrant(ctx, token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.VerifyGrant(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifiedGrantsAreCheckedOnEveryUse: a grant string verified once is
// read from the process's memory after, yet each use still checks expiry
// and revocation, and what a caller does to the grant it got changes no
// later answer.
func TestVerifiedGrantsAreCheckedOnEveryUse(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	svc := memService(func() time.Time { return now })
	by, _, err := svc.CreateAPIKey(ctx, "acme", "scheduler", AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := svc.CreateSecret(ctx, "acme", CreateSecretInput{Name: "db", Values: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	ttl := time.Hour
	mint := func() (*Grant, string) {
		g, token, err := svc.MintGrant(ctx, "acme", by, MintGrantInput{Secrets: []string{"db"}, Run: []byte(`{"run_id":"r1"}`), TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return g, token
	}
	g, token := mint()
	for i := range 3 {
		got, err := svc.VerifyGrant(ctx, token)
		if err != nil || got.ID != g.ID || len(got.Secrets) != 1 || got.Secrets[0].ID != sec.ID || string(got.Run) != `{"run_id":"r1"}` {
			t.Fatalf("use %d: %+v, %v", i, got, err)
		}
		got.Secrets[0].ID, got.Run[0] = "sec_other", '['
	}
	if _, ok := svc.verified.get(token); !ok {
		t.Fatal("a verified grant string is not remembered")
	}

	now = now.Add(ttl)
	if _, err := svc.VerifyGrant(ctx, token); ErrorCode(err) != Unauthorized || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("a remembered grant after its expiry: %v", err)
	}
	g, token = mint()
	if _, err := svc.VerifyGrant(ctx, token); err != nil {
		t.Fatal(err)
	}
	if err := svc.RevokeGrant(ctx, "acme", g.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.VerifyGrant(ctx, token); ErrorCode(err) != Unauthorized || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a remembered grant after its revocation: %v", err)
	}
}

// TestDecodedSecretsAreReused: a secret record read twice as the same
// bytes is decoded once; what a caller does to the secret it got changes
// no later read; a record that changed is decoded afresh; and the cache
// holds at most its bound.
func TestDecodedSecretsAreReused(t *testing.T) {
	ctx := context.Background()
	svc := memService(nil)
	if _, err := svc.CreateSecret(ctx, "acme", CreateSecretInput{Name: "db", Values: map[string]string{"k": "v"}, Labels: map[string]string{"env": "prod"}}); err != nil {
		t.Fatal(err)
	}
	got, err := svc.GetSecret(ctx, "acme", "db")
	if err != nil {
		t.Fatal(err)
	}
	got.Labels["env"], got.Labels["team"] = "dev", "pay"
	items, err := svc.kv.Get(ctx, nameKey("acme", "db"))
	if err != nil || len(items) != 1 {
		t.Fatal(items, err)
	}
	r1, err1 := svc.secretRecFrom(&items[0])
	r2, err2 := svc.secretRecFrom(&items[0])
	if err1 != nil || err2 != nil || r1 != r2 {
		t.Fatalf("the same bytes were decoded twice (%p, %p; %v, %v)", r1, r2, err1, err2)
	}
	again, err := svc.GetSecret(ctx, "acme", "db")
	if err != nil || len(again.Labels) != 1 || again.Labels["env"] != "prod" {
		t.Fatalf("after a caller changed its copy: %v, %v", again.Labels, err)
	}
	desc := "rotated weekly"
	if _, err := svc.UpdateSecret(ctx, "acme", "db", UpdateSecretInput{Description: &desc}); err != nil {
		t.Fatal(err)
	}
	if after, err := svc.GetSecret(ctx, "acme", "db"); err != nil || after.Description != desc || after.Revision == again.Revision {
		t.Fatalf("a changed record read as before: %+v, %v", after, err)
	}

	c := newDecodedSecrets(3)
	for i := range 10 {
		c.put(string(rune('a'+i)), decodedSecret{})
	}
	if len(c.m) != 3 {
		t.Fatalf("%d entries, bound 3", len(c.m))
	}
}

// memService is a Service on memkv, sealing under a fresh AES-GCM key, on
// the clock now (the system's if nil), logging nowhere.
func memService(now func() time.Time) *Service {
	k := make([]byte, 32)
	rand.Read(k)
	b, _ := aes.NewCipher(k)
	a, _ := cipher.NewGCM(b)
	return NewService(memkv.New(), &gcmWrapper{a}, Options{Now: now, Logger: slog.New(slog.DiscardHandler)})
}
