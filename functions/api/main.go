// Command api is the HTTP API's Lambda function: the same http.Handler as
// `mobius serve`, behind an API Gateway HTTP API (payload format 2.0). It
// is wiring only: configuration from the environment and the service on
// DynamoDB and KMS (pkg/app/awsapp), clients built once per container, then
// the handler behind the edge (edge.go), before lambda.Start.
//
// Besides awsapp's settings it reads MOBIUS_BASE_PATH: the path of the API
// mapping when the API is served on a custom domain (e.g. "secrets" for
// https://api.example.com/secrets/v1/...), stripped before routing. A
// named stage's name is stripped on the execute-api domain without it.
package main

import (
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/mobius-secrets/mobius/pkg/app/awsapp"
	"github.com/mobius-secrets/mobius/pkg/httpapi"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func main() {
	cfg, logger, b := awsapp.Boot(secrets.KeyCheckInit) // the API may write the key check into a new table
	basePath, err := cleanBasePath(os.Getenv("MOBIUS_BASE_PATH"))
	if err != nil {
		fail(err)
	}
	h := httpapi.NewHandler(b.Service, httpapi.Options{Logger: logger, MaxBodyBytes: httpapi.DefaultMaxBodyBytes})
	e := &edge{handler: h, log: logger, basePath: basePath, margin: cfg.DeadlineMargin, maxBody: httpapi.DefaultMaxBodyBytes}
	lambda.Start(e.Handle)
}

func fail(err error) {
	slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("configuration", "err", err.Error())
	os.Exit(1)
}
