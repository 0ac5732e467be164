// Package awsapp is the composition root of the Lambda functions: the
// service on DynamoDB and KMS, configured from the environment. pkg/app
// uses it too, for `mobius serve` and the admin commands with
// MOBIUS_STORE=dynamodb.
//
// It imports pkg/secrets, the DynamoDB store, the KMS key wrapper and the
// AWS SDK, and nothing else of the product: neither bbolt nor the HTTP
// handler, so that the resolve function links only what it runs. The API
// function adds the handler itself.
package awsapp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/mobius-secrets/mobius/pkg/keys/kms"
	"github.com/mobius-secrets/mobius/pkg/secrets"
	"github.com/mobius-secrets/mobius/pkg/store/dynamo"
)

// Config locates the table and the key.
type Config struct {
	Table        string     // MOBIUS_TABLE: the DynamoDB table
	KMSKeyID     string     // MOBIUS_KMS_KEY_ID: key ID, ARN or alias
	PageTokenKey []byte     // MOBIUS_PAGE_TOKEN_KEY, decoded; nil if unset
	LogLevel     slog.Level // MOBIUS_LOG_LEVEL
}

// ConfigFromEnv reads MOBIUS_TABLE, MOBIUS_KMS_KEY_ID, MOBIUS_PAGE_TOKEN_KEY
// and MOBIUS_LOG_LEVEL through getenv. MOBIUS_STORE, if set, must say
// dynamodb: a function configured for another store fails at once.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	if s := strings.ToLower(strings.TrimSpace(getenv("MOBIUS_STORE"))); s != "" && s != "dynamodb" {
		return Config{}, fmt.Errorf("MOBIUS_STORE=%q: this program runs on DynamoDB only; unset it or set it to \"dynamodb\"", s)
	}
	cfg := Config{Table: getenv("MOBIUS_TABLE"), KMSKeyID: getenv("MOBIUS_KMS_KEY_ID")}
	var err error
	if cfg.LogLevel, err = LogLevel(getenv); err != nil {
		return Config{}, err
	}
	if cfg.Table == "" {
		return Config{}, errors.New("MOBIUS_STORE=dynamodb needs MOBIUS_TABLE (the DynamoDB table name)")
	}
	if cfg.KMSKeyID == "" {
		return Config{}, errors.New("MOBIUS_STORE=dynamodb needs MOBIUS_KMS_KEY_ID (the KMS key that wraps data keys)")
	}
	if cfg.PageTokenKey, err = pageTokenKey(getenv("MOBIUS_PAGE_TOKEN_KEY")); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// LogLevel reads MOBIUS_LOG_LEVEL (debug, info, warn or error; info if
// unset).
func LogLevel(getenv func(string) string) (slog.Level, error) {
	var l slog.Level
	if v := getenv("MOBIUS_LOG_LEVEL"); v != "" {
		if err := l.UnmarshalText([]byte(v)); err != nil {
			return 0, fmt.Errorf("MOBIUS_LOG_LEVEL=%q: want debug, info, warn or error", v)
		}
	}
	return l, nil
}

// NewLogger returns the JSON logger of the service at level.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// Backend is the service on DynamoDB and KMS, and the key that signs page
// tokens.
type Backend struct {
	Service      *secrets.Service
	PageTokenKey []byte
}

// Open builds the DynamoDB store and the KMS key wrapper from the AWS SDK's
// own configuration (AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB,
// AWS_ENDPOINT_URL_KMS, credentials, profiles) and the service on them. It
// only builds clients: nothing is called over the network.
//
// Every instance on one table must sign page tokens with the same key: the
// configured MOBIUS_PAGE_TOKEN_KEY, else one derived from the table name and
// the KMS key ID, with a warning (anyone who knows both can then forge a
// page token, which only ever names a position in a list the caller may
// read).
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Backend, error) {
	if logger == nil {
		logger = slog.Default()
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("MOBIUS_STORE=dynamodb needs an AWS region (set AWS_REGION)")
	}
	tokenKey := cfg.PageTokenKey
	if tokenKey == nil {
		sum := sha256.Sum256([]byte("mobius page tokens\x00" + cfg.Table + "\x00" + cfg.KMSKeyID))
		tokenKey = sum[:]
		logger.WarnContext(ctx, "MOBIUS_PAGE_TOKEN_KEY is not set: page tokens are signed with a key derived from the table name and KMS key ID; set it to 32 random bytes (hex or base64)")
	}
	store := dynamo.New(dynamodb.NewFromConfig(awsCfg), cfg.Table)
	keys := kms.New(awskms.NewFromConfig(awsCfg), cfg.KMSKeyID)
	return &Backend{
		Service:      secrets.NewService(store, keys, secrets.Options{Logger: logger}),
		PageTokenKey: tokenKey,
	}, nil
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
				return nil, fmt.Errorf("MOBIUS_PAGE_TOKEN_KEY holds %d bytes; want at least 16 (32 random bytes, hex or base64)", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("MOBIUS_PAGE_TOKEN_KEY is neither hex nor base64")
}
