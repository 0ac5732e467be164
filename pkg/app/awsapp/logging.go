package awsapp

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
)

// Log attribute keys of an invocation's IDs.
const (
	// LambdaRequestIDKey is the Lambda request ID of the invocation (the
	// RequestId of its START, END and REPORT lines).
	LambdaRequestIDKey = "aws_request_id"
	// GatewayRequestIDKey is API Gateway's requestContext.requestId, which
	// the HTTP API's access log records too.
	GatewayRequestIDKey = "apigw_request_id"
	// RequestIDKey is the HTTP handler's X-Request-Id, the key its own
	// lines use.
	RequestIDKey = "request_id"
)

// Invocation identifies one Lambda invocation in the log; empty fields are
// left out.
type Invocation struct {
	LambdaRequestID  string
	GatewayRequestID string
	RequestID        string
}

func (inv *Invocation) attrs() []slog.Attr {
	var out []slog.Attr
	for _, a := range [...]struct{ k, v string }{
		{LambdaRequestIDKey, inv.LambdaRequestID},
		{GatewayRequestIDKey, inv.GatewayRequestID},
		{RequestIDKey, inv.RequestID},
	} {
		if a.v != "" {
			out = append(out, slog.String(a.k, a.v))
		}
	}
	return out
}

type invocationKey struct{}

// current is the invocation this process serves, for lines logged without
// its context: the service's own lines, and what the Lambda runtime and
// libraries print with the standard log package once the logger is
// slog.SetDefault. A
// Lambda execution environment serves one invocation at a time, and the
// runtime reports a function error after the handler returns, so the IDs
// stay until the next invocation begins.
var current atomic.Pointer[Invocation]

// BeginInvocation records inv as the invocation being served and returns
// ctx carrying it. Every line a logger of NewLogger writes from now on
// carries inv's IDs: those of ctx (or a context derived from it) if the
// line is logged with one, else those of the latest BeginInvocation.
func BeginInvocation(ctx context.Context, inv Invocation) context.Context {
	p := &inv
	current.Store(p)
	return context.WithValue(ctx, invocationKey{}, p)
}

// NewLogger returns the JSON logger of the service at level: one JSON
// object a line, carrying the IDs of the invocation it was logged in (see
// BeginInvocation). A record that already has one of the keys keeps its
// own value.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(invocationHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

// invocationHandler adds the invocation's IDs to every record (inside the
// group of a logger made with WithGroup; none of the service's are).
type invocationHandler struct{ next slog.Handler }

func (h invocationHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h invocationHandler) Handle(ctx context.Context, r slog.Record) error {
	inv, _ := ctx.Value(invocationKey{}).(*Invocation)
	if inv == nil {
		inv = current.Load()
	}
	if inv != nil {
		add := inv.attrs()
		r.Attrs(func(a slog.Attr) bool {
			for i := range add {
				if add[i].Key == a.Key {
					add = append(add[:i], add[i+1:]...)
					break
				}
			}
			return len(add) > 0
		})
		if len(add) > 0 {
			r = r.Clone()
			r.AddAttrs(add...)
		}
	}
	return h.next.Handle(ctx, r)
}

func (h invocationHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return invocationHandler{h.next.WithAttrs(as)}
}

func (h invocationHandler) WithGroup(name string) slog.Handler {
	return invocationHandler{h.next.WithGroup(name)}
}
