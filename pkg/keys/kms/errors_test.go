package kms_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/mobius-secrets/mobius/pkg/internal/awstest"
	"github.com/mobius-secrets/mobius/pkg/keys/kms"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

var testEC = secrets.EncryptionContext("acme", "sec_01HZY3J7Q0W6V9X2M4N8P5R3T1", 1)

// wantCode fails unless err has code and, for Misconfigured, a message that
// names the key and each of says.
func wantCode(t *testing.T, what string, err error, code secrets.Code, keyRef string, says ...string) {
	t.Helper()
	if got := secrets.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want %q", what, err, got, code)
	}
	msg := secrets.ErrorMessage(err)
	if code == secrets.Misconfigured && !strings.Contains(msg, keyRef) {
		t.Errorf("%s: message %q does not name the key %q", what, msg, keyRef)
	}
	for _, s := range says {
		if !strings.Contains(msg, s) {
			t.Errorf("%s: message %q does not say %q", what, msg, s)
		}
	}
}

// A key that does not exist is a configuration problem, never a 503 to
// retry nor an integrity failure (moto answers NotFoundException as KMS
// does, for a key ID and for an alias).
func TestMissingKeyMoto(t *testing.T) {
	ctx := context.Background()
	client := awstest.NewKMSClient(awstest.StartMoto(t))
	id, err := awstest.CreateKMSKey(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	_, wrapped, err := kms.New(client, id).GenerateDataKey(ctx, testEC)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"11111111-2222-3333-4444-555555555555", "alias/mobius-no-such-key"} {
		t.Run(ref, func(t *testing.T) {
			w := kms.New(client, ref)
			_, _, err := w.GenerateDataKey(ctx, testEC)
			wantCode(t, "GenerateDataKey", err, secrets.Misconfigured, ref, "no such key", "MOBIUS_KMS_KEY_ID")
			_, err = w.UnwrapDataKey(ctx, wrapped, testEC)
			if secrets.ErrorCode(err) == secrets.Integrity || secrets.ErrorCode(err) == secrets.Unavailable {
				t.Errorf("UnwrapDataKey under a missing key: %v, want Misconfigured", err)
			}
		})
	}
}

// moto 5.2.1 lets a disabled key, a key pending deletion and a signing key
// make data keys; local-kms refuses each as KMS does, so the key states run
// there.
func TestKeyStatesLocalKMS(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		create  *awskms.CreateKeyInput
		change  func(kc *awskms.Client, id string) error
		says    string
		decrypt bool // whether Decrypt of an earlier data key is refused too
	}{
		{"disabled", nil, func(kc *awskms.Client, id string) error {
			_, err := kc.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: &id})
			return err
		}, "disabled", true},
		{"pending deletion", nil, func(kc *awskms.Client, id string) error {
			_, err := kc.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: &id, PendingWindowInDays: aws.Int32(7)})
			return err
		}, "pending deletion", true},
		{"signing key", &awskms.CreateKeyInput{KeyUsage: kmstypes.KeyUsageTypeSignVerify, KeySpec: kmstypes.KeySpecRsa2048}, nil,
			"symmetric encryption key", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			endpoint, goodID := awstest.StartLocalKMS(t)
			kc := awstest.NewKMSClient(endpoint)
			_, wrapped, err := kms.New(kc, goodID).GenerateDataKey(ctx, testEC)
			if err != nil {
				t.Fatal(err)
			}
			id := goodID
			if c.create != nil {
				out, err := kc.CreateKey(ctx, c.create)
				if err != nil {
					t.Fatal(err)
				}
				id = aws.ToString(out.KeyMetadata.KeyId)
			}
			if c.change != nil {
				if err := c.change(kc, id); err != nil {
					t.Fatal(err)
				}
			}
			w := kms.New(kc, id)
			_, _, err = w.GenerateDataKey(ctx, testEC)
			wantCode(t, "GenerateDataKey", err, secrets.Misconfigured, id, c.says)
			if c.decrypt {
				_, err = w.UnwrapDataKey(ctx, wrapped, testEC)
				wantCode(t, "UnwrapDataKey", err, secrets.Misconfigured, id, c.says)
			}
		})
	}
}

