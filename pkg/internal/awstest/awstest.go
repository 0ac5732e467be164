// Package awstest runs local stand-ins for DynamoDB and KMS (and, on moto,
// DynamoDB Streams, EventBridge and SQS) and builds real AWS SDK v2 clients
// against them, for tests only. Nothing here reaches AWS: every stand-in
// listens on 127.0.0.1 and every client has static fake credentials and
// region us-east-1.
//
//   - moto_server (Python, `pip install 'moto[server]==5.2.1'`): DynamoDB
//     and KMS on one port, one process per test binary (StartMoto).
//   - minidyn (github.com/truora/minidyn/server): DynamoDB in process, one
//     per call (StartMinidyn).
//   - local-kms (github.com/nsmithuk/local-kms): KMS, one process per
//     call (StartLocalKMS), built from the tools module (tools/localkms).
//
// A package that uses StartMoto or StartLocalKMS should call Main from its
// TestMain so the moto process stops and the built binary is removed with
// the tests (each stand-in also exits if the test binary dies).
package awstest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	minidyn "github.com/truora/minidyn/server"
)

// Region is the region every client and stand-in uses.
const Region = "us-east-1"

func retryer() aws.Retryer {
	// The SDK's standard retries, with short waits and no retry quota, so
	// tests that inject failures stay fast and independent.
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxBackoff = 20 * time.Millisecond
		o.RateLimiter = ratelimit.None
	})
}

// NewDynamoClient returns a DynamoDB client for the stand-in at endpoint.
// opts may add middleware (APIOptions), an HTTP client, or other retries.
func NewDynamoClient(endpoint string, opts ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret-test", ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer:      retryer(),
	}, opts...)
}

// NewKMSClient returns a KMS client for the stand-in at endpoint.
func NewKMSClient(endpoint string, opts ...func(*kms.Options)) *kms.Client {
	return kms.New(kms.Options{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret-test", ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer:      retryer(),
	}, opts...)
}

// NewEventBridgeClient returns an EventBridge client for the stand-in at
// endpoint (moto).
func NewEventBridgeClient(endpoint string, opts ...func(*eventbridge.Options)) *eventbridge.Client {
	return eventbridge.New(eventbridge.Options{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret-test", ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer:      retryer(),
	}, opts...)
}

// NewSQSClient returns an SQS client for the stand-in at endpoint (moto).
func NewSQSClient(endpoint string, opts ...func(*sqs.Options)) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret-test", ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer:      retryer(),
	}, opts...)
}

// CreateKMSKey creates a symmetric encryption key and returns its ID.
func CreateKMSKey(ctx context.Context, c *kms.Client) (string, error) {
	out, err := c.CreateKey(ctx, &kms.CreateKeyInput{
		KeyUsage:    kmstypes.KeyUsageTypeEncryptDecrypt,
		KeySpec:     kmstypes.KeySpecSymmetricDefault,
		Description: aws.String("mobius test key"),
	})
	if err != nil {
		return "", fmt.Errorf("creating KMS key: %w", err)
	}
	return aws.ToString(out.KeyMetadata.KeyId), nil
}

// StartMinidyn serves a fresh in-process minidyn DynamoDB on 127.0.0.1 for
// the test and returns its endpoint.
func StartMinidyn(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(minidyn.NewServer())
	t.Cleanup(srv.Close)
	return srv.URL
}

// serialize wraps h so that it serves one request at a time.
func serialize(h http.Handler) http.Handler {
	sem := make(chan struct{}, 1)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sem <- struct{}{}
		defer func() { <-sem }()
		h.ServeHTTP(w, r)
	})
}
