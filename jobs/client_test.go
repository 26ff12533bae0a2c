package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// newClient returns a Client on opt, closed when the test ends.
func newClient(tb testing.TB, opt asynq.RedisClientOpt) *jobs.Client {
	tb.Helper()
	c, err := jobs.NewClient(opt)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// newInspector returns an asynq Inspector on opt, closed when the test ends.
func newInspector(tb testing.TB, opt asynq.RedisClientOpt) *asynq.Inspector {
	tb.Helper()
	in := asynq.NewInspector(opt)
	tb.Cleanup(func() { _ = in.Close() })
	return in
}

// startWorker runs an asynq server processing queue with h until the test
// ends: a stand-in for the wasmjobs worker, with its wake-ups and
// notifications.
func startWorker(tb testing.TB, opt asynq.RedisClientOpt, q string, h asynq.HandlerFunc) {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: opt.Addr, DB: opt.DB})
	wakeup := queue.NewWakeup(rdb, queue.WakeupConfig{Queues: []string{q}, Fallback: 50 * time.Millisecond})
	wakeup.Start(context.Background())
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:       1,
		Queues:            map[string]int{q: 1},
		TaskCheckInterval: queue.TaskCheckInterval,
		LogLevel:          asynq.FatalLevel,
		ShutdownTimeout:   time.Second,
	})
	if err := srv.Start(h); err != nil {
		tb.Fatalf("start asynq server: %v", err)
	}
	tb.Cleanup(func() {
		wakeup.StopWaiting()
		srv.Shutdown()
		wakeup.Close()
		_ = rdb.Close()
	})
}

// echoResult writes "done:" and the task's payload as the task's result.
func echoResult(_ context.Context, t *asynq.Task) error {
	_, err := t.ResultWriter().Write(append([]byte("done:"), t.Payload()...))
	return err
}

var inline = jobs.Payload{Guest: "hello", Data: []byte("world")}

