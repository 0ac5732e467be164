package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// SweepInterval is how often `mobius serve` runs the service's Sweep
// (reminders, trash purges, expired items on the embedded store).
const SweepInterval = time.Minute

// sweepTimeout bounds one Sweep.
const sweepTimeout = 30 * time.Second

// StartSweeper runs a.Service.Sweep at once and then every interval until
// ctx ends or the returned stop is called; stop waits for a Sweep under
// way to return. The Sweep is safe to run on many processes at once, so
// every server may run one.
func (a *App) StartSweeper(ctx context.Context, interval time.Duration) (stop func()) {
	t := time.NewTicker(interval)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer t.Stop()
		runSweeps(ctx, t.C, a.Service.Sweep, a.log)
	}()
	return func() {
		cancel()
		<-done
	}
}

// runSweeps calls sweep once, then on every tick, until ctx ends. Each
// call gets sweepTimeout; what it did is logged at debug level, a failure
// as a warning (the next tick tries again).
func runSweeps(ctx context.Context, tick <-chan time.Time, sweep func(context.Context, time.Time) (secrets.SweepReport, error), logger *slog.Logger) {
	for {
		sctx, cancel := context.WithTimeout(ctx, sweepTimeout)
		rep, err := sweep(sctx, time.Now())
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			logger.WarnContext(ctx, "the sweep failed; the next one tries again", "err", err.Error(),
				"reminders", rep.Reminders, "purged", rep.Purged, "expired", rep.Expired)
		case rep != (secrets.SweepReport{}):
			logger.DebugContext(ctx, "swept", "reminders", rep.Reminders, "purged", rep.Purged, "expired", rep.Expired)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}
