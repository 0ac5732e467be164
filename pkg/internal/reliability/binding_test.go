package reliability

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/resolve"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// tamperedReveal copies the closed data file at src, applies fn to the
// copy's items through the store driver (as anyone who can write the store
// could), then reveals project's names with a fresh service over the copy
// and kek, and resolves a reference to each under a grant.
func tamperedReveal(t *testing.T, src string, kek []byte, fn func(d kv.Driver), project string, names ...string) (map[string]*secrets.Revealed, error, error) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tampered.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if fn != nil {
		fn(st)
	}
	w, err := local.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := secrets.NewService(st, w, secrets.Options{DataKeyCacheSize: -1, Logger: logger})
	got, revealErr := svc.Reveal(context.Background(), project, names, nil)
	var refs []string
	for _, n := range names {
		refs = append(refs, `"${secret:`+n+`.k}"`)
	}
	k, _, err := svc.CreateAPIKey(context.Background(), project, "scheduler", secrets.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	_, g, err := svc.MintGrant(context.Background(), project, k, secrets.MintGrantInput{Secrets: names})
	if err != nil {
		t.Fatal(err)
	}
	in := `{"grant":"` + g + `","input":[` + strings.Join(refs, ",") + `]}`
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
	if err := e.store.(*bolt.Driver).Close(); err != nil {
		t.Fatal(err)
	}
	a1, a2 := secrets.CiphertextItemKey("acme", a.ID, 1), secrets.CiphertextItemKey("acme", a.ID, 2)
	b1, c1 := secrets.CiphertextItemKey("acme", b.ID, 1), secrets.CiphertextItemKey("other", c.ID, 1)
	get := func(d kv.Driver, k kv.Key) kv.Item {
		items, err := d.Get(context.Background(), k)
		if err != nil || len(items) != 1 {
			t.Fatalf("no item at %s (%v)", k, err)
		}
		return items[0]
	}
	put := func(d kv.Driver, k kv.Key, v []byte) {
		if err := d.Commit(context.Background(), kv.Put(kv.Item{Key: k, Value: v}, kv.Cond{})); err != nil {
			t.Fatal(err)
		}
	}
	copyCT := func(from, to kv.Key) func(d kv.Driver) {
		return func(d kv.Driver) { put(d, to, get(d, from).Value) }
	}
	type tcase struct {
		name    string
		fn      func(d kv.Driver)
		kek     []byte
		project string
		secret  string
	}
	cases := []tcase{
		{"older version's ciphertext in the current slot", copyCT(a1, a2), e.kek, "acme", "a"},
		{"another secret's ciphertext", copyCT(b1, a2), e.kek, "acme", "a"},
		{"another project's ciphertext", copyCT(c1, a2), e.kek, "acme", "a"},
		{"another project's secret gets acme's ciphertext", copyCT(a2, c1), e.kek, "other", "a"},
		{"wrong key file", nil, newKEK(), "acme", "a"},
	}
	// Bit flips at sampled positions of the current envelope: every byte of
	// the first 64 (header, wrapped key), then every 7th byte, and the last.
	ro, err := bolt.Open(e.dbPath, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	env := get(ro, a2).Value
	ro.Close()
	var positions []int
	for i := 0; i < len(env); i++ {
		if i < 64 || i%7 == 0 || i == len(env)-1 {
			positions = append(positions, i)
		}
	}
	for _, pos := range positions {
		for _, bit := range []byte{0x01, 0x80} {
			cases = append(cases, tcase{"bit flip", func(d kv.Driver) {
				v := bytes.Clone(env)
				v[pos] ^= bit
				put(d, a2, v)
			}, e.kek, "acme", "a"})
		}
	}
	cases = append(cases,
		tcase{"truncated envelope", func(d kv.Driver) { put(d, a2, env[:len(env)-1]) }, e.kek, "acme", "a"},
		tcase{"extended envelope", func(d kv.Driver) { put(d, a2, append(bytes.Clone(env), 0)) }, e.kek, "acme", "a"},
	)
	// The untouched file with the right key reveals the right values.
	got, err, rerr := tamperedReveal(t, e.dbPath, e.kek, nil, "acme", "a")
	if err != nil || rerr != nil || got["a"] == nil || got["a"].Values["k"] != "alpha-two" {
		t.Fatalf("control: %v %v %+v", err, rerr, got)
	}
	refused := 0
	for _, tc := range cases {
		got, err, rerr := tamperedReveal(t, e.dbPath, tc.kek, tc.fn, tc.project, tc.secret)
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
