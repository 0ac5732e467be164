package lambdainvoke

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// TeeHandler returns a handler that writes every record to next and, during
// an invocation that asked for the log tail (X-Amz-Log-Type: Tail), also to
// that invocation's log, which X-Amz-Log-Result returns. Build the
// function's logger on it: slog.New(lambdainvoke.TeeHandler(h)). A record
// reaches the invocation's log only when it is logged with the context the
// Function was given, and only if next is enabled for its level, so the
// tail shows what the function logged, as on Lambda.
func TeeHandler(next slog.Handler) slog.Handler { return &tee{next: next} }

type tee struct {
	next slog.Handler
	ops  []func(slog.Handler) slog.Handler // WithAttrs and WithGroup, in order
}

func (t *tee) Enabled(ctx context.Context, l slog.Level) bool { return t.next.Enabled(ctx, l) }

func (t *tee) Handle(ctx context.Context, r slog.Record) error {
	if c, ok := ctx.Value(captureKey{}).(*capture); ok {
		c.write(ctx, r, t.ops)
	}
	return t.next.Handle(ctx, r)
}

func (t *tee) WithAttrs(attrs []slog.Attr) slog.Handler {
	return t.with(t.next.WithAttrs(attrs), func(h slog.Handler) slog.Handler { return h.WithAttrs(attrs) })
}

func (t *tee) WithGroup(name string) slog.Handler {
	return t.with(t.next.WithGroup(name), func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

func (t *tee) with(next slog.Handler, op func(slog.Handler) slog.Handler) slog.Handler {
	ops := append(append([]func(slog.Handler) slog.Handler(nil), t.ops...), op)
	return &tee{next: next, ops: ops}
}

type captureKey struct{}

// capture is the log of one invocation; it keeps a little more than the
// tail it will return.
type capture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capture) write(ctx context.Context, r slog.Record, ops []func(slog.Handler) slog.Handler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var h slog.Handler = slog.NewJSONHandler(&c.buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	for _, op := range ops {
		h = op(h)
	}
	_ = h.Handle(ctx, r.Clone())
	if c.buf.Len() > 4*MaxLogResultBytes {
		keep := append([]byte(nil), c.buf.Bytes()[c.buf.Len()-2*MaxLogResultBytes:]...)
		c.buf.Reset()
		c.buf.Write(keep)
	}
}

// result is X-Amz-Log-Result: START, the lines, END and REPORT, as Lambda
// frames an invocation's log, base64 of the last 4 KB.
func (c *capture) result(id, version string, elapsed time.Duration) string {
	c.mu.Lock()
	lines := append([]byte(nil), c.buf.Bytes()...)
	c.mu.Unlock()
	var b bytes.Buffer
	fmt.Fprintf(&b, "START RequestId: %s Version: %s\n", id, version)
	b.Write(lines)
	fmt.Fprintf(&b, "END RequestId: %s\n", id)
	fmt.Fprintf(&b, "REPORT RequestId: %s\tDuration: %.2f ms\t\n", id, float64(elapsed.Microseconds())/1000)
	return encodeLog(b.Bytes())
}
