package lambdainvoke

import (
	"time"
)

// workers runs invocations on goroutines that outlive them. Each
// invocation needs a goroutine of its own (the handler answers at the
// timeout even if the function goes on), and a new goroutine starts with
// a small stack that grows, copied each time, through the function's
// first deep calls (JSON decoding): under load that was about a tenth of
// a resolve's CPU. A worker keeps its grown stack from one invocation to
// the next. Workers are made as invocations need them, never more than
// are running at once, and one idle for workerIdle ends.
type workers struct {
	jobs chan func() // unbuffered: a send succeeds only to an idle worker
	idle time.Duration
}

// workerIdle is how long an idle worker waits for the next invocation.
const workerIdle = 30 * time.Second

func newWorkers(idle time.Duration) *workers { return &workers{jobs: make(chan func()), idle: idle} }

// run runs f on an idle worker, or on a new one if none is idle.
func (p *workers) run(f func()) {
	select {
	case p.jobs <- f:
	default:
		go p.work(f)
	}
}

func (p *workers) work(f func()) {
	idle := time.NewTimer(p.idle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(p.idle)
		select {
		case f = <-p.jobs:
		case <-idle.C:
			return
		}
	}
}
