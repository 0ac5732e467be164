package httpapi_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/mobius-secrets/mobius/pkg/httpapi"
)

// seenAtLog is a slog handler that notes, when the access log line is
// written, what the client had been sent by then.
type seenAtLog struct {
	mu      sync.Mutex
	rec     *httptest.ResponseRecorder
	flushed bool
	body    int
	lines   int
}

func (h *seenAtLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *seenAtLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *seenAtLog) WithGroup(string) slog.Handler            { return h }
func (h *seenAtLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "request" {
		h.mu.Lock()
		h.flushed, h.body, h.lines = h.rec.Flushed, h.rec.Body.Len(), h.lines+1
		h.mu.Unlock()
	}
	return nil
}

// The answer is complete and sent, with its Content-Length, before the
// access log line is written: no client waits for the log.
func TestAnswerSentBeforeTheAccessLog(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{"health", "/healthz", 200},
		{"no route", "/v1/nowhere", 404},
		{"unauthorized", "/v1/projects/acme/secrets/db", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &seenAtLog{rec: httptest.NewRecorder()}
			h := httpapi.NewHandler(nil, httpapi.Options{Logger: slog.New(log)})
			h.ServeHTTP(log.rec, httptest.NewRequest("GET", tc.path, nil))
			if log.rec.Code != tc.status {
				t.Fatalf("status %d, want %d", log.rec.Code, tc.status)
			}
			if log.lines != 1 {
				t.Fatalf("%d access log lines", log.lines)
			}
			if !log.flushed || log.body == 0 || log.body != log.rec.Body.Len() {
				t.Errorf("at the access log: flushed %v, %d of %d body bytes sent", log.flushed, log.body, log.rec.Body.Len())
			}
			if cl := log.rec.Header().Get("Content-Length"); cl != strconv.Itoa(log.rec.Body.Len()) {
				t.Errorf("Content-Length %q for a body of %d bytes", cl, log.rec.Body.Len())
			}
		})
	}
}
