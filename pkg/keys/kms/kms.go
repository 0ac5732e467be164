// Package kms is a KeyWrapper over one AWS KMS key: data keys come from
// GenerateDataKey (AES_256) and are unwrapped with Decrypt, both under the
// version's encryption context, so KMS itself refuses to unwrap a data key
// for any other project, secret or version, and CloudTrail records which
// version each unwrap was for.
//
// It imports pkg/secrets and the AWS SDK's KMS client, reached only
// through the narrow API interface.
package kms

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
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
// Any failure is Unavailable: nothing was written.
func (w *Wrapper) GenerateDataKey(ctx context.Context, ec map[string]string) ([]byte, []byte, error) {
	out, err := w.api.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId: aws.String(w.keyID), KeySpec: types.DataKeySpecAes256, EncryptionContext: ec,
	})
	if err != nil {
		return nil, nil, secrets.WrapError(secrets.Unavailable, err, "the key service is unavailable (GenerateDataKey)")
	}
	if len(out.Plaintext) != dataKeySize || len(out.CiphertextBlob) == 0 {
		clear(out.Plaintext)
		return nil, nil, secrets.Errorf(secrets.Unavailable, "the key service returned a malformed data key")
	}
	return out.Plaintext, out.CiphertextBlob, nil
}

// integrityCodes are the Decrypt errors that mean the wrapped key is not
// one this key made for this context: altered, made under another key, or
// bound to another context. AccessDenied is among them because KMS answers
// it for a ciphertext that names a key the caller cannot use; when it is
// instead a missing kms:Decrypt permission, every unwrap fails the same
// loud way.
var integrityCodes = map[string]bool{
	"InvalidCiphertextException": true,
	"IncorrectKeyException":      true,
	"AccessDeniedException":      true,
}

// UnwrapDataKey asks KMS to decrypt wrapped under the wrapper's key and the
// context ec. Integrity if KMS refuses the ciphertext; Unavailable if KMS
// cannot be reached, throttles, or the key is disabled or gone.
func (w *Wrapper) UnwrapDataKey(ctx context.Context, wrapped []byte, ec map[string]string) ([]byte, error) {
	if len(wrapped) == 0 || len(wrapped) > 6144 {
		return nil, secrets.Errorf(secrets.Integrity, "wrapped data key is malformed")
	}
	out, err := w.api.Decrypt(ctx, &kms.DecryptInput{
		KeyId: aws.String(w.keyID), CiphertextBlob: wrapped, EncryptionContext: ec,
	})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && integrityCodes[ae.ErrorCode()] {
			return nil, secrets.WrapError(secrets.Integrity, err, "the key service refused the wrapped data key")
		}
		return nil, secrets.WrapError(secrets.Unavailable, err, "the key service is unavailable (Decrypt)")
	}
	if len(out.Plaintext) != dataKeySize {
		clear(out.Plaintext)
		return nil, secrets.Errorf(secrets.Integrity, "the wrapped data key does not hold a 256-bit key")
	}
	return out.Plaintext, nil
}