// codeTransport answers every KMS request for an operation in codes with
// that error (HTTP 400, as KMS does for client errors) and sends the rest
// on.
type codeTransport struct {
	codes map[string]string
	next  http.RoundTripper
}

func (ct codeTransport) Do(r *http.Request) (*http.Response, error) {
	target := r.Header.Get("X-Amz-Target")
	if code, ok := ct.codes[target[strings.LastIndex(target, ".")+1:]]; ok {
		body := `{"__type":"` + code + `","message":"injected: ` + code + `"}`
		return &http.Response{
			StatusCode: http.StatusBadRequest, Status: "400 Bad Request", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}}, Request: r,
			Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
		}, nil
	}
	return ct.next.RoundTrip(r)
}

// Each KMS error code lands in its class, for both operations: a refused
// permission or a broken key is the operator's to fix, a refused ciphertext
// is Integrity only on Decrypt, and throttling is Unavailable.
func TestErrorCodes(t *testing.T) {
	ctx := context.Background()
	endpoint, keyID := awstest.StartLocalKMS(t)
	_, wrapped, err := kms.New(awstest.NewKMSClient(endpoint), keyID).GenerateDataKey(ctx, testEC)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		code             string
		generate, unwrap secrets.Code
		says             string
	}{
		{"AccessDeniedException", secrets.Misconfigured, secrets.Misconfigured, "access denied"},
		{"NotFoundException", secrets.Misconfigured, secrets.Misconfigured, "no such key"},
		{"DisabledException", secrets.Misconfigured, secrets.Misconfigured, "disabled"},
		{"KMSInvalidStateException", secrets.Misconfigured, secrets.Misconfigured, "current state"},
		{"InvalidKeyUsageException", secrets.Misconfigured, secrets.Misconfigured, "symmetric encryption key"},
		{"UnsupportedOperationException", secrets.Misconfigured, secrets.Misconfigured, "symmetric encryption key"},
		{"UnrecognizedClientException", secrets.Misconfigured, secrets.Misconfigured, "credentials"},
		{"InvalidCiphertextException", secrets.Misconfigured, secrets.Integrity, ""},
		{"IncorrectKeyException", secrets.Misconfigured, secrets.Integrity, ""},
		{"ThrottlingException", secrets.Unavailable, secrets.Unavailable, ""},
		{"KMSInternalException", secrets.Unavailable, secrets.Unavailable, ""},
		{"KeyUnavailableException", secrets.Unavailable, secrets.Unavailable, ""},
		{"DependencyTimeoutException", secrets.Unavailable, secrets.Unavailable, ""},
	} {
		t.Run(c.code, func(t *testing.T) {
			ct := codeTransport{codes: map[string]string{"GenerateDataKey": c.code, "Decrypt": c.code}, next: http.DefaultTransport}
			w := kms.New(awstest.NewKMSClient(endpoint, func(o *awskms.Options) { o.HTTPClient = ct }), keyID)
			_, _, err := w.GenerateDataKey(ctx, testEC)
			wantCode(t, "GenerateDataKey", err, c.generate, keyID, c.says)
			_, err = w.UnwrapDataKey(ctx, wrapped, testEC)
			says := []string{}
			if c.unwrap == secrets.Misconfigured {
				says = append(says, c.says)
			}
			wantCode(t, "UnwrapDataKey", err, c.unwrap, keyID, says...)
			if strings.Contains(secrets.ErrorMessage(err), "injected") {
				t.Errorf("KMS's own message reached the client-safe message: %q", secrets.ErrorMessage(err))
			}
		})
	}
}

// A caller whose deadline passed gets Unavailable, not Internal.
func TestDeadline(t *testing.T) {
	endpoint, keyID := awstest.StartLocalKMS(t)
	w := kms.New(awstest.NewKMSClient(endpoint), keyID)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := w.GenerateDataKey(ctx, testEC)
	wantCode(t, "GenerateDataKey", err, secrets.Unavailable, keyID, "in time")
	_, err = w.UnwrapDataKey(ctx, []byte("x"), testEC)
	wantCode(t, "UnwrapDataKey", err, secrets.Unavailable, keyID, "in time")
}
