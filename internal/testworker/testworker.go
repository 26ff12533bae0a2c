// Package testworker starts wasmjobs workers for tests, on the services that
// internal/testenv provides. It builds them with worker.New, as the
// wasmjobs command does.
package testworker

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/internal/worker"
)

// New returns a worker for cfg that is not started yet, shut down when the
// test ends, with guests pushed under their names. Unless cfg names one, its
// guest bucket is a fresh bucket of cfg.Store (which must be a *blob.Store
// then). A zero PollInterval polls briskly (20 ms).
func New(tb testing.TB, cfg worker.Config, guests map[string][]byte) *worker.Worker {
	tb.Helper()
	if cfg.GuestBucket == "" {
		store, ok := cfg.Store.(*blob.Store)
		if !ok {
			tb.Fatalf("testworker: a Store of type %T needs a GuestBucket", cfg.Store)
		}
		cfg.GuestBucket = testenv.NewBucket(tb, store)
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	w, err := worker.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Shutdown)
	ctx := testenv.Context(tb, time.Minute)
	for _, name := range slices.Sorted(maps.Keys(guests)) {
		if _, err := w.Guests().Push(ctx, name, guests[name]); err != nil {
			tb.Fatalf("push guest %s: %v", name, err)
		}
	}
	return w
}

// Start is New, then Start: the worker runs until the test ends, or until
// its Shutdown.
func Start(tb testing.TB, cfg worker.Config, guests map[string][]byte) *worker.Worker {
	tb.Helper()
	w := New(tb, cfg, guests)
	if err := w.Start(testenv.Context(tb, time.Minute)); err != nil {
		tb.Fatal(err)
	}
	return w
}

// RunBatch starts spec's batch (a worker plans it) and waits until it has
// ended and the worker that ended it has written its manifest.
func RunBatch(tb testing.TB, ctx context.Context, c *batch.Client, spec batch.Spec) *batch.Status {
	tb.Helper()
	st, err := c.StartBatch(ctx, spec)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := batch.Wait(ctx, c, st.ID, 20*time.Millisecond, nil); err != nil {
		tb.Fatal(err)
	}
	return WaitManifest(tb, c, st.ID, time.Minute)
}

// WaitManifest waits up to limit for the manifest of batch id to be
// written, and returns the batch's status then.
func WaitManifest(tb testing.TB, c *batch.Client, id string, limit time.Duration) *batch.Status {
	tb.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		st, err := c.BatchStatus(context.Background(), id)
		if err != nil {
			tb.Fatal(err)
		}
		if st.ManifestWritten {
			return st
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no manifest %s after the batch finished: %+v", limit, st)
		}
	}
}
