// Package testworker starts wasmjobs workers for tests, on the services that
// internal/testenv provides.
package testworker

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/internal/worker"
)

// Guests returns a guest registry on bucket (a fresh one when empty) with
// guests pushed under their names.
func Guests(tb testing.TB, store *blob.Store, bucket string, rt *sandbox.Runtime, modules map[string][]byte) *guests.Registry {
	tb.Helper()
	if bucket == "" {
		bucket = testenv.NewBucket(tb, store)
	}
	reg := guests.NewRegistry(store, bucket, rt, 0)
	ctx := testenv.Context(tb, time.Minute)
	for name, wasm := range modules {
		if _, err := reg.Push(ctx, name, wasm); err != nil {
			tb.Fatalf("push guest %s: %v", name, err)
		}
	}
	return reg
}

// Start runs a worker with handler configuration hc on redis, polling
// briskly, until the test ends; extra handles more task types. The returned
// function stops it earlier.
func Start(tb testing.TB, redis asynq.RedisConnOpt, hc worker.HandlerConfig, concurrency int, extra map[string]asynq.Handler) (stop func()) {
	tb.Helper()
	h, err := worker.NewHandler(hc)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := worker.NewServer(worker.ServerConfig{Redis: redis, Handler: h, Concurrency: concurrency,
		PollInterval: 20 * time.Millisecond, Extra: extra})
	if err != nil {
		tb.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Stop)
	return srv.Stop
}
