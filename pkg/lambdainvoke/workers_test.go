package lambdainvoke

import (
	"bytes"
	"runtime"
	"testing"
	"time"
)

// goroutineID is the number runtime.Stack gives the calling goroutine.
func goroutineID() string {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	f := bytes.Fields(b)
	return string(f[1])
}

func TestWorkersReuseAnIdleWorker(t *testing.T) {
	p := newWorkers(time.Minute)
	ids := make(chan string, 1)
	p.run(func() { ids <- goroutineID() })
	first := <-ids
	// The worker sends, then loops back to wait for a job; a run that
	// comes before it waits starts another worker, so retry until the
	// idle one takes it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.run(func() { ids <- goroutineID() })
		if <-ids == first {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no invocation ran on the worker left idle by the first")
		}
	}
}

func TestWorkersStartAnotherWhenAllAreBusy(t *testing.T) {
	p := newWorkers(time.Minute)
	release := make(chan struct{})
	defer close(release)
	p.run(func() { <-release })
	ran := make(chan struct{})
	p.run(func() { close(ran) })
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("an invocation waited for a busy worker")
	}
}

func TestIdleWorkersEnd(t *testing.T) {
	base := runtime.NumGoroutine()
	p := newWorkers(time.Millisecond)
	done := make(chan struct{}, 4)
	release := make(chan struct{})
	for range 4 {
		p.run(func() { <-release; done <- struct{}{} })
	}
	close(release)
	for range 4 {
		<-done
	}
	for i := 0; runtime.NumGoroutine() > base; i++ {
		if i == 1000 {
			t.Fatalf("%d goroutines, %d before: idle workers did not end", runtime.NumGoroutine(), base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
