// Package asynclog takes the writing of log lines off the request's path:
// a Writer gathers the lines that a server's logger writes and one
// goroutine writes them out, many in one write, keeping every line and
// its order. It imports only the standard library.
package asynclog

import (
	"io"
	"sync"
)

// DefaultBuffer is how many bytes of log lines a Writer holds before
// a Write waits for the lines before it to be written.
const DefaultBuffer = 256 << 10

// Writer takes the writing of log lines off the request's path: Write
// copies the line into a buffer and returns, and one goroutine writes what
// has gathered to the underlying writer (a terminal, a pipe, a file), many
// lines in one write. Lines are never dropped and keep their order: a
// Write waits while the buffer is full. Close writes what is left and
// waits for it; Writes after Close go straight to the underlying writer.
// It is safe for concurrent use; give every Write whole lines (a slog
// handler does).
type Writer struct {
	w    io.Writer
	max  int
	mu   sync.Mutex
	more *sync.Cond // signals the writer goroutine: lines or Close
	room *sync.Cond // signals Writes waiting for room
	buf  []byte     // lines not yet taken by the writer goroutine
	// spare is the buffer the writer goroutine last wrote, kept for reuse.
	spare  []byte
	closed bool
	err    error // the first error of the underlying writer
	done   chan struct{}
}

// New starts a Writer over w holding up to max bytes
// (DefaultBuffer if max <= 0). Close it to write what it holds.
func New(w io.Writer, max int) *Writer {
	if max <= 0 {
		max = DefaultBuffer
	}
	l := &Writer{w: w, max: max, done: make(chan struct{})}
	l.more = sync.NewCond(&l.mu)
	l.room = sync.NewCond(&l.mu)
	go l.loop()
	return l
}

// Write queues p, a copy of it, for writing. It returns an error only
// after Close, when it writes p itself.
func (l *Writer) Write(p []byte) (int, error) {
	l.mu.Lock()
	for !l.closed && len(l.buf) > 0 && len(l.buf)+len(p) > l.max {
		l.room.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return l.w.Write(p)
	}
	l.buf = append(l.buf, p...)
	l.more.Signal()
	l.mu.Unlock()
	return len(p), nil
}

func (l *Writer) loop() {
	defer close(l.done)
	l.mu.Lock()
	for {
		for len(l.buf) == 0 && !l.closed {
			l.more.Wait()
		}
		if len(l.buf) == 0 {
			l.mu.Unlock()
			return
		}
		out := l.buf
		l.buf, l.spare = l.spare[:0], nil
		l.room.Broadcast()
		l.mu.Unlock()
		_, err := l.w.Write(out)
		l.mu.Lock()
		if err != nil && l.err == nil {
			l.err = err
		}
		if cap(out) <= 2*l.max {
			l.spare = out[:0]
		}
	}
}

// Close writes the lines still held and returns the first error the
// underlying writer gave, if any. It is safe to call more than once.
func (l *Writer) Close() error {
	l.mu.Lock()
	l.closed = true
	l.more.Signal()
	l.room.Broadcast()
	l.mu.Unlock()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
