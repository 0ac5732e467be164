// Command api is the HTTP API's Lambda function: the same http.Handler as
// `mobius serve`, behind an API Gateway HTTP API (payload format 2.0). It
// is wiring only: configuration from the environment (pkg/app), clients
// built once per container, before lambda.Start.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/mobius-secrets/mobius/pkg/app"
)

func main() {
	cfg, err := app.ConfigFromEnv(os.Getenv)
	if err != nil {
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("configuration", "err", err.Error())
		os.Exit(1)
	}
	logger := app.NewLogger(os.Stderr, cfg)
	a, err := app.New(context.Background(), cfg, logger)
	if err != nil {
		logger.Error("starting", "err", err.Error())
		os.Exit(1)
	}
	defer a.Close()
	lambda.Start(httpadapter.NewV2(a.Handler).ProxyWithContext)
}
