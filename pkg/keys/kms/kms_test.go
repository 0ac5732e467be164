package kms_test

import (
	"context"
	"testing"

	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/keys/keystest"
	"github.com/mobius-secrets/mobius/pkg/keys/kms"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func TestMain(m *testing.M) { awstest.Main(m) }

func TestConformanceMoto(t *testing.T) {
	client := awstest.NewKMSClient(awstest.StartMoto(t))
	keystest.Run(t, func(t *testing.T) secrets.KeyWrapper {
		id, err := awstest.CreateKMSKey(context.Background(), client)
		if err != nil {
			t.Fatal(err)
		}
		return kms.New(client, id)
	})
}

// local-kms reads the key ARN at the head of its ciphertext (a length byte
// and the ARN) without authenticating it, and ignores it when the caller
// names the key, as this wrapper always does: a flipped bit there still
// unwraps, to the same data key. AWS KMS authenticates the whole blob.
func localKMSPrefix(wrapped []byte) int { return 1 + int(wrapped[0]) }

func TestConformanceLocalKMS(t *testing.T) {
	endpoint, _ := awstest.StartLocalKMS(t)
	client := awstest.NewKMSClient(endpoint)
	keystest.RunConfig(t, keystest.Config{UnauthenticatedPrefix: localKMSPrefix}, func(t *testing.T) secrets.KeyWrapper {
		id, err := awstest.CreateKMSKey(context.Background(), client)
		if err != nil {
			t.Fatal(err)
		}
		return kms.New(client, id)
	})
}

func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	endpoint, keyID := awstest.StartLocalKMS(t)
	ft := &awstest.FaultTransport{}
	w := kms.New(awstest.NewKMSClient(endpoint, func(o *awskms.Options) { o.HTTPClient = ft }), keyID)
	ec := secrets.EncryptionContext("acme", "sec_01HZY3J7Q0W6V9X2M4N8P5R3T1", 1)
	_, wrapped, err := w.GenerateDataKey(ctx, ec)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []awstest.Fault{awstest.Down, awstest.Error500, awstest.Throttle} {
		ft.Set("", f)
		if _, _, err := w.GenerateDataKey(ctx, ec); secrets.ErrorCode(err) != secrets.Unavailable {
			t.Errorf("fault %d: GenerateDataKey error = %v, want Unavailable", f, err)
		}
		if _, err := w.UnwrapDataKey(ctx, wrapped, ec); secrets.ErrorCode(err) != secrets.Unavailable {
			t.Errorf("fault %d: UnwrapDataKey error = %v, want Unavailable", f, err)
		}
	}
	if ft.Hits("Decrypt") < 6 {
		t.Errorf("the SDK made %d Decrypt attempts, want its own retries (>= 6 over three faults)", ft.Hits("Decrypt"))
	}
	ft.Clear()
	if _, err := w.UnwrapDataKey(ctx, wrapped, ec); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	// A key that is disabled is the operator's to fix: neither a failure
	// to retry nor tampering.
	kc := awstest.NewKMSClient(endpoint)
	if _, err := kc.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: &keyID}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.UnwrapDataKey(ctx, wrapped, ec); secrets.ErrorCode(err) != secrets.Misconfigured {
		t.Errorf("disabled key: UnwrapDataKey error = %v, want Misconfigured", err)
	}
}
