package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// script is a Sweep that answers each call with the next of its results,
// then with nothing to do.
type script struct {
	results []secrets.SweepReport
	errs    []error
	calls   int
	sleep   time.Duration // each call's duration
}

func (s *script) sweep(ctx context.Context, _ time.Time) (secrets.SweepReport, error) {
	i := s.calls
	s.calls++
	time.Sleep(s.sleep)
	var err error
	if i < len(s.errs) {
		err = s.errs[i]
	}
	if i < len(s.results) {
		return s.results[i], err
	}
	return secrets.SweepReport{}, err
}

func TestSweeperPasses(t *testing.T) {
	endless := make([]secrets.SweepReport, 2*maxPasses)
	for i := range endless {
		endless[i] = secrets.SweepReport{Purged: 10}
	}
	for _, c := range []struct {
		name    string
		script  *script
		timeout time.Duration
		want    Report
	}{
		{"nothing due: one pass", &script{}, 0, Report{Passes: 1}},
		{"one batch, then nothing", &script{results: []secrets.SweepReport{{Reminders: 2, Purged: 1}}}, 0, Report{Reminders: 2, Purged: 1, Passes: 2}},
		{"a backlog drains", &script{results: []secrets.SweepReport{{Purged: 10}, {Purged: 10, Reminders: 100}, {Purged: 3}}}, 0,
			Report{Purged: 23, Reminders: 100, Passes: 4}},
		{"at most maxPasses", &script{results: endless}, 0, Report{Purged: 10 * maxPasses, Passes: maxPasses}},
		// The first pass takes more than half of the invocation's time: no
		// second one starts.
		{"no pass past half the time", &script{results: endless, sleep: 300 * time.Millisecond}, 500 * time.Millisecond, Report{Purged: 10, Passes: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := &sweeper{sweep: c.script.sweep, log: slog.New(slog.NewJSONHandler(&logs, nil)), margin: time.Millisecond}
			ctx := context.Background()
			if c.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.timeout)
				defer cancel()
			}
			got, err := s.Invoke(ctx)
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
			if !strings.Contains(logs.String(), `"msg":"swept"`) {
				t.Errorf("logs:\n%s", logs.String())
			}
		})
	}
}

// A failed Sweep is a function error of a stable type, logged at ERROR
// with its cause; the message says nothing of it.
func TestSweeperFails(t *testing.T) {
	for _, c := range []struct {
		name, typ, msg string
		err            error
	}{
		{"store unavailable", "Unavailable", "the store did not answer in time; the next sweep tries again", secrets.Errorf(secrets.Unavailable, "injected: throttled")},
		{"anything else", "Internal", "internal error", errors.New("injected: a damaged record")},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			sc := &script{results: []secrets.SweepReport{{Purged: 1}, {Reminders: 1}}, errs: []error{nil, c.err}}
			s := &sweeper{sweep: sc.sweep, log: slog.New(slog.NewJSONHandler(&logs, nil))}
			got, err := s.Invoke(context.Background())
			var fe messages.InvokeResponse_Error
			if !errors.As(err, &fe) || fe.Type != c.typ || fe.Message != c.msg {
				t.Fatalf("error %#v, want %s: %s", err, c.typ, c.msg)
			}
			if got != (Report{Purged: 1, Reminders: 1, Passes: 2}) || sc.calls != 2 {
				t.Errorf("report %+v after %d calls", got, sc.calls)
			}
			if l := logs.String(); !strings.Contains(l, `"level":"ERROR"`) || !strings.Contains(l, "injected") {
				t.Errorf("logs:\n%s", l)
			}
		})
	}
}
