package jobs_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/internal/testworker"
	"github.com/wasmjobs/wasmjobs/internal/worker"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// startHello starts a wasmjobs worker with the hello guest that polls
// Redis every poll at the most.
func startHello(tb testing.TB, opt asynq.RedisClientOpt, poll time.Duration) {
	tb.Helper()
	store, _ := testenv.Store(tb)
	testworker.Start(tb, worker.Config{Redis: opt, Store: store, Concurrency: 2, PollInterval: poll},
		map[string][]byte{"hello": guests.Hello})
}

// TestLoneJobsNeedNoPolling runs lone jobs, one after the other, with the
// worker's and the client's polls an hour apart: each completes only
// because the enqueue woke the worker and the worker's notification woke
// the waiter.
func TestLoneJobsNeedNoPolling(t *testing.T) {
	t.Parallel()
	opt := testenv.Redis(t)
	startHello(t, opt, time.Hour)
	c := newClient(t, opt)
	jobs.SetWaitPoll(c, time.Hour)
	ctx := testenv.Context(t, time.Minute)
	for _, name := range []string{"Ada", "Grace", "Edsger"} {
		res, err := c.Run(ctx, jobs.TypeText, jobs.Payload{Guest: "hello", Data: []byte(name)})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"greeting":"Hello, ` + name + `!"}`; strings.TrimSpace(string(res)) != want {
			t.Errorf("result %q, want %s", res, want)
		}
	}
	// A job that fails is announced too.
	_, err := c.Run(ctx, jobs.TypeText, jobs.Payload{Guest: "nosuchguest", Data: []byte("x")})
	if !errors.Is(err, jobs.ErrJobFailed) {
		t.Errorf("Run of an unknown guest: %v, want ErrJobFailed", err)
	}
	// EnqueueMany wakes the worker once for many jobs.
	res, err := c.EnqueueMany(ctx, []jobs.Job{
		{Type: jobs.TypeText, Payload: jobs.Payload{Guest: "hello", Data: []byte("a")}},
		{Type: jobs.TypeText, Payload: jobs.Payload{Guest: "hello", Data: []byte("b")}},
		{Type: jobs.TypeText, Payload: jobs.Payload{Guest: "hello", Data: []byte("c")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if _, err := c.Wait(ctx, r.Info.Queue, r.Info.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPlainAsynqJobRunsByFallback: a job enqueued by asynq's own client
// wakes no worker; the worker's poll finds it, and the waiter still hears
// of its completion.
func TestPlainAsynqJobRunsByFallback(t *testing.T) {
	t.Parallel()
	opt := testenv.Redis(t)
	startHello(t, opt, 100*time.Millisecond)
	c := newClient(t, opt)
	jobs.SetWaitPoll(c, time.Hour)
	ctx := testenv.Context(t, time.Minute)
	task, opts, err := jobs.NewTask(jobs.TypeText, jobs.Payload{Guest: "hello", Data: []byte("asynq")})
	if err != nil {
		t.Fatal(err)
	}
	ac := asynq.NewClient(opt)
	defer ac.Close()
	info, err := ac.EnqueueContext(ctx, task, opts...)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Wait(ctx, info.Queue, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"greeting":"Hello, asynq!"}`; strings.TrimSpace(string(res)) != want {
		t.Errorf("result %q, want %s", res, want)
	}
}
