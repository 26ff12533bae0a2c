package queue

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Wakeup spares an asynq server's idle polling and tells waiters when its
// tasks are done, without changing asynq: it is a go-redis hook on the
// client the server runs on (asynq.NewServerFromRedisClient), which
// recognises asynq's own script calls (see parseAsynqCall).
//
//   - When a round of dequeues found every queue empty, the next dequeue
//     waits for a notification on a queue's WakeChannel (producers publish
//     one with each enqueue), for the fallback interval, or for
//     StopWaiting, whichever comes first. The server's own
//     TaskCheckInterval can then be tiny (see TaskCheckInterval).
//   - After a task reaches a final state, its DoneChannel is published, and
//     after a requeue or a forward of due tasks, the queue's WakeChannel.
//     A background publisher sends all notifications pending at once in one
//     pipeline, so that a busy server pays no round trip per task.
//
// # Notes
//
// Tasks that arrive without a notification (a plain asynq client, a
// dashboard's "run now", a queue unpaused) wait at most the fallback
// interval. No notification is lost to a race: a wake-up is drained only
// before the first dequeue of a round, so one published after any queue
// was found empty stays pending; and every (re)subscription counts as a
// wake-up, since notifications published while the subscription was down
// are lost.
type Wakeup struct {
	rdb      redis.UniversalClient
	queues   map[string]bool
	fallback time.Duration
	pub      *publisher

	wake      chan struct{} // one pending wake-up at most
	stop      chan struct{} // closed by StopWaiting
	stopOnce  sync.Once
	closeOnce sync.Once

	mu    sync.Mutex
	empty map[string]bool // queues found empty since the last task or wait

	waiting atomic.Int32 // dequeues waiting now, for tests

	ps       *redis.PubSub
	received chan struct{} // closed when the subscription's reader ends
}

// TaskCheckInterval is the asynq.Config.TaskCheckInterval of a server with
// a Wakeup. asynq sleeps about that long after a round of dequeues found
// nothing, before the next round, whose first dequeue then waits in the
// hook: so it is the delay a task may see that arrives just after such a
// round, and it should be short. Polling it is not: an idle server does
// one round per wake-up or fallback interval.
const TaskCheckInterval = 100 * time.Microsecond

// WakeupConfig configures a Wakeup.
type WakeupConfig struct {
	// Queues are the server's queues. Required.
	Queues []string
	// Fallback bounds how long an idle server waits for a notification
	// before it looks for work anyway. Defaults to 1 s.
	Fallback time.Duration
	// Logger reports failures to publish. Defaults to slog.Default().
	Logger *slog.Logger
}

// NewWakeup adds a Wakeup's hook to rdb, which should serve one asynq
// server and nothing else. Start it before the server, StopWaiting before
// the server's Shutdown, and Close after.
func NewWakeup(rdb redis.UniversalClient, cfg WakeupConfig) *Wakeup {
	if cfg.Fallback <= 0 {
		cfg.Fallback = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	w := &Wakeup{
		rdb:      rdb,
		queues:   make(map[string]bool, len(cfg.Queues)),
		fallback: cfg.Fallback,
		pub:      newPublisher(rdb, cfg.Logger),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		empty:    make(map[string]bool, len(cfg.Queues)),
		received: make(chan struct{}),
	}
	for _, q := range cfg.Queues {
		w.queues[q] = true
	}
	rdb.AddHook(w)
	return w
}

var _ redis.Hook = (*Wakeup)(nil)

// Start subscribes to the queues' wake-up channels and starts the
// publisher. The subscription (re)connects in the background.
func (w *Wakeup) Start(ctx context.Context) {
	channels := make([]string, 0, len(w.queues))
	for q := range w.queues {
		channels = append(channels, WakeChannel(q))
	}
	w.ps = w.rdb.Subscribe(ctx, channels...)
	msgs := w.ps.ChannelWithSubscriptions()
	go func() {
		defer close(w.received)
		for range msgs { // a message, or a (re)subscription
			w.poke()
		}
	}()
	go w.pub.run()
}

// StopWaiting ends the current wait and all later ones, so that the server
// stops at once. Safe to call twice.
func (w *Wakeup) StopWaiting() { w.stopOnce.Do(func() { close(w.stop) }) }

// Close publishes what is pending and closes the subscription; call it
// after the server's Shutdown. It does not close rdb. Safe to call twice.
func (w *Wakeup) Close() {
	w.StopWaiting()
	w.closeOnce.Do(func() {
		if w.ps == nil { // never started
			return
		}
		w.pub.close()
		_ = w.ps.Close()
		<-w.received
	})
}

func (w *Wakeup) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// DialHook implements redis.Hook.
func (w *Wakeup) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessPipelineHook implements redis.Hook.
func (w *Wakeup) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// ProcessHook implements redis.Hook: it waits before a dequeue when the
// last round found nothing, and notifies after a task changed state.
func (w *Wakeup) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		call, ok := parseAsynqCall(cmd.Args())
		if !ok || !w.queues[call.queue] {
			return next(ctx, cmd)
		}
		if call.kind == callDequeue {
			w.beforeDequeue()
		}
		err := next(ctx, cmd)
		switch call.kind {
		case callDequeue:
			w.afterDequeue(call.queue, err)
		case callFinal:
			if err == nil {
				w.pub.publish(DoneChannel(call.queue, call.task))
			}
		case callToPending:
			if err == nil {
				w.pub.publish(WakeChannel(call.queue))
			}
		case callForward:
			if c, ok := cmd.(*redis.Cmd); ok {
				if n, err := c.Int64(); err == nil && n > 0 {
					w.pub.publish(WakeChannel(call.queue))
				}
			}
		}
		return err
	}
}

