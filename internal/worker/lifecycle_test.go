package worker_test

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/internal/worker"
)

func TestConfigWithDefaults(t *testing.T) {
	t.Parallel()
	c := worker.Config{}.WithDefaults()
	if c.GuestBucket != s3url.DefaultGuestBucket || c.Concurrency != 4*runtime.NumCPU() ||
		len(c.Queues) != 1 || c.Queues["default"] != 1 || c.ShutdownTimeout != 30*time.Second ||
		c.PollInterval != time.Second || c.Logger == nil {
		t.Fatalf("defaults: %+v", c)
	}
	set := worker.Config{GuestBucket: "g", Concurrency: 3, Queues: map[string]int{"a": 2}, ShutdownTimeout: time.Second, PollInterval: time.Millisecond}.WithDefaults()
	if set.GuestBucket != "g" || set.Concurrency != 3 || set.Queues["a"] != 2 || set.ShutdownTimeout != time.Second || set.PollInterval != time.Millisecond {
		t.Fatalf("set fields were replaced: %+v", set)
	}
}

// TestGuestSlots: by default 4 × CPUs jobs run at once, 2 × CPUs of them
// in guests; a configured concurrency sets both.
func TestGuestSlots(t *testing.T) {
	t.Parallel()
	store, err := blob.New(blob.Config{Endpoint: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ concurrency, want int }{{0, 2 * runtime.NumCPU()}, {3, 3}, {64, 64}} {
		w, err := worker.New(worker.Config{Redis: asynq.RedisClientOpt{Addr: "127.0.0.1:1"}, Store: store, Concurrency: tt.concurrency})
		if err != nil {
			t.Fatal(err)
		}
		if got := w.GuestSlots(); got != tt.want {
			t.Errorf("Concurrency %d: %d guest slots, want %d", tt.concurrency, got, tt.want)
		}
		w.Shutdown()
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	store, err := blob.New(blob.Config{Endpoint: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	redis := asynq.RedisClientOpt{Addr: "127.0.0.1:1"}
	for name, cfg := range map[string]worker.Config{
		"no Redis":   {Store: store},
		"no Store":   {Redis: redis},
		"bad weight": {Redis: redis, Store: store, Queues: map[string]int{"q": 0}},
		"no name":    {Redis: redis, Store: store, Queues: map[string]int{"": 1}},
	} {
		if w, err := worker.New(cfg); err == nil {
			w.Shutdown()
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// closingRecorder is batch handling that must be closed once, after the
// server stopped.
type closingRecorder struct {
	closed atomic.Int32
}

func (r *closingRecorder) Canceled(context.Context, string) (bool, error) { return false, nil }
func (r *closingRecorder) Finished(context.Context, string, batch.Item) error {
	return nil
}
func (r *closingRecorder) ProcessTask(context.Context, *asynq.Task) error { return nil }
func (r *closingRecorder) Close() error                                   { r.closed.Add(1); return nil }

// TestShutdown: Shutdown is safe twice, on a worker never started and on a
// running one, closes batch handling that is an io.Closer once, and a
// shut-down worker does not start again; Run returns when its context ends
// or Shutdown is called.
func TestShutdown(t *testing.T) {
	store, _ := testenv.Store(t)
	redis := testenv.Redis(t)

	rec := &closingRecorder{}
	idle, err := worker.New(worker.Config{Redis: redis, Store: store, BatchRecorder: rec, BatchPlanner: rec})
	if err != nil {
		t.Fatal(err)
	}
	idle.Shutdown()
	idle.Shutdown()
	if n := rec.closed.Load(); n != 1 {
		t.Fatalf("batch handling closed %d times, want once", n)
	}
	if err := idle.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "shut down") {
		t.Fatalf("Start after Shutdown: %v", err)
	}

	w, err := worker.New(worker.Config{Redis: redis, Store: store, Concurrency: 1, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context ended")
	}
	w.Shutdown()

	// Shutdown from elsewhere ends Run too.
	w, err = worker.New(worker.Config{Redis: redis, Store: store, Concurrency: 1, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- w.Run(context.Background()) }()
	time.Sleep(200 * time.Millisecond)
	w.Shutdown()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after Shutdown")
	}
}
