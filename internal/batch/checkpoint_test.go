package batch_test

import (
	"context"
	"errors"
	"iter"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// countingLister records where its listing started and counts what it
// yielded; Plan lists on a goroutine of its own, hence the lock.
type countingLister struct {
	store  *blob.Store
	mu     sync.Mutex
	start  string
	listed int
}

func (l *countingLister) ListAfter(ctx context.Context, prefix s3url.ObjectURL, after string) iter.Seq2[blob.ObjectInfo, error] {
	l.mu.Lock()
	l.start = after
	l.mu.Unlock()
	return func(yield func(blob.ObjectInfo, error) bool) {
		for o, err := range l.store.ListAfter(ctx, prefix, after) {
			l.mu.Lock()
			l.listed++
			l.mu.Unlock()
			if !yield(o, err) {
				return
			}
		}
	}
}

// seen is where the listing started and how much it yielded.
func (l *countingLister) seen() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.start, l.listed
}

// TestPlanResumesFromCheckpoint interrupts planning after two chunks: the
// next pass lists only what comes after them, every object gets one job,
// the total is whole, and once listing is complete a later pass lists from
// the start again (a rerun picks up new objects anywhere).
func TestPlanResumesFromCheckpoint(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 2*time.Minute)
	e.upload(t, "c/", 450)
	spec, _ := batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/c/"}.WithDefaults()
	if _, err := e.client.CreateBatch(ctx, spec); err != nil {
		t.Fatal(err)
	}
	first, stop := context.WithCancel(ctx)
	res, err := batch.Plan(first, e.client, &countingLister{store: e.store}, spec, batch.PlanConfig{ChunkSize: 100, Progress: func(listed, _ int64) {
		if listed == 200 {
			stop() // as a worker killed, or a plan task past its timeout
		}
	}})
	if !errors.Is(err, context.Canceled) || res.Enqueued != 200 {
		t.Fatalf("interrupted pass: %+v, %v; want 200 enqueued and context.Canceled", res, err)
	}
	l := &countingLister{store: e.store}
	res, err = batch.Plan(ctx, e.client, l, spec, batch.PlanConfig{ChunkSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if start, listed := l.seen(); start == "" || listed != 250 || res.Enqueued != 250 || res.Listed != 450 {
		t.Fatalf("resumed pass started after %q, listed %d, result %+v; want after the 200th key, 250 listed and enqueued, 450 in all", start, listed, res)
	}
	st, err := e.client.BatchStatus(ctx, spec.ID)
	if err != nil || st.Total != 450 || st.Enqueued != 450 {
		t.Fatalf("status %+v, %v; want 450 listed and enqueued once each", st, err)
	}
	rdb := e.redis.MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	if n, err := rdb.HExists(ctx, "wasmjobs:batch:{"+spec.ID+"}", "plan_after").Result(); err != nil || n {
		t.Fatalf("checkpoint still set after a whole listing (%v)", err)
	}
	l = &countingLister{store: e.store}
	res, err = batch.Plan(ctx, e.client, l, spec, batch.PlanConfig{ChunkSize: 100})
	if start, _ := l.seen(); err != nil || start != "" || res.Resumed != 450 || res.Enqueued != 0 {
		t.Fatalf("a rerun after the whole listing: started after %q, %+v, %v; want from the start, 450 resumed", start, res, err)
	}
}

// TestPlanStopsWhenCanceled: a batch canceled before its plan ran lists
// nothing into jobs and ends at once.
func TestPlanStopsWhenCanceled(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, time.Minute)
	e.upload(t, "k/", 150)
	spec, _ := batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/k/"}.WithDefaults()
	if _, err := e.client.CreateBatch(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.client.CancelBatch(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	res, err := batch.Plan(ctx, e.client, e.store, spec, batch.PlanConfig{ChunkSize: 100})
	if err != nil || res.Enqueued != 0 || !res.Finished {
		t.Fatalf("plan of a canceled batch: %+v, %v; want nothing enqueued and the batch finished", res, err)
	}
}
