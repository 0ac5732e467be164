// Package testenv builds what many tests start from: an embedded store in
// the test's folder and a local key wrapper under a fresh random key. Only
// tests import it. It imports the store driver and the key wrapper, so the
// tests of those packages, and pkg/secrets' internal tests, cannot use it;
// internal/testsupport holds what needs the standard library only.
package testenv

import (
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/keys/local"
	"github.com/mobius-secrets/mobius/pkg/store/bolt"
)

// Bolt opens a new embedded store, mobius.db in a folder of the test's,
// and closes it when the test ends.
func Bolt(tb testing.TB) *bolt.Driver {
	tb.Helper()
	return BoltAt(tb, filepath.Join(tb.TempDir(), "mobius.db"))
}

// BoltAt opens the embedded store at path and closes it when the test
// ends.
func BoltAt(tb testing.TB, path string) *bolt.Driver {
	tb.Helper()
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// LocalKeys returns a local key wrapper under a fresh random key.
func LocalKeys(tb testing.TB) *local.Wrapper {
	tb.Helper()
	kek := make([]byte, 32)
	rand.Read(kek)
	w, err := local.New(kek)
	if err != nil {
		tb.Fatal(err)
	}
	return w
}
