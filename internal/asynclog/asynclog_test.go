package asynclog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingBuffer is a writer that records each Write.
type countingBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (b *countingBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	return b.buf.Write(p)
}

func (b *countingBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// gate is a writer that blocks every Write until open is closed.
type gate struct {
	countingBuffer
	open    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (g *gate) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.open
	return g.countingBuffer.Write(p)
}

func TestWriter(t *testing.T) {
	t.Run("every line, whole and in each writer's order, after Close", func(t *testing.T) {
		var out countingBuffer
		lw := New(&out, 1024) // small, so that Writes wait for room
		logger := slog.New(slog.NewJSONHandler(lw, nil))
		const goroutines, each = 8, 500
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					logger.Info("request", "g", g, "i", i)
				}
			})
		}
		wg.Wait()
		if err := lw.Close(); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != goroutines*each {
			t.Fatalf("%d lines, want %d", len(lines), goroutines*each)
		}
		next := make([]int, goroutines)
		for _, line := range lines {
			var g, i int
			if _, err := fmt.Sscanf(line[strings.Index(line, `"g":`):], `"g":%d,"i":%d}`, &g, &i); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			if i != next[g] {
				t.Fatalf("goroutine %d: line %d after %d", g, i, next[g]-1)
			}
			next[g]++
		}
		if out.writes >= len(lines) {
			t.Logf("%d writes for %d lines: none were batched", out.writes, len(lines))
		}
	})
	t.Run("a Write does not wait for the underlying writer while there is room", func(t *testing.T) {
		g := &gate{open: make(chan struct{}), entered: make(chan struct{})}
		lw := New(g, 1<<20)
		lw.Write([]byte("first\n"))
		<-g.entered // the writer goroutine is stuck in the first write
		done := make(chan struct{})
		go func() {
			for i := range 100 {
				lw.Write([]byte(fmt.Sprintf("line %d\n", i)))
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Writes waited for a blocked underlying writer although the buffer had room")
		}
		close(g.open)
		if err := lw.Close(); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(g.String(), "\n"); got != 101 {
			t.Errorf("%d lines written, want 101", got)
		}
	})
	t.Run("a full buffer makes Write wait: nothing is dropped", func(t *testing.T) {
		g := &gate{open: make(chan struct{}), entered: make(chan struct{})}
		lw := New(g, 16)
		lw.Write([]byte("0123456789abcde\n")) // taken by the writer goroutine, which blocks
		<-g.entered
		lw.Write([]byte("0123456789abcde\n")) // fills the buffer
		third := make(chan struct{})
		go func() {
			lw.Write([]byte("third line here\n"))
			close(third)
		}()
		select {
		case <-third:
			t.Fatal("a Write into a full buffer returned at once")
		case <-time.After(50 * time.Millisecond):
		}
		close(g.open)
		<-third
		if err := lw.Close(); err != nil {
			t.Fatal(err)
		}
		if got := g.String(); strings.Count(got, "\n") != 3 || !strings.HasSuffix(got, "third line here\n") {
			t.Errorf("written %q", got)
		}
	})
	t.Run("after Close a Write goes straight through, and Close is idempotent", func(t *testing.T) {
		var out countingBuffer
		lw := New(&out, 0)
		lw.Write([]byte("before\n"))
		if err := lw.Close(); err != nil {
			t.Fatal(err)
		}
		if n, err := lw.Write([]byte("after\n")); n != 6 || err != nil {
			t.Errorf("Write after Close: %d, %v", n, err)
		}
		if err := lw.Close(); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != "before\nafter\n" {
			t.Errorf("written %q", got)
		}
	})
	t.Run("Close reports the underlying writer's error", func(t *testing.T) {
		lw := New(failing{}, 0)
		lw.Write([]byte("line\n"))
		if err := lw.Close(); !errors.Is(err, errFailing) {
			t.Errorf("Close: %v, want %v", err, errFailing)
		}
	})
}

var errFailing = errors.New("disk full")

type failing struct{}

func (failing) Write([]byte) (int, error) { return 0, errFailing }

var _ io.Writer = (*Writer)(nil)

// BenchmarkServerLog is the access log line of every request, from
// concurrent requests, into a file: written by each request itself, or
// handed to a Writer.
func BenchmarkServerLog(b *testing.B) {
	for _, mode := range []string{"direct", "logwriter"} {
		b.Run("writer="+mode, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "server.log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			var w io.Writer = f
			var lw *Writer
			if mode == "logwriter" {
				lw = New(f, 0)
				w = lw
			}
			logger := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					logger.LogAttrs(context.Background(), slog.LevelInfo, "request",
						slog.String("method", "GET"), slog.String("route", "GET /v1/projects/{project}/secrets/{secret}"),
						slog.String("path", "/v1/projects/bench/secrets/s-0000001"), slog.Int("status", 200),
						slog.Int64("duration_ms", 0), slog.String("request_id", "req_01JABCDEFGHJKMNPQRSTVWXYZ0"),
						slog.String("project", "bench"), slog.String("key_id", "key_01JABCDEFGHJKMNPQRSTVWXYZ0"))
				}
			})
			if lw != nil {
				lw.Close()
			}
		})
	}
}
