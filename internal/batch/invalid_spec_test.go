package batch_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// TestInvalidIncludeEndsTheBatchFailed: a batch record whose include glob
// the planner cannot use (written by a producer that checked less than the
// Go client does) ends failed with the reason instead of running forever;
// a plan naming the same id with another spec leaves the record alone.
func TestInvalidIncludeEndsTheBatchFailed(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, time.Minute)
	e.upload(t, "bad/", 3)
	spec := batch.Spec{ID: "bad-glob", Guest: "wordcount", Type: queue.TypeText, Input: "s3://" + e.bucket + "/bad/",
		Output: "s3://" + e.bucket + "/out/bad-glob/", Include: "[]a]", Queue: "default"}
	body, _ := json.Marshal(spec)
	rdb := e.redis.MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	if err := rdb.HSet(ctx, "wasmjobs:batch:{bad-glob}", "spec", body, "started", time.Now().UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}
	raw := asynq.NewClient(e.redis)
	defer raw.Close()
	// A forged plan with the same id and another invalid spec first: it must
	// not end the batch.
	forged := spec
	forged.Include, forged.Guest = "[", "other"
	fb, _ := json.Marshal(forged)
	fi, err := raw.EnqueueContext(ctx, asynq.NewTask(queue.TypeBatch, fb), asynq.MaxRetry(3))
	if err != nil {
		t.Fatal(err)
	}
	e.startWorker(t)
	if ti := waitArchived(t, ctx, e.insp, fi.Queue, fi.ID); ti.Retried != 0 {
		t.Errorf("forged plan retried %d times", ti.Retried)
	}
	if st, err := e.client.BatchStatus(ctx, spec.ID); err != nil || !st.Finished.IsZero() || st.Error != "" {
		t.Fatalf("after a forged plan: %+v, %v; want the batch untouched", st, err)
	}

	info, err := raw.EnqueueContext(ctx, asynq.NewTask(queue.TypeBatch, body), asynq.MaxRetry(3))
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	st, err := batch.Wait(wctx, e.client, spec.ID, 50*time.Millisecond, nil)
	if err != nil {
		t.Fatalf("batch did not end: %+v, %v", st, err)
	}
	if !strings.Contains(st.Error, "include glob") || st.Done+st.Failed+st.Enqueued != 0 {
		t.Errorf("batch ended %+v; want failed with the include glob as the reason, nothing run", st)
	}
	if ti := waitArchived(t, ctx, e.insp, info.Queue, info.ID); !strings.Contains(ti.LastErr, "include glob") {
		t.Errorf("plan archived with %q", ti.LastErr)
	}
}
