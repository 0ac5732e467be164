package bolt_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
	"github.com/mobius-secrets/mobius/pkg/store/storetest"
)

// MustOpen opens a store in a fresh file that is closed when tb ends.
func MustOpen(tb testing.TB) *bolt.Store {
	tb.Helper()
	return mustOpenAt(tb, filepath.Join(tb.TempDir(), "mobius.db"))
}

func mustOpenAt(tb testing.TB, path string) *bolt.Store {
	tb.Helper()
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func newStore(t *testing.T) secrets.Store { return MustOpen(t) }

func TestConformance(t *testing.T) { storetest.Run(t, newStore) }

func TestService(t *testing.T) { storetest.RunService(t, newStore) }

func newService(tb testing.TB, s secrets.Store) *secrets.Service {
	tb.Helper()
	kek := make([]byte, 32)
	rand.Read(kek)
	w, err := local.New(kek)
	if err != nil {
		tb.Fatal(err)
	}
	return secrets.NewService(s, w, secrets.Options{})
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "mobius.db")
	mustOpenAt(t, path)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Fatalf("data file mode %v, want 0600", perm)
	}
}

// TestNoPlaintextOnDisk writes distinctive values through the Service and
// looks for them, plain and base64-encoded, in the raw bytes of the file.
func TestNoPlaintextOnDisk(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mobius.db")
	s := mustOpenAt(t, path)
	svc := newService(t, s)
	canaries := []string{
		"canary-plaintext-7f3a9c1e5b2d4680",
		"canary-plaintext-7f3a9c1e5b2d4681",
		"canary-plaintext-7f3a9c1e5b2d4682",
		"canary-plaintext-7f3a9c1e5b2d4683",
	}
	scan := func(when string) {
		t.Helper()
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range canaries {
			for _, form := range []string{c, base64.StdEncoding.EncodeToString([]byte(c)), c[:24]} {
				if bytes.Contains(raw, []byte(form)) {
					t.Fatalf("%s: a plaintext value (or its base64) is in the data file", when)
				}
			}
		}
	}
	if _, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "canary", Values: map[string]string{"value": canaries[0]}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateSecret(ctx, "acme", "canary", secrets.UpdateSecretInput{Values: map[string]string{"value": canaries[1], "other": canaries[2]}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "canary-2", Values: map[string]string{"v": canaries[3]}}); err != nil {
		t.Fatal(err)
	}
	// The values are really there, behind the key.
	out, err := svc.Reveal(ctx, "acme", []string{"canary"})
	if err != nil || out["canary"].Values["other"] != canaries[2] {
		t.Fatalf("Reveal did not return the stored value (err %v)", err)
	}
	scan("after create and rotate")
	if _, _, err := svc.ChangeVersionState(ctx, "acme", "canary", "1", secrets.ActionDestroy, nil); err != nil {
		t.Fatal(err)
	}
	scan("after destroy")
	if err := svc.DeleteSecret(ctx, "acme", "canary-2", nil); err != nil {
		t.Fatal(err)
	}
	scan("after delete")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	scan("after close")
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mobius.db")
	kek := make([]byte, 32)
	rand.Read(kek)
	w, err := local.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc := secrets.NewService(s1, w, secrets.Options{})
	created, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "kept", Values: map[string]string{"k": "v1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateSecret(ctx, "acme", "kept", secrets.UpdateSecretInput{Values: map[string]string{"k": "v2"}}); err != nil {
		t.Fatal(err)
	}
	key, secretKey, err := svc.CreateAPIKey(ctx, "acme", "ci", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.GetSecret(ctx, "acme", created.ID); secrets.ErrorCode(err) != secrets.Unavailable {
		t.Fatalf("GetSecret on a closed store: %v, want Unavailable", err)
	}

	s2 := mustOpenAt(t, path)
	svc = secrets.NewService(s2, w, secrets.Options{})
	got, err := svc.GetSecret(ctx, "acme", "kept")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != created.ID || got.CurrentVersion != 2 || got.Revision != 2 || !got.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("secret after reopen: %+v", got)
	}
	out, err := svc.Reveal(ctx, "acme", []string{"kept"})
	if err != nil || out["kept"] == nil || out["kept"].Values["k"] != "v2" {
		t.Fatalf("Reveal after reopen: wrong value (err %v)", err)
	}
	k, err := svc.Authenticate(ctx, secretKey)
	if err != nil || k.ID != key.ID {
		t.Fatalf("Authenticate after reopen: %v", err)
	}
	v1, _, err := svc.GetVersion(ctx, "acme", "kept", "1")
	if err != nil || v1.State != secrets.Disabled {
		t.Fatalf("version 1 after reopen: %+v, %v", v1, err)
	}
}

func TestSecondOpenFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mobius.db")
	mustOpenAt(t, path)
	start := time.Now()
	s, err := bolt.Open(path, bolt.Options{Timeout: 100 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatal("a second Open of a held file succeeded")
	}
	if !errors.Is(err, bolt.ErrInUse) || !strings.Contains(err.Error(), "the data file is in use by another process") || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open: %v; want ErrInUse naming the file", err)
	}
	// Generous: the point is that it does not hang.
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("second Open took %s", d)
	}
}

func TestRefusesNewerFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mobius.db")
	s := mustOpenAt(t, path)
	s.Close()
	// Rewrite the format marker in place: same length, so the page stays valid.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(raw, []byte("schema1"))
	if i < 0 {
		t.Fatal("format marker not found in a fresh file")
	}
	raw[i+len("schema")] = '9'
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := bolt.Open(path, bolt.Options{}); err == nil {
		s.Close()
		t.Fatal("Open accepted a file of an unknown format")
	} else if !strings.Contains(err.Error(), "format version") {
		t.Fatalf("Open of an unknown format: %v", err)
	}
}

func TestCanceledContext(t *testing.T) {
	s := MustOpen(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.GetSecret(ctx, "acme", "sec_01ARZ3NDEKTSV4RRFFQ69G5FAV"); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetSecret with a canceled context: %v", err)
	}
	if err := s.DeleteIdempotency(ctx, "acme", "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("DeleteIdempotency with a canceled context: %v", err)
	}
}

func benchValues(i int) map[string]string {
	return map[string]string{"user": "bench", "password": fmt.Sprintf("bench-password-%08d", i)}
}

func BenchmarkCreate(b *testing.B) {
	ctx := context.Background()
	svc := newService(b, MustOpen(b))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: fmt.Sprintf("s-%d", i), Values: benchValues(i)}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGetSecret(b *testing.B) {
	ctx := context.Background()
	s := MustOpen(b)
	svc := newService(b, s)
	var ids []string
	for i := 0; i < 100; i++ {
		sec, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: fmt.Sprintf("s-%d", i), Values: benchValues(i)})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, sec.ID)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.GetSecret(ctx, "acme", ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkRotateParallel rotates many secrets from many goroutines, so that
// writes share commits.
func BenchmarkRotateParallel(b *testing.B) {
	ctx := context.Background()
	svc := newService(b, MustOpen(b))
	const secretsN = 64
	for i := 0; i < secretsN; i++ {
		if _, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: fmt.Sprintf("s-%d", i), Values: benchValues(i)}); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1))
			if _, err := svc.UpdateSecret(ctx, "acme", fmt.Sprintf("s-%d", i%secretsN), secrets.UpdateSecretInput{Values: benchValues(i)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
