package queue

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// An hour: a test that waits for a task behind a fallback this long passes
// only when the notification works.
const noFallback = time.Hour

func newRedis(tb testing.TB, opt asynq.RedisClientOpt) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: opt.Addr, DB: opt.DB})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// server is an asynq server with a Wakeup, as the worker builds it.
type server struct {
	srv    *asynq.Server
	wakeup *Wakeup
	done   chan string // ids of the tasks the handler ran
	seen   map[string]bool
}

func startServer(tb testing.TB, opt asynq.RedisClientOpt, queues map[string]int, strict bool, fallback time.Duration, h asynq.HandlerFunc) *server {
	tb.Helper()
	s := &server{done: make(chan string, 100), seen: map[string]bool{}}
	rdb := newRedis(tb, opt)
	var names []string
	for q := range queues {
		names = append(names, q)
	}
	s.wakeup = NewWakeup(rdb, WakeupConfig{Queues: names, Fallback: fallback})
	s.wakeup.Start(context.Background())
	s.srv = asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 2, Queues: queues, StrictPriority: strict,
		TaskCheckInterval: TaskCheckInterval, LogLevel: asynq.FatalLevel, ShutdownTimeout: time.Second,
	})
	if h == nil {
		h = func(context.Context, *asynq.Task) error { return nil }
	}
	err := s.srv.Start(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		defer func() { s.done <- id }()
		return h(ctx, t)
	}))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.stop)
	return s
}

func (s *server) stop() {
	s.wakeup.StopWaiting()
	s.srv.Shutdown()
	s.wakeup.Close()
}

// idle waits until the server waits for a notification.
func (s *server) idle(tb testing.TB, ctx context.Context) {
	tb.Helper()
	for s.wakeup.waiting.Load() == 0 {
		select {
		case <-ctx.Done():
			tb.Fatal("the server never went idle")
		case <-time.After(time.Millisecond):
		}
	}
}

// ran waits until the handler ran task id (tasks may finish in any order).
func (s *server) ran(tb testing.TB, ctx context.Context, id string) {
	tb.Helper()
	for !s.seen[id] {
		select {
		case <-ctx.Done():
			tb.Fatalf("task %s did not run: %v", id, ctx.Err())
		case got := <-s.done:
			s.seen[got] = true
		}
	}
}

var hello = Payload{Guest: "hello", Data: []byte("x")}

// TestWakeupRunsLoneTasks enqueues one task at a time on each of three
// queues, under weighted and under strict priorities, to a server that
// waits with an hour's fallback: every task runs at once.
func TestWakeupRunsLoneTasks(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprintf("strict=%v", strict), func(t *testing.T) {
			t.Parallel()
			opt := testenv.Redis(t)
			ctx := testenv.Context(t, time.Minute)
			s := startServer(t, opt, map[string]int{"critical": 6, "default": 3, "low": 1}, strict, noFallback, nil)
			q := NewClient(newRedis(t, opt))
			for i, queue := range []string{"low", "critical", "default", "low", "default", "critical"} {
				s.idle(t, ctx)
				info, err := q.Enqueue(ctx, TypeText, hello, asynq.Queue(queue))
				if err != nil {
					t.Fatal(err)
				}
				s.ran(t, ctx, info.ID)
				if i == 0 { // and through EnqueueMany, two queues at once
					s.idle(t, ctx)
					res, err := q.EnqueueMany(ctx, []Job{
						{Type: TypeText, Payload: hello, Options: []asynq.Option{asynq.Queue("default")}},
						{Type: TypeText, Payload: hello, Options: []asynq.Option{asynq.Queue("low")}},
					})
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range res {
						if r.Err != nil {
							t.Fatal(r.Err)
						}
						s.ran(t, ctx, r.Info.ID)
					}
				}
			}
		})
	}
}