// beforeDequeue waits when every queue was found empty since the last
// task or wait; otherwise, before the first dequeue of a round, it drops a
// pending wake-up, which that round answers.
func (w *Wakeup) beforeDequeue() {
	w.mu.Lock()
	idle := len(w.empty) == len(w.queues)
	first := len(w.empty) == 0
	if idle {
		clear(w.empty)
	}
	w.mu.Unlock()
	switch {
	case idle:
		w.waiting.Add(1)
		defer w.waiting.Add(-1)
		t := time.NewTimer(w.fallback)
		defer t.Stop()
		select {
		case <-w.wake:
		case <-t.C:
		case <-w.stop:
		}
	case first:
		select {
		case <-w.wake:
		default:
		}
	}
}

func (w *Wakeup) afterDequeue(q string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case errors.Is(err, redis.Nil): // empty or paused
		w.empty[q] = true
	case err == nil:
		clear(w.empty)
	}
}

// publisher publishes notifications from a goroutine of its own, all that
// are pending in one pipeline: the hook that asks for one never waits.
type publisher struct {
	rdb  redis.UniversalClient
	log  *slog.Logger
	kick chan struct{}
	quit chan struct{}
	done chan struct{}

	mu      sync.Mutex
	pending []string
	closed  bool
	failing bool // the last pipeline failed; logged once until one succeeds
}

func newPublisher(rdb redis.UniversalClient, log *slog.Logger) *publisher {
	return &publisher{rdb: rdb, log: log, kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

func (p *publisher) publish(channel string) {
	p.mu.Lock()
	if !p.closed {
		p.pending = append(p.pending, channel)
	}
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *publisher) run() {
	defer close(p.done)
	for {
		select {
		case <-p.kick:
			p.flush()
		case <-p.quit:
			p.flush()
			return
		}
	}
}

// close publishes what is pending and stops the running publisher.
func (p *publisher) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	close(p.quit)
	<-p.done
}

func (p *publisher) flush() {
	p.mu.Lock()
	batch := p.pending
	p.pending = nil
	p.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pipe := p.rdb.Pipeline()
	seen := make(map[string]bool, len(batch))
	for _, ch := range batch {
		if !seen[ch] {
			seen[ch] = true
			pipe.Publish(ctx, ch, "")
		}
	}
	_, err := pipe.Exec(ctx)
	switch {
	case err != nil && !p.failing:
		p.failing = true
		p.log.Warn("queue: publishing notifications failed; waiters fall back to polling", "err", err)
	case err == nil && p.failing:
		p.failing = false
		p.log.Info("queue: publishing notifications again")
	}
}
