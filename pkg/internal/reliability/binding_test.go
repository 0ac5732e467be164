package reliability

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/resolve"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// versionKey is the bolt key of a version and of its ciphertext:
// project 0 secretID 0 n (4 bytes, big-endian).
func versionKey(project, secretID string, n int) []byte {
	return binary.BigEndian.AppendUint32([]byte(project+"\x00"+secretID+"\x00"), uint32(n))
}

// tamperedReveal copies the closed data file at src, applies fn to it with
// bbolt directly, then reveals project's names with a fresh service over
// the copy and kek, and resolves a reference to each.
func tamperedReveal(t *testing.T, src string, kek []byte, fn func(tx *bbolt.Tx) error, project string, names ...string) (map[string]*secrets.Revealed, error, error) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tampered.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if fn != nil {
		db, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(fn); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w, err := local.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := secrets.NewService(st, w, secrets.Options{DataKeyCacheSize: -1, Logger: logger})
	got, revealErr := svc.Reveal(context.Background(), project, names)
	var refs []string
	for _, n := range names {
		refs = append(refs, `"${secret:`+n+`.k}"`)
	}
	in := `{"project":"` + project + `","input":[` + strings.Join(refs, ",") + `]}`
	_, resolveErr := resolve.New(svc, logger).Invoke(context.Background(), []byte(in))
	return got, revealErr, resolveErr
}

// Ciphertext is bound to its project, secret and version number: moved,
// altered, rolled back or opened with another key, it is refused with an
// Integrity error, never decrypted to a wrong plaintext.
func TestCiphertextBinding(t *testing.T) {
	e := newBoltEnv(t)
	ctx := context.Background()
	a, err := e.svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "a", Values: map[string]string{"k": "alpha-one"}})
	if err != nil {
		t.Fatal(err)
	}
	e.rotate("a", map[string]string{"k": "alpha-two"})
	b, err := e.svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: "b", Values: map[string]string{"k": "bravo-one"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.svc.CreateSecret(ctx, "other", secrets.CreateSecretInput{Name: "a", Values: map[string]string{"k": "charlie-one"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.(*bolt.Store).Close(); err != nil {
		t.Fatal(err)
	}
	cts, vers := []byte("ciphertexts"), []byte("versions")
	a1, a2 := versionKey("acme", a.ID, 1), versionKey("acme", a.ID, 2)
	b1, c1 := versionKey("acme", b.ID, 1), versionKey("other", c.ID, 1)
	copyCT := func(from, to []byte) func(tx *bbolt.Tx) error {
		return func(tx *bbolt.Tx) error {
			v := tx.Bucket(cts).Get(from)
			if v == nil {
				t.Fatalf("no ciphertext at %q", from)
			}
			return tx.Bucket(cts).Put(to, append([]byte(nil), v...))
		}
	}
	rollback := func(enabled bool) func(tx *bbolt.Tx) error {
		return func(tx *bbolt.Tx) error {
			rec := append([]byte(nil), tx.Bucket(vers).Get(a1)...)
			if enabled {
				var m map[string]any
				json.Unmarshal(rec, &m)
				m["state"] = "ENABLED"
				rec, _ = json.Marshal(m)
			}
			if err := tx.Bucket(vers).Put(a2, rec); err != nil {
				return err
			}
			return copyCT(a1, a2)(tx)
		}
	}
	type tcase struct {
		name    string
		fn      func(tx *bbolt.Tx) error
		kek     []byte
		project string
		secret  string
		// noValueOK: the tampered record is not ENABLED, so revealing
		// nothing (and resolve failing) is also a refusal.
		noValueOK bool
	}
	cases := []tcase{
		{"older version's ciphertext in the current slot", copyCT(a1, a2), e.kek, "acme", "a", false},
		{"another secret's ciphertext", copyCT(b1, a2), e.kek, "acme", "a", false},
		{"another project's ciphertext", copyCT(c1, a2), e.kek, "acme", "a", false},
		{"another project's secret gets acme's ciphertext", copyCT(a2, c1), e.kek, "other", "a", false},
		{"rollback: old record and ciphertext in the current slot", rollback(false), e.kek, "acme", "a", true},
		{"rollback, marked ENABLED", rollback(true), e.kek, "acme", "a", false},
		{"wrong key file", nil, newKEK(), "acme", "a", false},
	}
	// Bit flips at sampled positions of the current envelope: every byte of
	// the first 64 (header, wrapped key), then every 7th byte, and the last.
	var env []byte
	db, err := bbolt.Open(e.dbPath, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bbolt.Tx) error { env = append(env, tx.Bucket(cts).Get(a2)...); return nil })
	db.Close()
	var positions []int
	for i := 0; i < len(env); i++ {
		if i < 64 || i%7 == 0 || i == len(env)-1 {
			positions = append(positions, i)
		}
	}
	for _, pos := range positions {
		for _, bit := range []byte{0x01, 0x80} {
			cases = append(cases, tcase{"bit flip", func(tx *bbolt.Tx) error {
				v := append([]byte(nil), tx.Bucket(cts).Get(a2)...)
				v[pos] ^= bit
				return tx.Bucket(cts).Put(a2, v)
			}, e.kek, "acme", "a", false})
		}
	}
	cases = append(cases,
		tcase{"truncated envelope", func(tx *bbolt.Tx) error { return tx.Bucket(cts).Put(a2, env[:len(env)-1]) }, e.kek, "acme", "a", false},
		tcase{"extended envelope", func(tx *bbolt.Tx) error { return tx.Bucket(cts).Put(a2, append(append([]byte(nil), env...), 0)) }, e.kek, "acme", "a", false},
	)
	// The untouched file with the right key reveals the right values.
	got, err, rerr := tamperedReveal(t, e.dbPath, e.kek, nil, "acme", "a")
	if err != nil || rerr != nil || got["a"] == nil || got["a"].Values["k"] != "alpha-two" {
		t.Fatalf("control: %v %v %+v", err, rerr, got)
	}
	refused := 0
	for _, tc := range cases {
		got, err, rerr := tamperedReveal(t, e.dbPath, tc.kek, tc.fn, tc.project, tc.secret)
		if tc.noValueOK && err == nil && (got[tc.secret] == nil || got[tc.secret].Values == nil) && rerr != nil {
			t.Logf("%s: refused without an Integrity error: the slot's record is not ENABLED, so nothing is revealed (resolve: %v)", tc.name, rerr)
			refused++
			continue
		}
		if secrets.ErrorCode(err) != secrets.Integrity {
			var vals map[string]string
			if r := got[tc.secret]; r != nil {
				vals = r.Values
			}
			t.Errorf("%s: Reveal: %v (values %v), want an Integrity error", tc.name, err, vals)
			continue
		}
		var re *resolve.Error
		if rerr == nil || !asResolveError(rerr, &re) || strings.Contains(rerr.Error(), "-one") || strings.Contains(rerr.Error(), "-two") {
			t.Errorf("%s: resolve: %v, want a failure that names no value", tc.name, rerr)
			continue
		}
		refused++
	}
	t.Logf("ciphertext binding: %d tampered files (%d sampled bit flips), %d refused (never a plaintext)", len(cases), 2*len(positions), refused)
}

func asResolveError(err error, re **resolve.Error) bool {
	e, ok := err.(*resolve.Error)
	*re = e
	return ok
}
