package batch_test

import (
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// TestBatchOnRedisCluster runs a batch, retries its failures and cancels
// another one on a real three-master Redis Cluster: every script and
// transaction must keep to one hash slot there (a transaction that also
// touched the global batch index failed with CROSSSLOT). The cluster is
// shared, so the batches run on a queue of their own.
func TestBatchOnRedisCluster(t *testing.T) {
	e := newEnvOn(t, testenv.RedisCluster(t))
	ctx := testenv.Context(t, 2*time.Minute)
	queue := "cluster-" + testenv.RandomHex(6)
	valid := e.upload(t, "small/", 40)
	cfg := e.workerConfig(true)
	cfg.Queues = map[string]int{queue: 1}
	e.startWorkerConfig(t, cfg)

	spec := batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/small/", Queue: queue, ID: "cluster-" + testenv.RandomHex(6)}
	st := e.runSmall(t, ctx, spec, valid)

	if !e.listed(t, st.ID) {
		t.Errorf("batch %s is not in the batch list", st.ID)
	}

	// The four failures fail again, but go through the cluster's queue.
	n, err := e.client.RetryFailed(ctx, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("RetryFailed = %d, want 4", n)
	}
	if st, err = batch.Wait(ctx, e.client, st.ID, 50*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	if st.Done != 36 || st.Failed != 4 {
		t.Fatalf("after retry-failed: status = %+v", st)
	}

	// A batch on a queue no worker serves, canceled before it is planned.
	other := spec
	other.ID, other.Queue = "cluster-"+testenv.RandomHex(6), queue+"-idle"
	if _, err := e.client.StartBatch(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.client.CancelBatch(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	if st, err = e.client.BatchStatus(ctx, other.ID); err != nil || !st.Cancel {
		t.Fatalf("canceled batch: %+v, %v", st, err)
	}
}
