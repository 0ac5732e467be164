package storetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func (e *Env) otherKeyService() *secrets.Service {
	e.T.Helper()
	kek := make([]byte, 32)
	rand.Read(kek)
	w, err := local.New(kek)
	if err != nil {
		e.T.Fatal(err)
	}
	return secrets.NewService(e.KV, w, secrets.Options{Logger: quietLogger()})
}

// testKeyCheck: a store knows the key it is sealed under; another key, or
// data without a key check, is refused, and nothing is written.
func testKeyCheck(t *testing.T, e *Env) {
	WantCode(t, "verify-only on a new store", e.Svc.CheckKey(e.Ctx, secrets.KeyCheckVerify), "")
	WantCode(t, "first check", e.Svc.CheckKey(e.Ctx, secrets.KeyCheckInit), "")
	WantCode(t, "second check", e.Svc.CheckKey(e.Ctx, secrets.KeyCheckInit), "")
	e.create(e.Project, "sealed")
	other := e.otherKeyService()
	for _, mode := range []secrets.KeyCheckMode{secrets.KeyCheckInit, secrets.KeyCheckVerify} {
		err := other.CheckKey(e.Ctx, mode)
		WantCode(t, "another key", err, secrets.Misconfigured)
		if !errors.Is(err, secrets.ErrKeyMismatch) {
			t.Fatalf("another key: %v, want ErrKeyMismatch", err)
		}
	}
	WantCode(t, "the right key after a refusal", e.Svc.CheckKey(e.Ctx, secrets.KeyCheckVerify), "")
}

// testKeyCheckDataWithoutCheck: a store that holds data but no key check
// (its check was lost) is refused rather than given a new key.
func testKeyCheckDataWithoutCheck(t *testing.T, e *Env) {
	e.create(e.Project, "orphan")
	err := e.Svc.CheckKey(e.Ctx, secrets.KeyCheckInit)
	WantCode(t, "data without a key check", err, secrets.Misconfigured)
	WantCode(t, "verify-only", e.Svc.CheckKey(e.Ctx, secrets.KeyCheckVerify), "")
}

// testServiceKeys: a service key is made once and every process on the
// store gets the same one; purposes differ; another key cannot open it.
func testServiceKeys(t *testing.T, e *Env) {
	a, err := e.Svc.ServiceKey(e.Ctx, "page-token")
	if err != nil || len(a) != 32 {
		t.Fatalf("ServiceKey: %d bytes, %v", len(a), err)
	}
	second := secrets.NewService(e.KV, e.Keys, secrets.Options{Logger: quietLogger()})
	b, err := second.ServiceKey(e.Ctx, "page-token")
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("a second process got another page-token key (%v)", err)
	}
	g, err := second.ServiceKey(e.Ctx, "grant")
	if err != nil || bytes.Equal(a, g) {
		t.Fatalf("the grant key equals the page-token key (%v)", err)
	}
	_, err = e.otherKeyService().ServiceKey(e.Ctx, "page-token")
	WantCode(t, "a service key under another key", err, secrets.Misconfigured)
}
