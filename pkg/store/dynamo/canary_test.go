package dynamo_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// After a full run of operations on values that are canaries, no item of
// the table holds a canary's bytes in any attribute, and no log line does.
func TestCanaryScan(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b, envOpts{kms: true})
			ctx := e.ctx
			canaries := []string{}
			val := func(tag string) string {
				c := "canary-" + tag + "-7f3e9a1c2b"
				canaries = append(canaries, c)
				return c
			}
			e.create("db", map[string]string{"user": val("user1"), "password": val("pw1")})
			e.create("api", map[string]string{"token": val("tok1")})
			e.rotate("db", map[string]string{"user": val("user2"), "password": val("pw2")})
			e.rotate("db", map[string]string{"user": val("user3"), "password": val("pw3")})
			if _, err := e.svc.UpdateSecret(ctx, "acme", "api", secrets.UpdateSecretInput{Name: ptr("api-renamed")}); err != nil {
				t.Fatal(err)
			}
			for _, step := range []struct{ ref, v, action string }{
				{"db", "1", secrets.ActionEnable}, {"db", "3", secrets.ActionEnable},
				{"db", "2", secrets.ActionDestroy}, {"db", "3", secrets.ActionDisable},
			} {
				if _, _, err := e.svc.ChangeVersionState(ctx, "acme", step.ref, step.v, step.action, nil); err != nil {
					t.Fatalf("%s %s %s: %v", step.action, step.ref, step.v, err)
				}
			}
			e.create("gone", map[string]string{"x": val("deleted")})
			if err := e.svc.DeleteSecret(ctx, "acme", "gone", nil); err != nil {
				t.Fatal(err)
			}
			out, err := e.svc.Reveal(ctx, "acme", []string{"api-renamed", "db"})
			if err != nil || out["api-renamed"].Values["token"] != canaries[2] {
				t.Fatalf("Reveal: %v", err)
			}
			run, _ := json.Marshal(map[string]string{"run": "r-1", "step": "s-2"})
			if err := e.svc.RecordResolutions(ctx, []*secrets.Resolution{{Project: "acme", SecretID: out["api-renamed"].Secret.ID,
				SecretName: "api-renamed", Version: 1, Keys: []string{"token"}, Run: run}}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.BeginIdempotent(ctx, "acme", "idem-1", "hash"); err != nil {
				t.Fatal(err)
			}
			if err := e.svc.CompleteIdempotent(ctx, "acme", "idem-1", "hash", 201, map[string]string{"ETag": `"3"`}, []byte(`{"id":"x"}`)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := e.svc.CreateAPIKey(ctx, "acme", "ci", nil); err != nil {
				t.Fatal(err)
			}

			items := e.scan()
			if len(items) < 10 {
				t.Fatalf("only %d items in the table: the scan sees too little to prove anything", len(items))
			}
			for _, it := range items {
				var blob bytes.Buffer
				dump(&blob, it)
				for _, c := range canaries {
					if bytes.Contains(blob.Bytes(), []byte(c)) {
						t.Fatalf("item %v holds a plaintext value", it["SK"])
					}
				}
			}
			for _, c := range canaries {
				if strings.Contains(e.log.String(), c) {
					t.Fatal("the log holds a plaintext value")
				}
			}
		})
	}
}

// dump writes every string and byte of an item, at any depth.
// Keys come in order, so equal items dump equal.
func dump(w *bytes.Buffer, it map[string]types.AttributeValue) {
	for _, k := range slices.Sorted(maps.Keys(it)) {
		w.WriteString(k)
		dumpValue(w, it[k])
	}
}

func dumpValue(w *bytes.Buffer, v types.AttributeValue) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		w.WriteString(v.Value)
	case *types.AttributeValueMemberN:
		w.WriteString(v.Value)
	case *types.AttributeValueMemberB:
		w.Write(v.Value)
	case *types.AttributeValueMemberSS:
		w.WriteString(strings.Join(v.Value, "\x00"))
	case *types.AttributeValueMemberBS:
		w.Write(bytes.Join(v.Value, nil))
	case *types.AttributeValueMemberL:
		for _, x := range v.Value {
			dumpValue(w, x)
		}
	case *types.AttributeValueMemberM:
		dump(w, v.Value)
	case *types.AttributeValueMemberBOOL:
		fmt.Fprint(w, v.Value)
	case *types.AttributeValueMemberNULL:
		w.WriteString("NULL")
	}
	w.WriteByte(0)
}

func ptr[T any](v T) *T { return &v }
