// Command publish is the event publisher: triggered by the table's DynamoDB
// stream (new images, filtered to inserts of change events), it publishes
// each change event of the feed to an EventBridge bus, so that a team can
// route changes anywhere without polling GET …/events.
//
// Each event is published with source "mobius.secrets", the event's type as
// its detail-type (secret.created, secret.rotated, …) and, as its detail,
// the event exactly as the feed serves it (pkg/httpapi's EventJSON): never
// a value. Events go out in stream order, at most ten a PutEvents call; a
// record whose event EventBridge refuses, or that cannot be read, is
// reported as a batch item failure (ReportBatchItemFailures), so the stream
// retries from it. A retry can publish an event twice, and EventBridge
// keeps no order and removes no duplicates: consumers dedupe by the
// detail's id (an event ID, evt_ + a ULID) and order by it.
//
// It is wiring only: configuration from the environment (MOBIUS_EVENT_BUS,
// MOBIUS_LOG_LEVEL, MOBIUS_DEADLINE_MARGIN, MOBIUS_AWS_ATTEMPT_TIMEOUT; see
// awsapp.PublishConfig) and the EventBridge client, built once per
// container before lambda.Start. It reads nothing from the table and uses
// no key: the stream's image is the item (pkg/store/dynamo reads it), and
// the domain decodes it (secrets.DecodeEventItem).
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/mobius-secrets/mobius/pkg/app/awsapp"
)

func main() {
	cfg, err := awsapp.PublishConfigFromEnv(os.Getenv)
	if err != nil {
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("configuration", "err", err.Error())
		os.Exit(1)
	}
	logger := awsapp.NewLogger(os.Stderr, cfg.LogLevel)
	slog.SetDefault(logger)
	awsCfg, err := awsapp.LoadAWSConfig(context.Background(), cfg.AttemptTimeout, logger)
	if err != nil {
		logger.Error("starting", "err", err.Error())
		os.Exit(1)
	}
	p := &publisher{api: eventbridge.NewFromConfig(awsCfg), bus: cfg.EventBus, log: logger, margin: cfg.DeadlineMargin}
	lambda.Start(p.Handle)
}
