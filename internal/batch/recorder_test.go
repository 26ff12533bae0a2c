package batch_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// TestRecorderWaitsForThePlanner: a job that ends before the planner
// recorded its item (the planner enqueues a chunk's jobs, then records
// them) is recorded once the item appears, instead of failing; an item
// that never appears is still refused.
func TestRecorderWaitsForThePlanner(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, time.Minute)
	spec, err := batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/in/"}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateBatch(ctx, spec); err != nil {
		t.Fatal(err)
	}
	rec := &batch.Recorder{Client: e.client, Store: e.store}
	item := func(key string) batch.Item {
		return batch.Item{Key: key, TaskID: batch.ItemTaskID(spec.ID, key, "etag"), Output: "s3://" + e.bucket + "/out/" + key}
	}

	late := item("in/late.txt")
	go func() {
		time.Sleep(100 * time.Millisecond)
		pending := late
		pending.Status = batch.ItemPending
		if err := e.client.MarkBatchItems(ctx, spec.ID, []batch.Item{pending}); err != nil {
			t.Error(err)
		}
	}()
	done := late
	done.Status = batch.ItemDone
	if err := rec.Finished(ctx, spec.ID, done); err != nil {
		t.Fatalf("outcome reported before the planner recorded the item: %v", err)
	}
	st, err := e.client.BatchStatus(ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Enqueued != 1 || st.Done != 1 {
		t.Fatalf("batch %+v; want 1 enqueued, 1 done", st)
	}

	never := item("in/never.txt")
	never.Status = batch.ItemDone
	start := time.Now()
	if err := rec.Finished(ctx, spec.ID, never); !errors.Is(err, batch.ErrBatchItemUnknown) {
		t.Fatalf("outcome of an item never recorded: %v, want ErrBatchItemUnknown", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %s", d)
	}
}