// Validation happens before the Client touches Redis, so a bad payload is
// reported as such even when Redis is unreachable.
func TestEnqueueValidatesBeforeRedis(t *testing.T) {
	t.Parallel()
	c := newClient(t, asynq.RedisClientOpt{Addr: "127.0.0.1:1", DialTimeout: 2 * time.Second})
	ctx := testenv.Context(t, 5*time.Second)

	start := time.Now()
	_, err := c.EnqueueText(ctx, jobs.Payload{Guest: "", Data: []byte("x")})
	if !errors.Is(err, jobs.ErrInvalidPayload) {
		t.Fatalf("EnqueueText with an empty guest: %v, want ErrInvalidPayload", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("validation error took %v: did it wait on Redis?", d)
	}
	_, err = c.Enqueue(ctx, "wasm:bogus", inline)
	if !errors.Is(err, jobs.ErrInvalidPayload) {
		t.Errorf("Enqueue with an unknown type: %v, want ErrInvalidPayload", err)
	}
	_, err = c.Run(ctx, jobs.TypeImage, jobs.Payload{Guest: "ocr"})
	if !errors.Is(err, jobs.ErrInvalidPayload) {
		t.Errorf("Run without input: %v, want ErrInvalidPayload", err)
	}

	// A valid job does reach for Redis, and fails for want of it.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = c.EnqueueText(short, inline)
	if err == nil || errors.Is(err, jobs.ErrInvalidPayload) {
		t.Errorf("EnqueueText of a valid job to a dead Redis: %v, want a connection error", err)
	}
}

func TestResultCanceledContext(t *testing.T) {
	t.Parallel()
	c := newClient(t, asynq.RedisClientOpt{Addr: "127.0.0.1:1"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Result(ctx, "default", "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("Result with a canceled context: %v, want context.Canceled", err)
	}
}

func TestEnqueueOptions(t *testing.T) {
	t.Parallel()
	opt := testenv.Redis(t)
	c := newClient(t, opt)
	in := newInspector(t, opt)
	ctx := testenv.Context(t, 10*time.Second)
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	p := jobs.Payload{Guest: "wordcount", Input: "s3://data/a.txt", Params: map[string]string{"lang": "en"}}
	opts := []jobs.Option{jobs.Queue("q1"), jobs.MaxRetry(3), jobs.Timeout(10 * time.Second), jobs.TaskID("fixed-id")}
	info, err := c.EnqueueText(ctx, p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != "fixed-id" || info.Queue != "q1" {
		t.Errorf("enqueued %s/%s, want q1/fixed-id", info.Queue, info.ID)
	}

	got, err := in.GetTaskInfo("q1", "fixed-id")
	if err != nil {
		t.Fatal(err)
	}
	if got.Queue != "q1" || got.Type != jobs.TypeText || got.MaxRetry != 3 || got.Timeout != 10*time.Second ||
		got.State != asynq.TaskStatePending {
		t.Errorf("in Redis: queue %q type %q max retry %d timeout %v state %v; want q1 %s 3 10s pending",
			got.Queue, got.Type, got.MaxRetry, got.Timeout, got.State, jobs.TypeText)
	}
	decoded, err := jobs.DecodePayload(got.Payload)
	if err != nil {
		t.Fatalf("payload in Redis: %v", err)
	}
	if !payloadsEqual(decoded, &p) {
		t.Errorf("payload in Redis decodes to %+v, want %+v", decoded, p)
	}

	t.Run("same task id", func(t *testing.T) {
		_, err := c.EnqueueText(ctx, p, opts...)
		if !errors.Is(err, jobs.ErrTaskIDConflict) {
			t.Errorf("second enqueue with TaskID fixed-id: %v, want ErrTaskIDConflict", err)
		}
	})
	t.Run("unique", func(t *testing.T) {
		u := jobs.Payload{Guest: "wordcount", Input: "s3://data/unique.txt"}
		if _, err := c.EnqueueText(ctx, u, jobs.Unique(time.Minute)); err != nil {
			t.Fatal(err)
		}
		_, err := c.EnqueueText(ctx, u, jobs.Unique(time.Minute))
		if !errors.Is(err, jobs.ErrDuplicateTask) {
			t.Errorf("second unique enqueue: %v, want ErrDuplicateTask", err)
		}
		// A different payload is a different job.
		u.Input = "s3://data/unique-2.txt"
		if _, err := c.EnqueueText(ctx, u, jobs.Unique(time.Minute)); err != nil {
			t.Errorf("unique enqueue of another payload: %v", err)
		}
	})
	t.Run("process in", func(t *testing.T) {
		info, err := c.EnqueueImage(ctx, jobs.Payload{Guest: "ocr", Input: "s3://scans/1.png"}, jobs.ProcessIn(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		got, err := in.GetTaskInfo(info.Queue, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != asynq.TaskStateScheduled || got.Type != jobs.TypeImage || got.Queue != "default" {
			t.Errorf("state %v type %q queue %q, want scheduled %s default", got.State, got.Type, got.Queue, jobs.TypeImage)
		}
		if d := time.Until(got.NextProcessAt); d < 59*time.Minute || d > time.Hour {
			t.Errorf("next process at in %v, want about an hour", d)
		}
	})
}

func TestEnqueueRetention(t *testing.T) {
	t.Parallel()
	opt := testenv.Redis(t)
	c := newClient(t, opt)
	in := newInspector(t, opt)
	ctx := testenv.Context(t, 10*time.Second)

	tests := []struct {
		name string
		p    jobs.Payload
		opts []jobs.Option
		want time.Duration
	}{
		{name: "inline without output", p: inline, want: jobs.DefaultResultRetention},
		{name: "inline with explicit retention", p: inline, opts: []jobs.Option{jobs.Retention(time.Minute)}, want: time.Minute},
		{name: "inline with output", p: jobs.Payload{Guest: "hello", Data: []byte("x"), Output: "s3://out/x.json"}, want: 0},
		{name: "s3 input", p: jobs.Payload{Guest: "wordcount", Input: "s3://data/a.txt"}, want: 0},
	}
	for _, tt := range tests {
		info, err := c.EnqueueText(ctx, tt.p, tt.opts...)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, err := in.GetTaskInfo(info.Queue, info.ID)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got.Retention != tt.want {
			t.Errorf("%s: retention %v, want %v", tt.name, got.Retention, tt.want)
		}
	}
}

func TestResult(t *testing.T) {
	t.Parallel()
	opt := testenv.Redis(t)
	c := newClient(t, opt)
	ctx := testenv.Context(t, 10*time.Second)

	t.Run("not found", func(t *testing.T) {
		if _, err := c.Result(ctx, "default", "no-such-id"); !errors.Is(err, jobs.ErrJobNotFound) {
			t.Errorf("unknown queue: %v, want ErrJobNotFound", err)
		}
		if _, err := c.EnqueueText(ctx, inline, jobs.Queue("known")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Result(ctx, "known", "no-such-id"); !errors.Is(err, jobs.ErrJobNotFound) {
			t.Errorf("unknown id: %v, want ErrJobNotFound", err)
		}
	})

	t.Run("pending", func(t *testing.T) {
		info, err := c.EnqueueText(ctx, inline, jobs.Queue("idle"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Result(ctx, info.Queue, info.ID); !errors.Is(err, jobs.ErrNotDone) {
			t.Errorf("pending job: %v, want ErrNotDone", err)
		}
	})

	t.Run("completed and archived", func(t *testing.T) {
		startWorker(t, opt, "work", func(ctx context.Context, task *asynq.Task) error {
			p, err := jobs.DecodePayload(task.Payload())
			if err != nil {
				return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
			}
			if string(p.Data) == "fail" {
				return fmt.Errorf("nope: %w", asynq.SkipRetry)
			}
			return echoResult(ctx, task)
		})
		ok, err := c.EnqueueText(ctx, inline, jobs.Queue("work"))
		if err != nil {
			t.Fatal(err)
		}
		bad, err := c.EnqueueText(ctx, jobs.Payload{Guest: "hello", Data: []byte("fail")}, jobs.Queue("work"))
		if err != nil {
			t.Fatal(err)
		}

		res, err := c.Wait(ctx, ok.Queue, ok.ID)
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
		want := append([]byte("done:"), ok.Payload...)
		if !bytes.Equal(res, want) {
			t.Errorf("result %q, want %q", res, want)
		}
		res, err = c.Result(ctx, ok.Queue, ok.ID)
		if err != nil || !bytes.Equal(res, want) {
			t.Errorf("Result after completion = %q, %v; want %q", res, err, want)
		}

		_, err = c.Wait(ctx, bad.Queue, bad.ID)
		if !errors.Is(err, jobs.ErrJobFailed) || !strings.Contains(err.Error(), "nope") {
			t.Errorf("archived job: %v, want ErrJobFailed with the handler's message", err)
		}
		_, err = c.Result(ctx, bad.Queue, bad.ID)
		if !errors.Is(err, jobs.ErrJobFailed) || !strings.Contains(err.Error(), "nope: "+asynq.SkipRetry.Error()) {
			t.Errorf("Result of the archived job: %v, want ErrJobFailed with the handler's message", err)
		}
	})
}

func TestRun(t *testing.T) {
	t.Parallel()
	opt := testenv.Redis(t)
	c := newClient(t, opt)
	startWorker(t, opt, "work", echoResult)

	t.Run("inline", func(t *testing.T) {
		ctx := testenv.Context(t, 5*time.Second)
		res, err := c.Run(ctx, jobs.TypeText, inline, jobs.Queue("work"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(res), "done:") || !strings.Contains(string(res), `"guest":"hello"`) {
			t.Errorf("result %q", res)
		}
	})

	// Without retention asynq deletes a completed job at once; Run must keep
	// it long enough to read the result, also for jobs that would get none.
	t.Run("s3 input", func(t *testing.T) {
		ctx := testenv.Context(t, 5*time.Second)
		p := jobs.Payload{Guest: "wordcount", Input: "s3://data/a.txt"}
		res, err := c.Run(ctx, jobs.TypeText, p, jobs.Queue("work"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(res), `"input":"s3://data/a.txt"`) {
			t.Errorf("result %q", res)
		}
	})

	t.Run("context ends first", func(t *testing.T) {
		ctx := testenv.Context(t, 300*time.Millisecond)
		start := time.Now()
		_, err := c.Run(ctx, jobs.TypeText, inline, jobs.Queue("nobody-works-here"))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Run on an unserved queue: %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Run gave up after %v, want about 300ms", d)
		}
	})
}
