package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mobius-secrets/mobius/pkg/lambdainvoke"
	"github.com/mobius-secrets/mobius/pkg/runner"
)

type typedErr struct{ typ string }

func (e typedErr) Error() string { return e.typ }

// TestAgainstTheAdapter runs the runner against the Invoke API of
// pkg/lambdainvoke, the one `mobius serve` answers with, over a function
// that fails as its input asks.
func TestAgainstTheAdapter(t *testing.T) {
	var calls, flaky atomic.Int64
	fn := func(ctx context.Context, payload []byte) ([]byte, error) {
		calls.Add(1)
		var ev struct {
			Grant string `json:"grant"`
			Input string `json:"input"`
		}
		if err := json.Unmarshal(payload, &ev); err != nil || ev.Grant != "mbg_ok" {
			return nil, typedErr{"Unauthorized"}
		}
		switch ev.Input {
		case "missing":
			return nil, typedErr{"NotFound"}
		case "flaky":
			if flaky.Add(1) < 3 {
				return nil, typedErr{"Unavailable"}
			}
		case "slow":
			<-ctx.Done()
			return nil, typedErr{"Unavailable"}
		case "huge":
			return []byte(`{"output":"` + strings.Repeat("x", lambdainvoke.MaxPayloadBytes) + `","resolved":[]}`), nil
		}
		return json.Marshal(map[string]any{"output": "resolved " + ev.Input, "resolved": []any{}})
	}
	errf := func(err error) (string, string) { return err.Error(), "as asked" }
	// No timeout, but on the function "timed": only the one that blocks
	// meets one, so no other case depends on how fast this machine is.
	srv := httptest.NewServer(lambdainvoke.NewHandler(fn, errf, lambdainvoke.Options{
		Names: []string{runner.LocalFunction}, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	timed := httptest.NewServer(lambdainvoke.NewHandler(fn, errf, lambdainvoke.Options{
		Names: []string{runner.LocalFunction}, Timeout: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(timed.Close)
	ft := &fakeTime{now: time.Unix(1_800_000_000, 0)}
	retry := runner.WithRetry(runner.Retry{MaxAttempts: 3, Base: time.Millisecond, Max: time.Millisecond})
	rc := runner.New(lambdaClient(srv.URL), runner.LocalFunction, retry, runner.WithClock(ft.Now, ft.Sleep, nil))

	cases := []struct {
		name, function string
		timed          bool
		grant          string
		input          any
		sentinel       error
		typ            string
		calls          int64
	}{
		{"a result", "", false, "mbg_ok", "x", nil, "", 1},
		{"Unauthorized", "", false, "mbg_bad", "x", runner.ErrUnauthorized, "Unauthorized", 1},
		{"NotFound", "", false, "mbg_ok", "missing", runner.ErrNotFound, "NotFound", 1},
		{"Unavailable, then a result", "", false, "mbg_ok", "flaky", nil, "", 3},
		{"a timed-out function, every attempt", "", true, "mbg_ok", "slow", runner.ErrTimedOut, "Sandbox.Timedout", 3},
		{"a result over 6 MB", "", false, "mbg_ok", "huge", runner.ErrResponseTooLarge, "Function.ResponseSizeTooLarge", 1},
		{"an input over 6 MB", "", false, "mbg_ok", strings.Repeat("y", lambdainvoke.MaxPayloadBytes), nil, "RequestEntityTooLargeException", 0},
		{"an unknown function", "other", false, "mbg_ok", "x", runner.ErrFunctionNotFound, "ResourceNotFoundException", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client := rc
			if c.function != "" || c.timed {
				url, name := srv.URL, c.function
				if c.timed {
					url, name = timed.URL, runner.LocalFunction
				}
				client = runner.New(lambdaClient(url), name, retry, runner.WithClock(ft.Now, ft.Sleep, nil))
			}
			before := calls.Load()
			res, err := client.Resolve(context.Background(), c.grant, c.input, nil)
			if got := calls.Load() - before; got != c.calls {
				t.Errorf("the function ran %d times, want %d", got, c.calls)
			}
			if c.typ == "" {
				if err != nil || !strings.HasPrefix(string(res.Output), `"resolved `) {
					t.Fatalf("%v %+v", err, res)
				}
				return
			}
			var e *runner.Error
			if !errors.As(err, &e) || e.Type != c.typ || (c.sentinel != nil && !errors.Is(err, c.sentinel)) {
				t.Fatalf("%v, want %s", err, c.typ)
			}
		})
	}
}
