package app

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/internal/testenv"
	"github.com/mobius-secrets/mobius/internal/testsupport"

	"github.com/mobius-secrets/mobius/pkg/kv"
	"github.com/mobius-secrets/mobius/pkg/kv/memkv"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// The loop sweeps at once and on every tick, logs a failure and goes on,
// and returns when its context ends.
func TestRunSweeps(t *testing.T) {
	tick := make(chan time.Time)
	calls := make(chan struct{}, 10)
	var n int
	sweep := func(ctx context.Context, now time.Time) (secrets.SweepReport, error) {
		n++
		calls <- struct{}{}
		if _, ok := ctx.Deadline(); !ok {
			t.Error("a sweep without a deadline")
		}
		if n == 2 {
			return secrets.SweepReport{Purged: 1}, errors.New("injected sweep failure")
		}
		return secrets.SweepReport{Reminders: n}, nil
	}
	logs := &testsupport.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { runSweeps(ctx, tick, sweep, logger); close(done) }()
	<-calls // at once
	tick <- time.Now()
	<-calls
	tick <- time.Now()
	<-calls
	cancel()
	<-done
	if n != 3 {
		t.Fatalf("%d sweeps, want 3", n)
	}
	if l := logs.String(); !strings.Contains(l, "injected sweep failure") || !strings.Contains(l, "reminders=3") {
		t.Fatalf("logs:\n%s", l)
	}
}

// StartSweeper runs the service's Sweep: a trashed secret whose retention
// ended is purged; stop ends the loop.
func TestStartSweeperPurgesTheTrash(t *testing.T) {
	w := testenv.LocalKeys(t)
	d := memkv.New()
	old := secrets.NewService(d, w, secrets.Options{Now: func() time.Time { return time.Now().Add(-8 * 24 * time.Hour) }})
	ctx := context.Background()
	s, err := old.CreateSecret(ctx, "default", secrets.CreateSecretInput{Name: "old", Values: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.DeleteSecret(ctx, "default", "old", nil); err != nil {
		t.Fatal(err)
	}
	a := &App{Service: secrets.NewService(d, w, secrets.Options{}), log: slog.New(slog.DiscardHandler)}
	stop := a.StartSweeper(ctx, time.Hour)
	for i := 0; ; i++ {
		if trash, _, err := a.Service.ListTrash(ctx, "default", "", 10); err == nil && len(trash) == 0 {
			break
		}
		if i == 1000 {
			t.Fatal("the sweeper did not purge the trash")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if items, _ := d.Query(ctx, kv.Query{Partition: secrets.VersionItemKey("default", s.ID, 1).Partition, Limit: 100}); len(items) != 0 {
		t.Fatalf("%d items of the purged secret remain", len(items))
	}
}
