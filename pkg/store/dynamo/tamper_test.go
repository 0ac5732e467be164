package dynamo_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// Storage is untrusted: whatever is done to the ciphertext in the table,
// Reveal answers Integrity, never another plaintext, and logs no value.
func TestTamper(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, kms := range []bool{false, true} {
				name := "localkey"
				if kms {
					name = "kms"
				}
				t.Run(name, func(t *testing.T) { testTamper(t, b, kms) })
			}
		})
	}
}

const (
	plainA1 = "tamper-canary-A1-5b8e"
	plainA2 = "tamper-canary-A2-91c3"
	plainB1 = "tamper-canary-B1-0d7f"
)

func testTamper(t *testing.T, b backend, kms bool) {
	e := newEnv(t, b, envOpts{kms: kms})
	a := e.create("alpha", map[string]string{"k": plainA1})
	a = e.rotate("alpha", map[string]string{"k": plainA2})
	bb := e.create("beta", map[string]string{"k": plainB1})
	a1 := e.rawGet(versionPK(a), versionKey(1))
	a2 := e.rawGet(versionPK(a), versionKey(2))
	b1 := e.rawGet(versionPK(bb), versionKey(1))
	ct := func(it map[string]types.AttributeValue) []byte {
		return it["ct"].(*types.AttributeValueMemberB).Value
	}
	withCT := func(it map[string]types.AttributeValue, c []byte) map[string]types.AttributeValue {
		out := maps.Clone(it)
		out["ct"] = &types.AttributeValueMemberB{Value: c}
		return out
	}
	flip := func(c []byte, i int) []byte {
		out := append([]byte(nil), c...)
		out[i] ^= 0x10
		return out
	}
	if got, err := e.reveal("alpha"); err != nil || got["k"] != plainA2 {
		t.Fatalf("before tampering: %v", err)
	}

	cases := []struct {
		name  string
		put   map[string]types.AttributeValue
		probe string
	}{
		{"older version's ciphertext in the current version", withCT(a2, ct(a1)), "alpha"},
		{"another secret's ciphertext", withCT(b1, ct(a2)), "beta"},
		{"older version's whole item in the current slot", func() map[string]types.AttributeValue {
			it := maps.Clone(a1)
			it["SK"], it["st"] = a2["SK"], a2["st"]
			return it
		}(), "alpha"},
		{"flipped bit in the frame header", withCT(a2, flip(ct(a2), 1)), "alpha"},
		{"flipped bit in the wrapped key", withCT(a2, flip(ct(a2), 8)), "alpha"},
		{"flipped bit in the sealed body", withCT(a2, flip(ct(a2), len(ct(a2))/2+20)), "alpha"},
		{"flipped bit in the tag", withCT(a2, flip(ct(a2), len(ct(a2))-1)), "alpha"},
		{"truncated", withCT(a2, ct(a2)[:len(ct(a2))-5]), "alpha"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.rawPut(c.put)
			got, err := e.reveal(c.probe)
			if secrets.ErrorCode(err) != secrets.Integrity {
				t.Fatalf("Reveal after tampering = %v, %v; want Integrity", got, err)
			}
			for _, p := range []string{plainA1, plainA2, plainB1} {
				if strings.Contains(err.Error(), p) || strings.Contains(e.log.String(), p) {
					t.Fatalf("a plaintext appears in the error or the log")
				}
			}
			// Restore the original items.
			e.rawPut(a2)
			e.rawPut(b1)
		})
	}
	if got, err := e.reveal("alpha"); err != nil || got["k"] != plainA2 {
		t.Fatalf("after restoring: %v, %v", got, err)
	}
	if !strings.Contains(e.log.String(), "INTEGRITY FAILURE") {
		t.Error("integrity failures were not logged")
	}
}
