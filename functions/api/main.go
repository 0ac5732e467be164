// Command api is the HTTP API's Lambda function: the same http.Handler as
// `mobius serve`, behind an API Gateway HTTP API (payload format 2.0). It
// is wiring only: configuration from the environment and the service on
// DynamoDB and KMS (pkg/app/awsapp), clients built once per container, then
// the handler, before lambda.Start.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/mobius-secrets/mobius/pkg/app/awsapp"
	"github.com/mobius-secrets/mobius/pkg/httpapi"
)

func main() {
	cfg, err := awsapp.ConfigFromEnv(os.Getenv)
	if err != nil {
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("configuration", "err", err.Error())
		os.Exit(1)
	}
	logger := awsapp.NewLogger(os.Stderr, cfg.LogLevel)
	b, err := awsapp.Open(context.Background(), cfg, logger)
	if err != nil {
		logger.Error("starting", "err", err.Error())
		os.Exit(1)
	}
	h := httpapi.NewHandler(b.Service, httpapi.Options{Logger: logger, PageTokenKey: b.PageTokenKey})
	lambda.Start(httpadapter.NewV2(h).ProxyWithContext)
}
