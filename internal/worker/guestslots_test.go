package worker_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/tetratelabs/wazero"

	"github.com/wasmjobs/wasmjobs/internal/hostile"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/internal/testworker"
	"github.com/wasmjobs/wasmjobs/internal/worker"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// TestGuestTimeoutBeforeJobDeadlineIsArchived: a job whose asynq timeout is
// shorter than the guest timeout ends archived as a guest timeout, not
// retried because asynq's own deadline passed first.
func TestGuestTimeoutBeforeJobDeadlineIsArchived(t *testing.T) {
	var loop []byte
	for _, g := range hostile.Load(t) {
		if g.Name == "infinite-loop" {
			loop = g.Wasm
		}
	}
	e := newEnv(t, envConfig{concurrency: 2, worker: worker.Config{GuestTimeout: time.Minute}})
	ctx := testenv.Context(t, time.Minute)
	if _, err := e.guests.Push(ctx, "loop", loop); err != nil {
		t.Fatal(err)
	}
	raw := asynq.NewClient(e.redis)
	defer raw.Close()
	info, err := raw.EnqueueContext(ctx, task(jobs.Payload{Guest: "loop", Data: []byte{}}), asynq.Timeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ti := waitArchived(t, ctx, e.insp, info.Queue, info.ID)
	if ti.Retried != 0 {
		t.Errorf("retried %d times, want 0", ti.Retried)
	}
	if !strings.Contains(ti.LastErr, "ran past its deadline") {
		t.Errorf("reason = %q, want a guest timeout", ti.LastErr)
	}
}

// blocker is a host module whose block function ignores its context for a
// while, as a slow inference call does; it records how many run at once.
type blocker struct {
	hold time.Duration

	mu            sync.Mutex
	running, peak int
	calls         int
}

func (b *blocker) Name() string { return "test" }

func (b *blocker) Instantiate(ctx context.Context, r wazero.Runtime) error {
	_, err := r.NewHostModuleBuilder("test").NewFunctionBuilder().
		WithFunc(func(context.Context) {
			b.mu.Lock()
			b.running++
			b.calls++
			b.peak = max(b.peak, b.running)
			b.mu.Unlock()
			time.Sleep(b.hold)
			b.mu.Lock()
			b.running--
			b.mu.Unlock()
		}).Export("block").Instantiate(ctx)
	return err
}

// blockGuest is a command module whose _start calls test.block.
var blockGuest = func() []byte {
	sec := func(id byte, b ...byte) []byte { return append([]byte{id, byte(len(b))}, b...) }
	m := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	m = append(m, sec(1, 1, 0x60, 0, 0)...)
	m = append(m, sec(2, 1, 4, 't', 'e', 's', 't', 5, 'b', 'l', 'o', 'c', 'k', 0, 0)...)
	m = append(m, sec(3, 1, 0)...)
	m = append(m, sec(5, 1, 0, 1)...)
	m = append(m, sec(7, 2, 6, '_', 's', 't', 'a', 'r', 't', 0, 1, 6, 'm', 'e', 'm', 'o', 'r', 'y', 2, 0)...)
	m = append(m, sec(10, 1, 4, 0, 0x10, 0, 0x0b)...)
	return m
}()

// TestSlotHeldUntilGuestReturns: asynq frees a job's slot when the job's
// context ends, but the guest, in a host call, runs on; the worker must not
// start more guests than its concurrency meanwhile.
func TestSlotHeldUntilGuestReturns(t *testing.T) {
	b := &blocker{hold: 3 * time.Second} // past the jobs' 1 s timeout (asynq counts whole seconds)
	redis := testenv.Redis(t)
	store, _ := testenv.Store(t)
	const concurrency = 2
	testworker.Start(t, worker.Config{Redis: redis, Store: store, Concurrency: concurrency,
		Sandbox: sandbox.Config{HostModules: []sandbox.HostModule{b}}}, map[string][]byte{"block": blockGuest})

	ctx := testenv.Context(t, time.Minute)
	raw := asynq.NewClient(redis)
	defer raw.Close()
	insp := asynq.NewInspector(redis)
	defer insp.Close()
	var ids []string
	var queue string
	for range 6 {
		info, err := raw.EnqueueContext(ctx, task(jobs.Payload{Guest: "block", Data: []byte{}}),
			asynq.Timeout(time.Second), asynq.MaxRetry(0), asynq.Retention(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		ids, queue = append(ids, info.ID), info.Queue
	}
	for _, id := range ids {
		for {
			ti, err := insp.GetTaskInfo(queue, id)
			if err != nil {
				t.Fatal(err)
			}
			if ti.State == asynq.TaskStateArchived || ti.State == asynq.TaskStateCompleted {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("task %s still %s", id, ti.State)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	// Let guests whose jobs already ended finish their host calls.
	time.Sleep(2 * b.hold)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.calls == 0 {
		t.Fatal("no guest ran")
	}
	if b.peak > concurrency {
		t.Errorf("%d guests ran at once, want at most %d", b.peak, concurrency)
	}
	t.Logf("%d guest calls, at most %d at once", b.calls, b.peak)
}
