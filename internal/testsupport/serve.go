package testsupport

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Serve is a running `mobius serve` process.
type Serve struct {
	Cmd      *exec.Cmd
	Endpoint string            // from the log line that says the server runs
	Exports  map[string]string // the export lines, printed on a first start only
	Stdout   *SyncBuffer       // line by line, as printed
	Stderr   *SyncBuffer       // the JSON log, line by line

	done chan struct{}
	err  error
}

// StartServe runs `bin serve` on a free port of 127.0.0.1 over the data
// folder data, with the environment env and in the folder dir ("" for the
// test's own). It waits up to a minute for the log line that says the server
// runs and, on a first start, reads the export lines. The test's cleanup
// kills the process if it still runs.
func StartServe(t testing.TB, bin, data string, env []string, dir string) *Serve {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", data)
	cmd.Env = env
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Serve{Cmd: cmd, Exports: map[string]string{}, Stdout: &SyncBuffer{}, Stderr: &SyncBuffer{}, done: make(chan struct{})}
	running := make(chan string, 1)
	var read sync.WaitGroup
	read.Add(2)
	go func() {
		defer read.Done()
		copyLines(s.Stderr, stderr, func(line string) {
			var rec struct{ Msg, Endpoint string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "mobius server is running" {
				select {
				case running <- rec.Endpoint:
				default:
				}
			}
		})
	}()
	go func() {
		defer read.Done()
		copyLines(s.Stdout, stdout, nil)
	}()
	go func() {
		read.Wait() // Wait closes the pipes: every read comes first
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			cmd.Process.Kill()
			<-s.done
		}
	})
	select {
	case s.Endpoint = <-running:
	case <-s.done:
		t.Fatalf("mobius serve exited: %v\nstderr: %s", s.err, s.Stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("mobius serve did not start\nstderr: %s", s.Stderr)
	}
	// The export lines are written before the log line that says it runs,
	// but may reach us after it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := s.Stdout.String()
		if strings.Count(out, "\n") >= 3 || time.Now().After(deadline) || !strings.Contains(s.Stderr.String(), "created the first API key") {
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok && strings.HasPrefix(line, "export ") {
					s.Exports[k] = v
				}
			}
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// copyLines copies r to w line by line, calling each (if not nil) with
// every line.
func copyLines(w io.Writer, r io.Reader, each func(line string)) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		w.Write([]byte(sc.Text() + "\n"))
		if each != nil {
			each(sc.Text())
		}
	}
}

// Done is closed once the process has ended and all its output is read.
func (s *Serve) Done() <-chan struct{} { return s.done }

// Stop sends sig and waits up to 30 seconds for the process to end; it
// returns how the process ended.
func (s *Serve) Stop(t testing.TB, sig os.Signal) error {
	t.Helper()
	if err := s.Cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
		return s.err
	case <-time.After(30 * time.Second):
		t.Fatal("mobius serve did not stop")
		return nil
	}
}
