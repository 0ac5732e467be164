package local_test

import (
	"crypto/rand"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/keys/keystest"
	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func TestConformance(t *testing.T) {
	keystest.Run(t, func(t *testing.T) secrets.KeyWrapper {
		kek := make([]byte, 32)
		rand.Read(kek)
		w, err := local.New(kek)
		if err != nil {
			t.Fatal(err)
		}
		return w
	})
}
