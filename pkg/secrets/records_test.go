package secrets_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// A name's item holds a secret's record or, after a rename, an alias. A
// secret's description may hold the alias's member name, quotes and all;
// it is still read as the secret, and an alias is still read as an alias.
func TestNameItemSecretOrAlias(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "mobius.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kek := make([]byte, 32)
	rand.Read(kek)
	w, err := local.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	svc := secrets.NewService(st, w, secrets.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx := context.Background()
	for _, tc := range []struct{ name, description string }{
		{"plain", "a database password"},
		{"quoted", `looks like "alias_of":"sec_01JABCDEFGHJKMNPQRSTVWXYZ0" but is text`},
		{"bare", "alias_of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			created, err := svc.CreateSecret(ctx, "acme", secrets.CreateSecretInput{Name: tc.name, Description: tc.description, Values: map[string]string{"k": "v"}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := svc.GetSecret(ctx, "acme", tc.name)
			if err != nil {
				t.Fatalf("get by name: %v", err)
			}
			if got.ID != created.ID || got.Description != tc.description {
				t.Errorf("get by name: %s %q, want %s %q", got.ID, got.Description, created.ID, tc.description)
			}
			renamed := tc.name + "-renamed"
			if _, err := svc.UpdateSecret(ctx, "acme", tc.name, secrets.UpdateSecretInput{Name: &renamed}); err != nil {
				t.Fatal(err)
			}
			_, err = svc.GetSecret(ctx, "acme", tc.name)
			if secrets.ErrorCode(err) != secrets.NotFound || !strings.Contains(secrets.ErrorMessage(err), "renamed") {
				t.Errorf("get by the old name: %v, want NotFound saying it was renamed", err)
			}
			if got, err := svc.GetSecret(ctx, "acme", renamed); err != nil || got.ID != created.ID || got.Description != tc.description {
				t.Errorf("get by the new name: %v, %+v", err, got)
			}
		})
	}
}
