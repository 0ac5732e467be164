package resolve_test

import (
	"context"
	"testing"
	"time"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/keys/kms"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// A warm resolver unwraps each data key once: the second call with the same
// versions makes no KMS Decrypt; a new version's key is unwrapped once; an
// expired cache entry is unwrapped again. KMS is moto's, counted by an SDK
// middleware.
func TestDataKeyCacheOnKMS(t *testing.T) {
	endpoint := awstest.StartMoto(t)
	var calls awstest.Counter
	kc := awstest.NewKMSClient(endpoint, func(o *awskms.Options) { o.APIOptions = append(o.APIOptions, calls.Middleware) })
	keyID, err := awstest.CreateKMSKey(context.Background(), kc)
	if err != nil {
		t.Fatal(err)
	}
	e := mustOpen(t, kms.New(kc, keyID))
	e.seed(t)
	// The grant key is made and unwrapped once per process, on the first
	// grant: mint one before counting.
	e.grantAll(t, "acme")
	in := `{"a":"${secret:openai.api_key}","b":"${secret:db.user}","c":"${secret:db.password}"}`
	step := func(name string, wantDecrypts int) {
		t.Helper()
		calls.Reset()
		res := mustResolve(t, e, "acme", in)
		if len(res.Resolved) != 3 {
			t.Fatalf("%s: resolved %v", name, res.Resolved)
		}
		c := calls.Counts()
		if c["KMS.Decrypt"] != wantDecrypts || c["KMS.GenerateDataKey"] != 0 {
			t.Errorf("%s: KMS calls %v, want %d Decrypt and no GenerateDataKey", name, c, wantDecrypts)
		}
	}
	step("cold", 2)
	step("warm", 0)
	if _, err := e.svc.UpdateSecret(e.ctx, "acme", "db", secrets.UpdateSecretInput{Values: map[string]string{"user": "CANARY-u2", "password": "CANARY-p2"}}); err != nil {
		t.Fatal(err)
	}
	step("after rotating db", 1)
	step("warm again", 0)
	e.now = e.now.Add(5*time.Minute + time.Second)
	step("after the cache's 5 minutes", 2)
}
