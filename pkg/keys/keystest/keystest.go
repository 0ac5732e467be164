// Package keystest is the conformance suite every secrets.KeyWrapper must
// pass: round trips, binding to the encryption context and to the key, and
// refusal of any altered wrapped key. It is imported from tests only.
package keystest

import (
	"bytes"
	"context"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// Config tunes Run for a key service.
type Config struct {
	// UnauthenticatedPrefix, if set, returns how many leading bytes of a
	// wrapped key the key service reads as routing data (which key to use)
	// without authenticating them, when the wrapper names its key itself.
	// A flipped bit there may still unwrap, but only to the very same data
	// key; everywhere else it must be Integrity. Nil: every byte counts.
	UnauthenticatedPrefix func(wrapped []byte) int
}

// Run runs the suite on wrappers from newWrapper, each over a key of its
// own.
func Run(t *testing.T, newWrapper func(t *testing.T) secrets.KeyWrapper) {
	RunConfig(t, Config{}, newWrapper)
}

// RunConfig is Run with cfg.
func RunConfig(t *testing.T, cfg Config, newWrapper func(t *testing.T) secrets.KeyWrapper) {
	ctx := context.Background()
	ec := secrets.EncryptionContext("acme", "sec_01HZY3J7Q0W6V9X2M4N8P5R3T1", 3)

	t.Run("RoundTrip", func(t *testing.T) {
		w := newWrapper(t)
		dek, wrapped, err := w.GenerateDataKey(ctx, ec)
		if err != nil {
			t.Fatalf("GenerateDataKey: %v", err)
		}
		if len(dek) != 32 {
			t.Fatalf("data key is %d bytes, want 32", len(dek))
		}
		if bytes.Contains(wrapped, dek) {
			t.Fatal("the wrapped key contains the data key in the clear")
		}
		got, err := w.UnwrapDataKey(ctx, wrapped, ec)
		if err != nil {
			t.Fatalf("UnwrapDataKey: %v", err)
		}
		if !bytes.Equal(got, dek) {
			t.Fatal("unwrapped key differs from the generated one")
		}
		// The context is a value: a copy in another map works the same.
		cp := map[string]string{}
		for k, v := range ec {
			cp[k] = v
		}
		if got, err := w.UnwrapDataKey(ctx, wrapped, cp); err != nil || !bytes.Equal(got, dek) {
			t.Fatalf("UnwrapDataKey with an equal context: %v", err)
		}
	})

	t.Run("DistinctKeys", func(t *testing.T) {
		w := newWrapper(t)
		seen := map[string]bool{}
		for i := 0; i < 4; i++ {
			dek, wrapped, err := w.GenerateDataKey(ctx, ec)
			if err != nil {
				t.Fatalf("GenerateDataKey: %v", err)
			}
			if len(dek) != 32 {
				t.Fatalf("data key is %d bytes, want 32", len(dek))
			}
			if seen[string(dek)] || seen["w"+string(wrapped)] {
				t.Fatal("GenerateDataKey repeated a data key or a wrapped key")
			}
			seen[string(dek)], seen["w"+string(wrapped)] = true, true
		}
	})

	t.Run("WrongContext", func(t *testing.T) {
		w := newWrapper(t)
		_, wrapped, err := w.GenerateDataKey(ctx, ec)
		if err != nil {
			t.Fatalf("GenerateDataKey: %v", err)
		}
		for name, other := range map[string]map[string]string{
			"project": secrets.EncryptionContext("other", ec["secret_id"], 3),
			"secret":  secrets.EncryptionContext("acme", "sec_01HZY3J7Q0W6V9X2M4N8P5R3T2", 3),
			"version": secrets.EncryptionContext("acme", ec["secret_id"], 4),
			"empty":   {},
			"extra":   {"project": "acme", "secret_id": ec["secret_id"], "version": "3", "x": "y"},
		} {
			got, err := w.UnwrapDataKey(ctx, wrapped, other)
			if secrets.ErrorCode(err) != secrets.Integrity {
				t.Errorf("%s: UnwrapDataKey under another context = %x, %v; want Integrity", name, got, err)
			}
		}
	})

	t.Run("OtherKey", func(t *testing.T) {
		a, b := newWrapper(t), newWrapper(t)
		_, wrapped, err := a.GenerateDataKey(ctx, ec)
		if err != nil {
			t.Fatalf("GenerateDataKey: %v", err)
		}
		got, err := b.UnwrapDataKey(ctx, wrapped, ec)
		if secrets.ErrorCode(err) != secrets.Integrity {
			t.Fatalf("UnwrapDataKey under another key = %x, %v; want Integrity", got, err)
		}
	})

	t.Run("FlippedBit", func(t *testing.T) {
		w := newWrapper(t)
		dek, wrapped, err := w.GenerateDataKey(ctx, ec)
		if err != nil {
			t.Fatalf("GenerateDataKey: %v", err)
		}
		skip := 0
		if cfg.UnauthenticatedPrefix != nil {
			skip = cfg.UnauthenticatedPrefix(wrapped)
		}
		// Every byte of the wrapped key, one bit each (rotating through the
		// eight bits), plus truncation and extension.
		for i := range wrapped {
			bad := bytes.Clone(wrapped)
			bad[i] ^= 1 << (i % 8)
			got, err := w.UnwrapDataKey(ctx, bad, ec)
			if i < skip && err == nil {
				if !bytes.Equal(got, dek) {
					t.Fatalf("byte %d flipped: unwrapped to a different key", i)
				}
				continue
			}
			if secrets.ErrorCode(err) != secrets.Integrity {
				t.Fatalf("byte %d of %d flipped: UnwrapDataKey = %x, %v; want Integrity", i, len(wrapped), got, err)
			}
		}
		for name, bad := range map[string][]byte{
			"truncated": wrapped[:len(wrapped)-1],
			"extended":  append(bytes.Clone(wrapped), 0),
			"empty":     {},
		} {
			if got, err := w.UnwrapDataKey(ctx, bad, ec); secrets.ErrorCode(err) != secrets.Integrity {
				t.Errorf("%s: UnwrapDataKey = %x, %v; want Integrity", name, got, err)
			}
		}
		// The original still works.
		if got, err := w.UnwrapDataKey(ctx, wrapped, ec); err != nil || !bytes.Equal(got, dek) {
			t.Fatalf("UnwrapDataKey of the untouched key: %v", err)
		}
	})
}
