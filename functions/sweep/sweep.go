package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/mobius-secrets/mobius/pkg/app/awsapp"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// maxPasses bounds the Sweeps of one invocation.
const maxPasses = 50

// sweeper runs the service's Sweep for one scheduled invocation.
type sweeper struct {
	sweep  func(context.Context, time.Time) (secrets.SweepReport, error)
	log    *slog.Logger
	margin time.Duration
}

// Report is the invocation's result: what its Sweeps did.
type Report struct {
	Reminders int `json:"reminders"` // reminder events emitted
	Purged    int `json:"purged"`    // trashed secrets purged
	Expired   int `json:"expired"`   // expired items deleted (none on DynamoDB)
	Passes    int `json:"passes"`    // Sweeps run
}

// Invoke runs one Sweep, and another after each that found work while at
// least half of the invocation's time is left (at most maxPasses), so a
// backlog (a thousand purges come due at once) drains in a few minutes
// rather than in a batch a minute. The scheduled event's content is not
// read. A Sweep that fails ends the invocation with a function error of
// type Unavailable (the store did not answer) or Internal, logged at
// ERROR; the next minute's invocation tries again.
func (s *sweeper) Invoke(ctx context.Context) (Report, error) {
	var inv awsapp.Invocation
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		inv.LambdaRequestID = lc.AwsRequestID
	}
	ctx = awsapp.BeginInvocation(ctx, inv)
	ctx, cancel := awsapp.WithDeadlineMargin(ctx, s.margin)
	defer cancel()
	start := time.Now()
	var out Report
	for {
		rep, err := s.sweep(ctx, time.Now())
		out.Passes++
		out.Reminders += rep.Reminders
		out.Purged += rep.Purged
		out.Expired += rep.Expired
		if err != nil {
			s.log.ErrorContext(ctx, "the sweep failed; the next one tries again", "err", err.Error(),
				"reminders", out.Reminders, "purged", out.Purged, "passes", out.Passes)
			if secrets.ErrorCode(err) == secrets.Unavailable || ctx.Err() != nil {
				return out, messages.InvokeResponse_Error{Type: "Unavailable", Message: "the store did not answer in time; the next sweep tries again"}
			}
			return out, messages.InvokeResponse_Error{Type: "Internal", Message: "internal error"}
		}
		if rep == (secrets.SweepReport{}) || out.Passes == maxPasses || !halfLeft(ctx, start) {
			break
		}
	}
	s.log.InfoContext(ctx, "swept", "reminders", out.Reminders, "purged", out.Purged, "expired", out.Expired, "passes", out.Passes)
	return out, nil
}

// halfLeft reports whether at least half of the time from start to ctx's
// deadline is left (always, without a deadline).
func halfLeft(ctx context.Context, start time.Time) bool {
	d, ok := ctx.Deadline()
	if !ok {
		return true
	}
	return time.Until(d) >= d.Sub(start)/2
}
