package app

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/mobius-secrets/mobius/pkg/keys/kms"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// openDynamo builds the DynamoDB store and the KMS key wrapper from the AWS
// SDK's own configuration (AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB,
// AWS_ENDPOINT_URL_KMS, credentials, profiles), and the page-token key that
// every instance on the same table shares: MOBIUS_PAGE_TOKEN_KEY (hex or
// base64, at least 16 bytes), else one derived from the table name and the
// KMS key ID, with a warning (anyone who knows both can then forge a page
// token, which only ever names a position in a list the caller may read).
func openDynamo(ctx context.Context, cfg Config, logger *slog.Logger) (secrets.Store, secrets.KeyWrapper, []byte, error) {
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("app: AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, nil, nil, errors.New("app: MOBIUS_STORE=dynamodb needs an AWS region (set AWS_REGION)")
	}
	tokenKey, err := pageTokenKey(os.Getenv("MOBIUS_PAGE_TOKEN_KEY"))
	if err != nil {
		return nil, nil, nil, err
	}
	if tokenKey == nil {
		sum := sha256.Sum256([]byte("mobius page tokens\x00" + cfg.Table + "\x00" + cfg.KMSKeyID))
		tokenKey = sum[:]
		logger.WarnContext(ctx, "MOBIUS_PAGE_TOKEN_KEY is not set: page tokens are signed with a key derived from the table name and KMS key ID; set it to 32 random bytes (hex or base64)")
	}
	store := dynamo.New(dynamodb.NewFromConfig(awsCfg), cfg.Table)
	keys := kms.New(awskms.NewFromConfig(awsCfg), cfg.KMSKeyID)
	return store, keys, tokenKey, nil
}

// pageTokenKey decodes MOBIUS_PAGE_TOKEN_KEY; nil if it is empty.
func pageTokenKey(v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	for _, dec := range []func(string) ([]byte, error){
		hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	} {
		if b, err := dec(v); err == nil {
			if len(b) < 16 {
				return nil, fmt.Errorf("app: MOBIUS_PAGE_TOKEN_KEY holds %d bytes; want at least 16 (32 random bytes, hex or base64)", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("app: MOBIUS_PAGE_TOKEN_KEY is neither hex nor base64")
}
