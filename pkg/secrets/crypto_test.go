package secrets

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"io"
	"log/slog"
	"testing"
)

// gcmWrapper is a minimal KeyWrapper for tests of the service's own crypto:
// AES-GCM under a fixed key, bound to the context's version.
type gcmWrapper struct{ aead cipher.AEAD }

func newGCMWrapper(t *testing.T) *gcmWrapper {
	k := make([]byte, 32)
	rand.Read(k)
	b, _ := aes.NewCipher(k)
	a, _ := cipher.NewGCM(b)
	return &gcmWrapper{a}
}

func ad(ec map[string]string) []byte {
	return []byte(ec["project"] + "\x00" + ec["secret_id"] + "\x00" + ec["version"])
}

func (w *gcmWrapper) GenerateDataKey(_ context.Context, ec map[string]string) ([]byte, []byte, error) {
	dek := make([]byte, 32)
	nonce := make([]byte, 12)
	io.ReadFull(rand.Reader, dek)
	io.ReadFull(rand.Reader, nonce)
	return dek, w.aead.Seal(nonce, nonce, dek, ad(ec)), nil
}

func (w *gcmWrapper) UnwrapDataKey(_ context.Context, wrapped []byte, ec map[string]string) ([]byte, error) {
	if len(wrapped) < 12 {
		return nil, Errorf(Integrity, "short")
	}
	dek, err := w.aead.Open(nil, wrapped[:12], wrapped[12:], ad(ec))
	if err != nil {
		return nil, Errorf(Integrity, "does not open")
	}
	return dek, nil
}

// TestOpenBindsToTheSlot replays version 1's record (metadata and
// ciphertext, consistent with each other) as the current version 2: the
// service must refuse it, never return the old plaintext.
func TestOpenBindsToTheSlot(t *testing.T) {
	var logs bytes.Buffer
	svc := NewService(nil, newGCMWrapper(t), Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	ctx := context.Background()
	sec := &Secret{ID: "sec_01HZY3Q7K8V2N4M6P8R0S2T4W6", Project: "p", CurrentVersion: 2, LatestVersion: 2}
	v1, err := svc.newVersion(ctx, sec, 1, []byte(`{"k":"old-canary-value"}`), map[string]string{"k": "old-canary-value"}, svc.Now())
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := svc.open(ctx, sec, 1, v1); err != nil || string(pt) != `{"k":"old-canary-value"}` {
		t.Fatalf("version 1 in its own slot: %q, %v", pt, err)
	}
	for name, tamper := range map[string]func(v *Version){
		"record says 1":          func(v *Version) {},
		"record relabelled as 2": func(v *Version) { v.Number = 2 },
	} {
		t.Run(name, func(t *testing.T) {
			v := *v1
			tamper(&v)
			pt, err := svc.open(ctx, sec, 2, &v)
			if ErrorCode(err) != Integrity || pt != nil {
				t.Fatalf("old version replayed into slot 2: %q, %v", pt, err)
			}
		})
	}
	other := *sec
	other.ID = "sec_01HZY3Q7K8V2N4M6P8R0S2T4W7"
	relabelled := *v1
	relabelled.SecretID = other.ID
	if pt, err := svc.open(ctx, &other, 1, &relabelled); ErrorCode(err) != Integrity || pt != nil {
		t.Fatalf("version moved to another secret: %q, %v", pt, err)
	}
	if bytes.Contains(logs.Bytes(), []byte("canary")) {
		t.Fatal("a plaintext reached the log")
	}
	if !bytes.Contains(logs.Bytes(), []byte("INTEGRITY FAILURE")) {
		t.Fatal("integrity failures must be logged loudly")
	}
}
