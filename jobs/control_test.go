package jobs_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// TestJobControl: State, Cancel, Retry and Remove on real Redis and an
// asynq server: a waiting job canceled and run again, a running job
// canceled through its worker, a running job that cannot be removed, and
// the refusals for jobs in the wrong state or missing.
func TestJobControl(t *testing.T) {
	t.Parallel()
	opt := testenv.Redis(t)
	c := newClient(t, opt)
	ctx := testenv.Context(t, 30*time.Second)

	if _, err := c.State(ctx, "default", "nope"); !errors.Is(err, jobs.ErrJobNotFound) {
		t.Fatalf("State of a missing job: %v", err)
	}
	for name, f := range map[string]func(context.Context, string, string) error{"Cancel": c.Cancel, "Retry": c.Retry, "Remove": c.Remove} {
		if err := f(ctx, "default", "nope"); !errors.Is(err, jobs.ErrJobNotFound) {
			t.Errorf("%s of a missing job: %v, want ErrJobNotFound", name, err)
		}
	}

	// A waiting job (nobody serves "later" yet): canceled, then run again.
	waiting, err := c.EnqueueText(ctx, inline, jobs.Queue("later"), jobs.Retention(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.State(ctx, "later", waiting.ID)
	if err != nil || st.State != "pending" || st.MaxRetry != 25 || st.Type != jobs.TypeText {
		t.Fatalf("State of a new job: %+v, %v", st, err)
	}
	if err := c.Retry(ctx, "later", waiting.ID); err == nil || !strings.Contains(err.Error(), "pending") {
		t.Errorf("Retry of a pending job: %v, want a refusal naming its state", err)
	}
	if err := c.Cancel(ctx, "later", waiting.ID); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.State(ctx, "later", waiting.ID); st.State != "archived" {
		t.Fatalf("after Cancel: %+v, want archived", st)
	}
	if err := c.Cancel(ctx, "later", waiting.ID); err == nil || !strings.Contains(err.Error(), "archived already") {
		t.Errorf("a second Cancel: %v, want a refusal", err)
	}
	var failed *jobs.JobFailedError
	if _, err := c.Result(ctx, "later", waiting.ID); !errors.As(err, &failed) || !errors.Is(err, jobs.ErrJobFailed) || failed.ID != waiting.ID {
		t.Errorf("Result of the canceled job: %v, want a *JobFailedError", err)
	}
	if err := c.Retry(ctx, "later", waiting.ID); err != nil {
		t.Fatal(err)
	}
	startWorker(t, opt, "later", echoResult)
	if _, err := c.Wait(ctx, "later", waiting.ID); err != nil {
		t.Fatalf("the retried job: %v", err)
	}
	if st, _ := c.State(ctx, "later", waiting.ID); st.State != "completed" || st.ResultBytes == 0 || st.CompletedAt.IsZero() {
		t.Errorf("the retried job: %+v, want completed with its result", st)
	}
	if err := c.Remove(ctx, "later", waiting.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.State(ctx, "later", waiting.ID); !errors.Is(err, jobs.ErrJobNotFound) {
		t.Errorf("after Remove: %v, want ErrJobNotFound", err)
	}

	// A running job: Remove refuses it, Cancel stops it through its worker.
	started := make(chan struct{}, 1)
	startWorker(t, opt, "slow", func(ctx context.Context, _ *asynq.Task) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	})
	running, err := c.EnqueueText(ctx, inline, jobs.Queue("slow"))
	if err != nil {
		t.Fatal(err)
	}
	<-started
	if err := c.Remove(ctx, "slow", running.ID); !errors.Is(err, jobs.ErrJobRunning) {
		t.Errorf("Remove of a running job: %v, want ErrJobRunning", err)
	}
	if err := c.Cancel(ctx, "slow", running.ID); err != nil {
		t.Fatal(err)
	}
	st, err = c.State(ctx, "slow", running.ID)
	if err != nil || st.State != "archived" || !strings.Contains(st.LastError, "context canceled") {
		t.Fatalf("after Cancel of a running job: %+v, %v; want archived, canceled", st, err)
	}
	select {
	case <-started:
		t.Error("the canceled job ran again")
	case <-time.After(1500 * time.Millisecond):
	}
}

// TestNewClientFromRedisClient: a Client on the caller's go-redis
// connection enqueues and reads jobs, and its Close leaves the connection
// open.
func TestNewClientFromRedisClient(t *testing.T) {
	t.Parallel()
	opt := testenv.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: opt.Addr, DB: opt.DB})
	defer rdb.Close()
	ctx := testenv.Context(t, 10*time.Second)
	c := jobs.NewClientFromRedisClient(rdb)
	info, err := c.EnqueueText(ctx, inline, jobs.Queue("shared"))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.State(ctx, "shared", info.ID); err != nil || st.State != "pending" {
		t.Fatalf("State: %+v, %v", st, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("the caller's connection after Close: %v", err)
	}
}
