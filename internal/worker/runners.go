package worker

import (
	"fmt"
	"time"
)

// runners run guests on goroutines that outlive a job.
//
// asynq runs every task on a goroutine of its own, which starts with a
// small stack; a guest run, through wazero and the host functions it
// calls, needs several times that, so every job used to grow (copy) its
// stack a few times over. A runner's stack stays grown from one run to the
// next. A run is handed to an idle runner, or to a new one when none is
// idle; a runner left idle for runnerLinger exits.
type runners struct {
	idle chan *runnerCall // unbuffered: idle runners receive calls from it
}

// runnerLinger is how long an idle runner waits for the next run.
const runnerLinger = 10 * time.Second

func newRunners() *runners { return &runners{idle: make(chan *runnerCall)} }

// runnerCall is one call of fn, with its error once done is closed.
type runnerCall struct {
	fn   func() error
	done chan struct{}
	err  error
}

// run calls fn on a runner and returns its error. A panic in fn, which
// asynq would have recovered on the job's own goroutine into a retryable
// failure, is returned as one.
func (r *runners) run(fn func() error) error {
	c := &runnerCall{fn: fn, done: make(chan struct{})}
	select {
	case r.idle <- c:
	default:
		go r.runner(c)
	}
	<-c.done
	return c.err
}

// runner runs c, then the calls handed to it, until it has been idle for
// runnerLinger.
func (r *runners) runner(c *runnerCall) {
	linger := time.NewTimer(runnerLinger)
	defer linger.Stop()
	for {
		c.call()
		close(c.done)
		linger.Reset(runnerLinger)
		select {
		case c = <-r.idle:
		case <-linger.C:
			return
		}
	}
}

func (c *runnerCall) call() {
	defer func() {
		if p := recover(); p != nil {
			c.err = fmt.Errorf("panic in a guest run: %v", p)
		}
	}()
	c.err = c.fn()
}