// TestWakeupAsynqClientTasks: a task that goes through asynq's client
// within Enqueue (a unique one) wakes the server; one from asynq's own
// client, which wakes nobody, runs after the fallback interval.
func TestWakeupAsynqClientTasks(t *testing.T) {
	t.Parallel()
	task := asynq.NewTask(TypeText, []byte(`{"guest":"hello","data":""}`))
	for _, c := range []struct {
		name     string
		fallback time.Duration
		enqueue  func(context.Context, *redis.Client) (*asynq.TaskInfo, error)
	}{
		{"unique", noFallback, func(ctx context.Context, rdb *redis.Client) (*asynq.TaskInfo, error) {
			return NewClient(rdb).Enqueue(ctx, TypeText, hello, asynq.Unique(time.Minute))
		}},
		{"plain asynq", 50 * time.Millisecond, func(ctx context.Context, rdb *redis.Client) (*asynq.TaskInfo, error) {
			return asynq.NewClientFromRedisClient(rdb).EnqueueContext(ctx, task, asynq.Queue("other"))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			opt := testenv.Redis(t)
			ctx := testenv.Context(t, time.Minute)
			s := startServer(t, opt, map[string]int{"default": 1, "other": 1}, false, c.fallback, nil)
			s.idle(t, ctx)
			info, err := c.enqueue(ctx, newRedis(t, opt))
			if err != nil {
				t.Fatal(err)
			}
			s.ran(t, ctx, info.ID)
		})
	}
}

// TestWakeupShutdownDoesNotWaitOutTheFallback stops a server while it
// waits with an hour's fallback.
func TestWakeupShutdownDoesNotWaitOutTheFallback(t *testing.T) {
	t.Parallel()
	opt := testenv.Redis(t)
	ctx := testenv.Context(t, time.Minute)
	s := startServer(t, opt, map[string]int{"default": 1}, false, noFallback, nil)
	s.idle(t, ctx)
	stopped := make(chan struct{})
	go func() {
		s.stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		t.Fatal("Shutdown waited for the fallback")
	}
}

// TestDoneNotifications watches tasks that complete, fail for good, and
// complete without retention (deleted): each watch fires.
func TestDoneNotifications(t *testing.T) {
	t.Parallel()
	opt := testenv.Redis(t)
	ctx := testenv.Context(t, time.Minute)
	startServer(t, opt, map[string]int{"default": 1}, false, noFallback, func(_ context.Context, t *asynq.Task) error {
		if string(t.Payload()) == "fail" {
			return fmt.Errorf("no: %w", asynq.SkipRetry)
		}
		return nil
	})
	rdb := newRedis(t, opt)
	q := NewClient(rdb)
	done := NewCompletions(rdb)
	t.Cleanup(func() { _ = done.Close() })
	for _, c := range []struct {
		id      string
		payload string
		opts    []asynq.Option
	}{
		{"kept", "ok", []asynq.Option{asynq.Retention(time.Hour)}},
		{"failed", "fail", nil},
		{"deleted", "ok", nil},
	} {
		w := done.Watch(ctx, "default", c.id)
		select {
		case <-w.Ready():
		case <-ctx.Done():
			t.Fatalf("%s: never subscribed", c.id)
		}
		if _, err := q.EnqueueTask(ctx, asynq.NewTask(TypeText, []byte(c.payload)), append(c.opts, asynq.TaskID(c.id))...); err != nil {
			t.Fatal(err)
		}
		select {
		case <-w.Fired():
		case <-ctx.Done():
			t.Fatalf("%s: no notification", c.id)
		}
		w.Close()
	}
}

// TestCompletionsShareSubscriptions: two watches of one task share its
// subscription, both fire, and the last to close unsubscribes.
func TestCompletionsShareSubscriptions(t *testing.T) {
	t.Parallel()
	opt := testenv.Redis(t)
	ctx := testenv.Context(t, time.Minute)
	rdb := newRedis(t, opt)
	done := NewCompletions(rdb)
	defer done.Close()
	a, b := done.Watch(ctx, "q", "id"), done.Watch(ctx, "q", "id")
	for _, w := range []*Watch{a, b} {
		select {
		case <-w.Ready():
		case <-ctx.Done():
			t.Fatal("never subscribed")
		}
	}
	if err := rdb.Publish(ctx, DoneChannel("q", "id"), "").Err(); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*Watch{a, b} {
		select {
		case <-w.Fired():
		case <-ctx.Done():
			t.Fatal("no notification")
		}
	}
	a.Close()
	a.Close()
	subscribers := func() int64 {
		n, err := rdb.PubSubNumSub(ctx, DoneChannel("q", "id")).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n[DoneChannel("q", "id")]
	}
	if n := subscribers(); n != 1 {
		t.Fatalf("%d subscribers with one watch left, want 1", n)
	}
	b.Close()
	for subscribers() != 0 {
		select {
		case <-ctx.Done():
			t.Fatal("still subscribed after the last watch closed")
		case <-time.After(time.Millisecond):
		}
	}
}
