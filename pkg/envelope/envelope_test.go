package envelope

import (
	"bytes"
	"crypto/rand"
	"testing"
)

func mustKey(t testing.TB) []byte {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	dek := mustKey(t)
	pt := []byte(`{"api_key":"canary-envelope-5b1e"}`)
	ct, err := Seal(rand.Reader, dek, []byte("wrapped-key"), []byte("aad"), pt)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, pt) || bytes.Contains(ct, []byte("canary")) {
		t.Fatal("ciphertext contains the plaintext")
	}
	env, err := Parse(ct)
	if err != nil {
		t.Fatal(err)
	}
	if string(env.WrappedKey) != "wrapped-key" {
		t.Errorf("wrapped key = %q", env.WrappedKey)
	}
	got, err := env.Open(dek, []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, pt) {
		t.Errorf("Open = %q, want %q", got, pt)
	}
}

func TestOpenRefuses(t *testing.T) {
	dek := mustKey(t)
	ct, err := Seal(rand.Reader, dek, []byte("wk"), []byte("project\x00sec_1\x002"), []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("wrong associated data", func(t *testing.T) {
		env, _ := Parse(ct)
		if _, err := env.Open(dek, []byte("project\x00sec_1\x003")); err != ErrOpen {
			t.Errorf("err = %v, want ErrOpen", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		env, _ := Parse(ct)
		if _, err := env.Open(mustKey(t), []byte("project\x00sec_1\x002")); err != ErrOpen {
			t.Errorf("err = %v, want ErrOpen", err)
		}
	})
	t.Run("every flipped bit", func(t *testing.T) {
		for i := 0; i < len(ct)*8; i++ {
			bad := bytes.Clone(ct)
			bad[i/8] ^= 1 << (i % 8)
			env, err := Parse(bad)
			if err != nil {
				continue // framing caught it
			}
			if pt, err := env.Open(dek, []byte("project\x00sec_1\x002")); err == nil {
				t.Fatalf("bit %d flipped, Open still returned %q", i, pt)
			}
		}
	})
	t.Run("truncated", func(t *testing.T) {
		for n := 0; n < len(ct); n++ {
			env, err := Parse(ct[:n])
			if err != nil {
				continue
			}
			if _, err := env.Open(dek, []byte("project\x00sec_1\x002")); err == nil {
				t.Fatalf("truncated to %d bytes, Open succeeded", n)
			}
		}
	})
}

func TestSealRejectsBadInput(t *testing.T) {
	if _, err := Seal(rand.Reader, make([]byte, 16), []byte("wk"), nil, []byte("x")); err == nil {
		t.Error("16-byte key accepted")
	}
	if _, err := Seal(rand.Reader, mustKey(t), nil, nil, []byte("x")); err == nil {
		t.Error("empty wrapped key accepted")
	}
}

func FuzzParseOpen(f *testing.F) {
	// Fixed randomness: every fuzz worker must rebuild the same envelope.
	dek := make([]byte, KeySize)
	ct, _ := Seal(bytes.NewReader(make([]byte, 64)), dek, []byte("wk"), []byte("aad"), []byte("value"))
	f.Add(ct)
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := Parse(b)
		if err != nil {
			return
		}
		if pt, err := env.Open(dek, []byte("aad")); err == nil && !bytes.Equal(b, ct) {
			t.Fatalf("arbitrary bytes opened to %q", pt)
		}
	})
}
