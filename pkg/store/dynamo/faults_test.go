package dynamo_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// A dependency that fails mid-operation makes the operation Unavailable, and
// the operation either completed or left nothing behind.
func TestFaults(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testFaults(t, b) })
	}
}

// snapshot is every item of the table, as comparable text.
func (e *env) snapshot() map[string]string {
	out := map[string]string{}
	for _, it := range e.scan() {
		var blob bytes.Buffer
		dump(&blob, it)
		out[it["PK"].(*types.AttributeValueMemberS).Value+"|"+it["SK"].(*types.AttributeValueMemberS).Value] = blob.String()
	}
	return out
}

func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if secrets.ErrorCode(err) != secrets.Unavailable {
		t.Fatalf("%s: error %v, want Unavailable", what, err)
	}
}

func wantUnchanged(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("%s: the table has %d items, had %d", what, len(after), len(before))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("%s: item %s changed", what, k)
		}
	}
}

func testFaults(t *testing.T, b backend) {
	t.Run("KMSDownOnCreate", func(t *testing.T) {
		e := newEnv(t, b, envOpts{kms: true})
		e.kmFault.Set("", awstest.Down)
		_, err := e.svc.CreateSecret(e.ctx, "acme", secrets.CreateSecretInput{Name: "n", Values: map[string]string{"k": "v"}})
		wantUnavailable(t, "create with KMS down", err)
		if n := len(e.scan()); n != 0 {
			t.Fatalf("%d items left behind", n)
		}
	})

	t.Run("KMSDownOnRotateAndReveal", func(t *testing.T) {
		e := newEnv(t, b, envOpts{kms: true, svcOpts: secrets.Options{DataKeyCacheSize: -1}})
		e.create("n", map[string]string{"k": "v1"})
		before := e.snapshot()
		e.kmFault.Set("", awstest.Down)
		_, err := e.svc.UpdateSecret(e.ctx, "acme", "n", secrets.UpdateSecretInput{Values: map[string]string{"k": "v2"}})
		wantUnavailable(t, "rotate with KMS down", err)
		_, err = e.reveal("n")
		wantUnavailable(t, "reveal with KMS down", err)
		e.kmFault.Set("", awstest.Throttle)
		_, err = e.reveal("n")
		wantUnavailable(t, "reveal with KMS throttling", err)
		wantUnchanged(t, "after KMS faults", before, e.snapshot())
		e.kmFault.Clear()
		if got, err := e.reveal("n"); err != nil || got["k"] != "v1" {
			t.Fatalf("after KMS recovers: %v, %v", got, err)
		}
	})

	for _, f := range []struct {
		name  string
		fault awstest.Fault
	}{{"500", awstest.Error500}, {"Throttle", awstest.Throttle}, {"Down", awstest.Down}} {
		t.Run("DynamoDB"+f.name, func(t *testing.T) {
			e := newEnv(t, b, envOpts{})
			e.create("n", map[string]string{"k": "v1"})
			before := e.snapshot()
			for _, op := range []struct {
				sdkOp string
				run   func() error
			}{
				{"TransactWriteItems", func() error {
					_, err := e.svc.UpdateSecret(e.ctx, "acme", "n", secrets.UpdateSecretInput{Values: map[string]string{"k": "v2"}})
					return err
				}},
				{"TransactWriteItems", func() error {
					_, err := e.svc.CreateSecret(e.ctx, "acme", secrets.CreateSecretInput{Name: "m", Values: map[string]string{"k": "v"}})
					return err
				}},
				{"GetItem", func() error { _, err := e.svc.GetSecret(e.ctx, "acme", "n"); return err }},
				{"GetItem", func() error { return e.svc.DeleteSecret(e.ctx, "acme", "n", nil) }},
				{"Query", func() error { _, _, err := e.svc.ListSecrets(e.ctx, "acme", secrets.ListQuery{}); return err }},
				{"BatchGetItem", func() error { _, err := e.reveal("n"); return err }},
			} {
				e.dbFault.Set(op.sdkOp, f.fault)
				wantUnavailable(t, op.sdkOp, op.run())
				e.dbFault.Clear()
				wantUnchanged(t, "after a failed "+op.sdkOp, before, e.snapshot())
			}
			if f.fault != awstest.Down && e.dbFault.Hits("TransactWriteItems") < 4 {
				t.Errorf("%d TransactWriteItems attempts: the SDK did not retry", e.dbFault.Hits("TransactWriteItems"))
			}
		})
	}

	// The write lands but its reply is lost: the caller sees Unavailable and
	// the rotation happened exactly once.
	t.Run("LostReplyOnRotate", func(t *testing.T) {
		e := newEnv(t, b, envOpts{noRetry: true})
		e.create("n", map[string]string{"k": "v1"})
		e.dbFault.Set("TransactWriteItems", awstest.LostReply)
		_, err := e.svc.UpdateSecret(e.ctx, "acme", "n", secrets.UpdateSecretInput{Values: map[string]string{"k": "v2"}})
		wantUnavailable(t, "rotate with the reply lost", err)
		e.dbFault.Clear()
		sec, err := e.svc.GetSecret(e.ctx, "acme", "n")
		if err != nil || sec.LatestVersion != 2 || sec.CurrentVersion != 2 || sec.Revision != 2 {
			t.Fatalf("after the lost reply: %+v, %v; want the rotation applied once", sec, err)
		}
		vs, _, err := e.svc.ListVersions(e.ctx, "acme", "n", 0, 10)
		if err != nil || len(vs) != 2 || vs[0].State != secrets.Enabled || vs[1].State != secrets.Disabled {
			t.Fatalf("versions after the lost reply: %v", err)
		}
		if got, err := e.reveal("n"); err != nil || got["k"] != "v2" {
			t.Fatalf("Reveal: %v, %v", got, err)
		}
	})

	// The purge of a deleted secret's versions fails after the secret is
	// gone: the delete stands, and the next delete in the project finishes
	// the purge.
	t.Run("PurgeFailsAfterDelete", func(t *testing.T) {
		e := newEnv(t, b, envOpts{})
		a := e.create("a", map[string]string{"k": "v1"})
		e.rotate("a", map[string]string{"k": "v2"})
		e.create("b", map[string]string{"k": "v"})
		e.dbFault.Set("BatchWriteItem", awstest.Error500)
		if err := e.svc.DeleteSecret(e.ctx, "acme", "a", nil); err != nil {
			t.Fatalf("delete: %v", err)
		}
		e.dbFault.Clear()
		if _, err := e.svc.GetSecret(e.ctx, "acme", "a"); secrets.ErrorCode(err) != secrets.NotFound {
			t.Fatalf("deleted secret: %v", err)
		}
		if n := countPrefix(e.snapshot(), versionPK(a)+"|"); n != 2 {
			t.Fatalf("%d items of the deleted secret remain, want its 2 versions until the next delete", n)
		}
		if err := e.svc.DeleteSecret(e.ctx, "acme", "b", nil); err != nil {
			t.Fatal(err)
		}
		if left := e.snapshot(); len(left) != 0 {
			keys := make([]string, 0, len(left))
			for k := range left {
				keys = append(keys, k)
			}
			t.Fatalf("items left after both deletes: %v", keys)
		}
	})
}

func countPrefix(m map[string]string, prefix string) int {
	n := 0
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}
