package batch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// TestForgedBatchOutcomesAreRefused: a producer that names someone's batch
// in its payload can neither fail one of that batch's items nor add items
// to it; its own jobs fail with the reason, and the batch ends as planned.
func TestForgedBatchOutcomesAreRefused(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 2*time.Minute)
	valid := e.upload(t, "f/", 20)
	other := "s3://" + e.bucket + "/g/not-in-the-batch.txt"
	if err := e.store.Put(ctx, s3url.ObjectURL{Bucket: e.bucket, Key: "g/not-in-the-batch.txt"}, []byte("hello there"), "text/plain", nil); err != nil {
		t.Fatal(err)
	}
	// The batch's jobs wait on their own queue while the forged ones run.
	spec, err := batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/f/", Queue: "victim", MaxRetry: new(int)}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateBatch(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := batch.Plan(ctx, e.client, e.store, spec, batch.PlanConfig{}); err != nil {
		t.Fatal(err)
	}
	target := "f/doc-00000.txt"
	e.startWorker(t) // queue "default" only
	forged := []struct {
		name string
		p    queue.Payload
	}{
		{"fail a real item", queue.Payload{Guest: "no-such-guest", Input: "s3://" + e.bucket + "/" + target, Output: "s3://" + e.bucket + "/x/1.json", Batch: spec.ID}},
		{"add an item", queue.Payload{Guest: "wordcount", Input: other, Output: "s3://" + e.bucket + "/x/2.json", Batch: spec.ID}},
		{"report to no batch", queue.Payload{Guest: "wordcount", Input: other, Output: "s3://" + e.bucket + "/x/3.json", Batch: "no-such-batch"}},
	}
	producer, err := jobs.NewClient(e.redis)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	for _, f := range forged {
		info, err := producer.EnqueueText(ctx, f.p, jobs.MaxRetry(3))
		if err != nil {
			t.Fatal(err)
		}
		ti := waitArchived(t, ctx, e.insp, info.Queue, info.ID)
		if ti.Retried != 0 || !strings.Contains(ti.LastErr, "claims batch") {
			t.Errorf("%s: retried %d, reason %q; want a refusal", f.name, ti.Retried, ti.LastErr)
		}
	}
	st, err := e.client.BatchStatus(ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Enqueued != 20 || st.Done != 0 || st.Failed != 0 {
		t.Fatalf("after the forged jobs: %+v; want 20 enqueued, nothing final", st)
	}

	victim := e.workerConfig(false)
	victim.Concurrency, victim.Queues = 4, map[string]int{"victim": 1}
	e.startWorkerConfig(t, victim)
	if st, err = batch.Wait(ctx, e.client, spec.ID, 50*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	if st.Total != 20 || st.Done != 18 || st.Failed != 2 {
		t.Fatalf("batch ended %+v; want 18 done, 2 failed of 20", st)
	}
	st = e.waitManifest(t, spec.ID)
	e.checkManifest(t, st, valid)
}

func waitArchived(tb testing.TB, ctx context.Context, insp *asynq.Inspector, queue, id string) *asynq.TaskInfo {
	tb.Helper()
	for {
		ti, err := insp.GetTaskInfo(queue, id)
		if err != nil {
			tb.Fatalf("task %s: %v", id, err)
		}
		switch ti.State {
		case asynq.TaskStateArchived:
			return ti
		case asynq.TaskStateCompleted:
			tb.Fatalf("task %s completed, want archived", id)
		case asynq.TaskStateRetry:
			tb.Fatalf("task %s scheduled for retry (%s), want archived", id, ti.LastErr)
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("task %s still %s: %v", id, ti.State, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
