// Command sweep is the scheduled function (every minute) that does the
// service's work due by the clock on DynamoDB: reminders of expiry and
// rotation dates (secret.expiring, secret.rotation_due) and purges of
// trash whose retention ended (secrets.Service.Sweep). DynamoDB's time to
// live deletes expired items itself, so that part of the Sweep does
// nothing here. Each piece of work is done exactly once however many
// sweeps run at the same time, so a late or repeated invocation is
// harmless.
//
// It is wiring only: the API function's configuration from the environment
// (pkg/app/awsapp), the service on DynamoDB built once per container
// before lambda.Start, then sweeps (sweep.go). It never calls KMS: the
// Sweep seals and opens nothing.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/mobius-secrets/mobius/pkg/app/awsapp"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

func main() {
	// The Sweep seals and opens nothing, so there is no key to check: no
	// key check (the other functions check the KMS key against the table
	// before their first write), and no KMS permission in its role.
	cfg, logger, b := awsapp.Boot(secrets.KeyCheckOff)
	lambda.Start((&sweeper{sweep: b.Service.Sweep, log: logger, margin: cfg.DeadlineMargin}).Invoke)
}
