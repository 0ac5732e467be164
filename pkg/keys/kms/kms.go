// Package kms is a KeyWrapper over one AWS KMS key: data keys come from
// GenerateDataKey (AES_256) and are unwrapped with Decrypt, both under the
// version's encryption context, so KMS itself refuses to unwrap a data key
// for any other project, secret or version, and CloudTrail records which
// version each unwrap was for.
//
// KMS errors are classified once, here (classify):
//   - Misconfigured: the key or the caller's permissions are wrong, which
//     only an operator can fix (access denied, no such key, a disabled key
//     or one pending deletion, a key that cannot wrap data keys, bad
//     credentials). The message names the key and what to change.
//   - Integrity (Decrypt only): KMS refuses the ciphertext itself
//     (InvalidCiphertextException, IncorrectKeyException): it was altered,
//     or wrapped under another key or context.
//   - Unavailable: throttling, a 5xx, the network, or the caller's deadline.
//
// It imports pkg/secrets and the AWS SDK's KMS client, reached only
// through the narrow API interface.
package kms

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// API is the part of the KMS client the wrapper calls.
type API interface {
	GenerateDataKey(context.Context, *kms.GenerateDataKeyInput, ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(context.Context, *kms.DecryptInput, ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// Wrapper wraps data keys under one KMS key. It is safe for concurrent use.
type Wrapper struct {
	api   API
	keyID string
}

var _ secrets.KeyWrapper = (*Wrapper)(nil)

// New returns a Wrapper over the KMS key keyID (an ID, ARN or alias).
func New(api API, keyID string) *Wrapper { return &Wrapper{api: api, keyID: keyID} }

const dataKeySize = 32

// GenerateDataKey asks KMS for a fresh AES-256 data key bound to ec.
// Misconfigured if the key or the permissions are wrong; Unavailable if
// KMS cannot answer. Nothing was written either way.
func (w *Wrapper) GenerateDataKey(ctx context.Context, ec map[string]string) ([]byte, []byte, error) {
	out, err := w.api.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId: aws.String(w.keyID), KeySpec: types.DataKeySpecAes256, EncryptionContext: ec,
	})
	if err != nil {
		return nil, nil, w.classify("GenerateDataKey", err)
	}
	if len(out.Plaintext) != dataKeySize || len(out.CiphertextBlob) == 0 {
		clear(out.Plaintext)
		return nil, nil, secrets.Errorf(secrets.Unavailable, "the key service returned a malformed data key")
	}
	return out.Plaintext, out.CiphertextBlob, nil
}

// UnwrapDataKey asks KMS to decrypt wrapped under the wrapper's key and the
// context ec. Integrity if KMS refuses the ciphertext; Misconfigured if the
// key or the permissions are wrong; Unavailable if KMS cannot answer.
func (w *Wrapper) UnwrapDataKey(ctx context.Context, wrapped []byte, ec map[string]string) ([]byte, error) {
	if len(wrapped) == 0 || len(wrapped) > 6144 {
		return nil, secrets.Errorf(secrets.Integrity, "wrapped data key is malformed")
	}
	out, err := w.api.Decrypt(ctx, &kms.DecryptInput{
		KeyId: aws.String(w.keyID), CiphertextBlob: wrapped, EncryptionContext: ec,
	})
	if err != nil {
		return nil, w.classify("Decrypt", err)
	}
	if len(out.Plaintext) != dataKeySize {
		clear(out.Plaintext)
		return nil, secrets.Errorf(secrets.Integrity, "the wrapped data key does not hold a 256-bit key")
	}
	return out.Plaintext, nil
}

// KeyID is the configured KMS key (an ID, ARN or alias), for messages.
func (w *Wrapper) KeyID() string { return "KMS key " + w.keyID }

// unavailableCodes are the KMS error codes that mean "try again later".
var unavailableCodes = map[string]bool{
	"ThrottlingException":           true,
	"LimitExceededException":        true, // the request rate of the account
	"KMSInternalException":          true,
	"DependencyTimeoutException":    true,
	"KeyUnavailableException":       true, // KMS says it may be retried
	"InternalFailure":               true,
	"ServiceUnavailable":            true,
	"ServiceUnavailableException":   true,
	"RequestTimeout":                true,
	"RequestTimeoutException":       true,
	"ProvisionedThroughputExceeded": true,
}

// credentialCodes are the errors of a request KMS could not authenticate.
var credentialCodes = map[string]bool{
	"UnrecognizedClientException": true,
	"InvalidClientTokenId":        true,
	"InvalidSignatureException":   true,
	"SignatureDoesNotMatch":       true,
	"IncompleteSignature":         true,
	"ExpiredTokenException":       true,
	"MissingAuthenticationToken":  true,
}

// classify turns a failed call of op into the domain's error. The message
// of a Misconfigured error is for the operator (the HTTP API shows it): it
// names the key and what to fix, and KMS's own words follow in the cause.
func (w *Wrapper) classify(op string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return secrets.WrapError(secrets.Unavailable, err, "the key service did not answer in time (%s)", op)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		// Not an answer from KMS: the network, or a per-attempt timeout.
		return secrets.WrapError(secrets.Unavailable, err, "the key service is unreachable (%s)", op)
	}
	key := w.keyID
	misconfigured := func(format string, args ...any) error {
		return secrets.WrapError(secrets.Misconfigured, err, "KMS key %q (MOBIUS_KMS_KEY_ID): %s", key, fmt.Sprintf(format, args...))
	}
	switch code := ae.ErrorCode(); {
	case code == "InvalidCiphertextException" || code == "IncorrectKeyException":
		if op == "Decrypt" {
			return secrets.WrapError(secrets.Integrity, err, "the key service refused the wrapped data key")
		}
		return misconfigured("KMS refused %s with %s", op, code)
	case code == "AccessDeniedException":
		return misconfigured("access denied to kms:%s: allow it to this function's role in its IAM policy and in the key policy, "+
			"with the encryption context keys project, secret_id and version", op)
	case code == "NotFoundException":
		return misconfigured("no such key in this account and region: set MOBIUS_KMS_KEY_ID to the ID, ARN or alias of an existing key")
	case code == "DisabledException":
		return misconfigured("the key is disabled: enable it (kms:EnableKey) or set MOBIUS_KMS_KEY_ID to an enabled key")
	case code == "KMSInvalidStateException":
		return misconfigured("the key is not usable in its current state (pending deletion, pending import, or its key store is disconnected): " +
			"cancel its deletion or set MOBIUS_KMS_KEY_ID to a usable key")
	case code == "InvalidKeyUsageException" || code == "UnsupportedOperationException":
		return misconfigured("the key cannot wrap data keys: use a symmetric encryption key (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT)")
	case code == "InvalidArnException" || code == "ValidationException":
		return misconfigured("KMS refused the key reference (%s): set MOBIUS_KMS_KEY_ID to a key ID, key ARN, alias name or alias ARN", code)
	case credentialCodes[code]:
		return misconfigured("KMS did not accept this function's credentials (%s): check the role or the AWS credentials it runs with", code)
	case unavailableCodes[code] || statusCode(err) >= 500:
		return secrets.WrapError(secrets.Unavailable, err, "the key service is unavailable (%s)", op)
	default:
		return secrets.WrapError(secrets.Internal, err, "the key service refused %s (%s)", op, code)
	}
}

func statusCode(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
