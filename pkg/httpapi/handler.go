package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// DefaultMaxBodyBytes bounds a request body unless Options say otherwise.
const DefaultMaxBodyBytes = 1 << 20

// Options tune the handler. The zero value is usable.
type Options struct {
	// Logger receives one access log line per request and the detail of
	// every 5xx. slog.Default() if nil.
	Logger *slog.Logger
	// PageTokenKey is the HMAC key that signs page tokens. Every server
	// behind one endpoint needs the same key: if empty, the store's
	// page-token service key is used (secrets.Service.ServiceKey), read on
	// the first list.
	PageTokenKey []byte
	// MaxBodyBytes bounds a request body (413 above it); 1 MiB if zero.
	MaxBodyBytes int64
	// Now is the clock of the access log; time.Now if nil.
	Now func() time.Time
	// IdempotencyLease is how long an Idempotency-Key claim holds while its
	// request runs, for requests without a deadline of their own
	// (DefaultIdempotencyLease if zero). A request that dies leaves its key
	// claimed this long; a retry after it runs afresh.
	IdempotencyLease time.Duration
}

type server struct {
	svc      *secrets.Service
	idem     idempotencyStore
	leaseFor time.Duration
	log      *slog.Logger
	tokKey   atomic.Pointer[[]byte]
	maxBody  int64
	now      func() time.Time
	mux      *http.ServeMux
}

// NewHandler returns the HTTP API over svc.
func NewHandler(svc *secrets.Service, opts Options) http.Handler {
	s := &server{svc: svc, leaseFor: opts.IdempotencyLease, log: opts.Logger, maxBody: opts.MaxBodyBytes, now: opts.Now}
	if svc != nil {
		s.idem = svc.Driver()
		// Expired Idempotency-Key records go with the Sweep, on a store
		// that keeps expired items.
		svc.SweepExpiredIn(idemPrefix)
	}
	if s.leaseFor <= 0 {
		s.leaseFor = DefaultIdempotencyLease
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if len(opts.PageTokenKey) > 0 {
		k := bytes.Clone(opts.PageTokenKey)
		s.tokKey.Store(&k)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.mux = http.NewServeMux()
	s.routes()
	return s
}

// reqInfo is what the access log learns about a request as it is served.
type reqInfo struct {
	id      string
	project string
	keyID   string
	errCode string
}

// statusWriter remembers the status written, for the access log, and
// carries the request's reqInfo: the handlers below ServeHTTP get this very
// writer, so the record needs no context value (and no copy of the request).
type statusWriter struct {
	http.ResponseWriter
	status int
	info   reqInfo
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// infoOf returns the reqInfo of the request that w answers; a writer that
// ServeHTTP did not make gets a record that nobody logs.
func infoOf(w http.ResponseWriter) *reqInfo {
	if sw, ok := w.(*statusWriter); ok {
		return &sw.info
	}
	return &reqInfo{}
}

// ServeHTTP gives each request an ID, security headers, panic recovery and
// one access log line, then routes it.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	sw := &statusWriter{ResponseWriter: w, info: reqInfo{id: RequestID(r.Header.Get("X-Request-Id"))}}
	info := &sw.info
	// The three headers every answer carries share one backing array; each
	// is a full slice expression, so an Add to one cannot write into another.
	common := []string{info.id, "nosniff", "no-store"}
	h := sw.Header()
	h["X-Request-Id"] = common[0:1:1]
	h["X-Content-Type-Options"] = common[1:2:2]
	h["Cache-Control"] = common[2:3:3]

	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "panic serving request",
				"request_id", info.id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if sw.status == 0 {
				writeStatus(sw, http.StatusInternalServerError, "internal error")
			}
			info.errCode = string(secrets.Internal)
		}
		// An answer of known length is complete: send it now, so that the
		// client does not wait for the access log line.
		if sw.status != 0 && h.Get("Content-Length") != "" {
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
		s.accessLog(r, sw, start)
	}()

	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.noRoute(sw, r)
		return
	}
	s.mux.ServeHTTP(sw, r)
}

// accessLog writes the request's access log line. Its attributes are typed
// and built only when the line is logged.
func (s *server) accessLog(r *http.Request, sw *statusWriter, start time.Time) {
	ctx := r.Context()
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	info := &sw.info
	attrs := make([]slog.Attr, 0, 9)
	attrs = append(attrs,
		slog.String("method", r.Method), slog.String("route", r.Pattern), slog.String("path", r.URL.EscapedPath()),
		slog.Int("status", sw.status), slog.Int64("duration_ms", s.now().Sub(start).Milliseconds()),
		slog.String("request_id", info.id),
	)
	if info.project != "" {
		attrs = append(attrs, slog.String("project", info.project))
	}
	if info.keyID != "" {
		attrs = append(attrs, slog.String("key_id", info.keyID))
	}
	if info.errCode != "" {
		attrs = append(attrs, slog.String("error", info.errCode))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
}

// noRoute answers a request no route matches: 404, or 405 with Allow when
// the path exists under other methods.
func (s *server) noRoute(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	probe := &probeWriter{header: http.Header{}}
	h.ServeHTTP(probe, r)
	switch probe.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", probe.header.Get("Allow"))
		infoOf(w).errCode = "Method Not Allowed"
		writeStatus(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed here", r.Method))
	case http.StatusNotFound, 0:
		infoOf(w).errCode = string(secrets.NotFound)
		writeStatus(w, http.StatusNotFound, "no such route")
	default:
		// A redirect or other answer of the router itself: pass it on.
		for k, v := range probe.header {
			w.Header()[k] = v
		}
		w.WriteHeader(probe.status)
		w.Write(probe.body.Bytes())
	}
}

// probeWriter records what the router would answer.
type probeWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (p *probeWriter) Header() http.Header { return p.header }
func (p *probeWriter) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return p.body.Write(b)
}
func (p *probeWriter) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

// RequestID returns the client's X-Request-Id if it is 1-128 characters of
// A-Z a-z 0-9 - _ . : (short and plain), or a fresh one. The API function
// chooses it before the handler runs, so that every log line of an
// invocation carries the ID the handler answers with.
func RequestID(given string) string {
	if n := len(given); n >= 1 && n <= 128 {
		ok := true
		for i := 0; i < n && ok; i++ {
			c := given[i]
			ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
		}
		if ok {
			return given
		}
	}
	var b [30]byte
	return string(secrets.AppendULID(append(b[:0], "req_"...), time.Now(), nil))
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"Internal Server Error","status":500,"message":"internal error"}}`)
	}
	writeBody(w, status, append(b, '\n'))
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if len(body) > 0 {
		// The length lets ServeHTTP send the whole answer before it
		// writes the access log, keeping it a plain (not chunked) answer.
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	w.WriteHeader(status)
	w.Write(body)
}
