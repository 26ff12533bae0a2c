package batch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// ttls returns the remaining lifetime of each of batch id's keys in Redis
// (-1: none, -2: the key is gone).
func (e *env) ttls(t *testing.T, id string) []time.Duration {
	t.Helper()
	rdb := e.redis.MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	var out []time.Duration
	for _, k := range []string{"wasmjobs:batch:{" + id + "}", "wasmjobs:batch:{" + id + "}:status", "wasmjobs:batch:{" + id + "}:items"} {
		d, err := rdb.PTTL(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// listed reports whether ListBatches returns batch id.
func (e *env) listed(t *testing.T, id string) bool {
	t.Helper()
	all, err := e.client.ListBatches(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range all {
		if b.ID == id {
			return true
		}
	}
	return false
}

// checkGone fails unless batch id (what it is, for the messages) has no
// status, no keys in Redis and no place in the list.
func (e *env) checkGone(t *testing.T, id, what string) {
	t.Helper()
	if _, err := e.client.BatchStatus(context.Background(), id); !errors.Is(err, batch.ErrNotFound) {
		t.Fatalf("status of %s: %v, want ErrNotFound", what, err)
	}
	for i, d := range e.ttls(t, id) {
		if d != -2 {
			t.Fatalf("key %d of %s still exists (ttl %v)", i, what, d)
		}
	}
	if e.listed(t, id) {
		t.Fatalf("%s is still listed", what)
	}
}

// TestBatchRetention: a finished batch's keys expire after its retention;
// retrying its failures keeps them until it finishes again; once expired,
// the batch is gone from status and list, and its output prefix is free.
func TestBatchRetention(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 2*time.Minute)
	valid := e.upload(t, "small/", 40)
	e.startWorker(t)
	spec := batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/small/", ID: "kept", RetentionSeconds: 60}
	st := e.runSmall(t, ctx, spec, valid)
	for i, d := range e.ttls(t, st.ID) {
		if d <= 50*time.Second || d > time.Minute {
			t.Fatalf("key %d of the finished batch expires in %v, want about its retention (60 s)", i, d)
		}
	}

	// Running again: nothing expires until it is done.
	if _, err := e.client.RetryFailed(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	for i, d := range e.ttls(t, st.ID) {
		if d != -1 {
			t.Fatalf("key %d of a batch running again expires in %v, want no expiry", i, d)
		}
	}
	if st, err := batch.Wait(ctx, e.client, st.ID, 50*time.Millisecond, nil); err != nil || st.Failed != 4 {
		t.Fatalf("after retry-failed: %+v, %v", st, err)
	}
	for i, d := range e.ttls(t, st.ID) {
		if d <= 50*time.Second {
			t.Fatalf("key %d of the batch finished again expires in %v, want about 60 s", i, d)
		}
	}

	// A short retention runs out.
	short := spec
	short.ID, short.RetentionSeconds = "short", 1
	st = e.runSmall(t, ctx, short, valid)
	time.Sleep(1500 * time.Millisecond)
	e.checkGone(t, st.ID, "an expired batch")
	// Its output prefix is free for another batch.
	other := spec
	other.ID, other.Output = "takes-over", st.Spec.Output
	if _, err := e.client.CreateBatch(ctx, other); err != nil {
		t.Fatalf("a batch on the output prefix of an expired one: %v", err)
	}
}

// TestDeleteBatch: a running batch is refused; a finished one is removed
// from Redis, from the list, and its output prefix is free.
func TestDeleteBatch(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 2*time.Minute)
	valid := e.upload(t, "small/", 40)

	running, err := e.client.CreateBatch(ctx, batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/small/", ID: "running"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.DeleteBatch(ctx, running.ID); !errors.Is(err, batch.ErrBatchRunning) {
		t.Fatalf("delete of a running batch: %v, want ErrBatchRunning", err)
	}
	if _, err := e.client.BatchStatus(ctx, running.ID); err != nil {
		t.Fatalf("the running batch after a refused delete: %v", err)
	}
	if err := e.client.DeleteBatch(ctx, "no-such-batch"); !errors.Is(err, batch.ErrNotFound) {
		t.Fatalf("delete of a missing batch: %v, want ErrNotFound", err)
	}

	e.startWorker(t)
	st := e.runSmall(t, ctx, batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/small/", ID: "done"}, valid)
	if !e.listed(t, st.ID) {
		t.Fatal("a finished batch is not listed")
	}
	if err := e.client.DeleteBatch(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	e.checkGone(t, st.ID, "a deleted batch")
	// The manifest in S3 stays; the prefix can be claimed again.
	e.manifest(t, st)
	other := batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/small/", ID: "after", Output: st.Spec.Output}
	if _, err := e.client.CreateBatch(ctx, other); err != nil {
		t.Fatalf("a batch on the output prefix of a deleted one: %v", err)
	}
}
