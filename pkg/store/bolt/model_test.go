package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
	"github.com/mobius-secrets/mobius/pkg/store/modeltest"
)

func TestModel(t *testing.T) {
	st := modeltest.Run(t, func(t *testing.T) secrets.Store {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "model.db"), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
	if st.Steps.Load() == 0 {
		t.Fatal("the model test ran no steps")
	}
}
