package batch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// planAndTake uploads n objects under prefix (see upload), plans their
// batch with no worker running, and does take (archive, delete) to the
// jobs of two valid objects, which it returns with the spec and upload's
// map.
func (e *env) planAndTake(t *testing.T, ctx context.Context, prefix string, n int, take func(queue, id string) error) (batch.Spec, map[string]bool, map[string]bool) {
	t.Helper()
	valid := e.upload(t, prefix, n)
	spec, _ := batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/" + prefix}.WithDefaults()
	if _, err := e.client.CreateBatch(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := batch.Plan(ctx, e.client, e.store, spec, batch.PlanConfig{}); err != nil {
		t.Fatal(err)
	}
	taken := map[string]bool{}
	for it, err := range e.client.BatchItems(ctx, spec.ID) {
		if err != nil {
			t.Fatal(err)
		}
		if len(taken) < 2 && valid[it.Key] {
			if err := take(spec.Queue, it.TaskID); err != nil {
				t.Fatal(err)
			}
			taken[it.Key] = true
		}
	}
	return spec, valid, taken
}

// TestReconcileStrandedItems archives two planned jobs behind their batch's
// back, as asynq's recoverer does with a job killed on its final attempt
// (no handler runs, so nothing reports its item). The workers' reconciler
// records both as failed with the reason, and the batch finishes with its
// manifest, without any manual step; a second pass finds nothing to do.
func TestReconcileStrandedItems(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 2*time.Minute)
	spec, valid, stranded := e.planAndTake(t, ctx, "s/", 40, e.insp.ArchiveTask)

	cfg := e.workerConfig(false)
	cfg.ReconcileInterval = 100 * time.Millisecond
	e.startWorkerConfig(t, cfg)
	st, err := batch.Wait(ctx, e.client, spec.ID, 50*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Done != 34 || st.Failed != 6 {
		t.Fatalf("status %+v, want 34 done and 6 failed (4 invalid, 2 stranded)", st)
	}
	st = e.waitManifest(t, spec.ID)
	for key := range stranded {
		valid[key] = false // failed, with no output
	}
	e.checkManifest(t, st, valid)
	for _, l := range e.manifest(t, st) {
		if stranded[l.Key] && !strings.Contains(l.Error, "archived without its outcome recorded") {
			t.Errorf("stranded item %s: error %q, want the reconciler's reason", l.Key, l.Error)
		}
	}

	rec := &batch.Recorder{Client: e.client, Store: e.store}
	if n, err := rec.Reconcile(context.Background(), []string{spec.Queue, "no-such-queue"}); n != 0 || err != nil {
		t.Fatalf("a second reconcile finished %d items (%v), want none", n, err)
	}

	// A manifest write cut short (its writer killed on a final attempt, so
	// no job runs again to write it): the batch is finished, its manifest
	// missing. A pass within the grace leaves it to the writer; one after
	// writes it.
	rdb := e.redis.MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	if err := rdb.HDel(ctx, "wasmjobs:batch:{"+spec.ID+"}", "manifest").Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Delete(ctx, st.Spec.OutputObject(s3url.ManifestName)); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.Reconcile(ctx, []string{spec.Queue}); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.client.BatchStatus(ctx, spec.ID); st.ManifestWritten {
		t.Fatal("a pass within the grace wrote the manifest")
	}
	rec.ManifestGrace = time.Nanosecond
	if _, err := rec.Reconcile(ctx, []string{spec.Queue}); err != nil {
		t.Fatal(err)
	}
	st = e.waitManifest(t, spec.ID)
	e.checkManifest(t, st, valid)
}

// TestReconcileDeletedJobs deletes two planned jobs by hand (as asynqmon's
// delete button does) before any worker runs: nothing will ever report
// their items, and no archived task is left to find them by. Once the
// batch stops making progress, the reconciler's audit finds that their
// jobs are gone and fails them with the reason, and the batch finishes.
func TestReconcileDeletedJobs(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 2*time.Minute)
	spec, valid, deleted := e.planAndTake(t, ctx, "d/", 30, e.insp.DeleteTask)
	cfg := e.workerConfig(false)
	cfg.ReconcileInterval = 50 * time.Millisecond
	cfg.BatchRecorder.(*batch.Recorder).AuditInterval = time.Second
	e.startWorkerConfig(t, cfg)
	st, err := batch.Wait(ctx, e.client, spec.ID, 50*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := 0
	for _, ok := range valid {
		if ok {
			good++
		}
	}
	if st.Done != int64(good-2) || st.Failed != int64(30-good+2) {
		t.Fatalf("status %+v, want %d done and %d failed (2 deleted)", st, good-2, 30-good+2)
	}
	st = e.waitManifest(t, spec.ID)
	for key := range deleted {
		valid[key] = false
	}
	e.checkManifest(t, st, valid)
	for _, l := range e.manifest(t, st) {
		if deleted[l.Key] && !strings.Contains(l.Error, "no longer exists") {
			t.Errorf("deleted job's item %s: error %q, want the audit's reason", l.Key, l.Error)
		}
	}
}

// TestReconcileWritesManifestOfCanceledBatch: a cancel that deleted every
// job of a batch finished it with no job left to write the manifest, and
// its canceller wrote none (the Node client's cancelBatch has no S3 to
// write to). With no archived job of the batch for reconcileQueue to find,
// the reconciler's audit writes it once the manifest grace is over, and
// only then.
func TestReconcileWritesManifestOfCanceledBatch(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 2*time.Minute)
	e.upload(t, "c/", 12)
	spec, _ := batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/c/"}.WithDefaults()
	if _, err := e.client.CreateBatch(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := batch.Plan(ctx, e.client, e.store, spec, batch.PlanConfig{}); err != nil {
		t.Fatal(err)
	}
	if n, finished, err := e.client.CancelBatch(ctx, spec.ID); err != nil || n != 12 || !finished {
		t.Fatalf("cancel = %d, %v, %v; want 12 canceled and the batch finished", n, finished, err)
	}
	rec := &batch.Recorder{Client: e.client, Store: e.store}
	if _, err := rec.Reconcile(ctx, []string{spec.Queue}); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.client.BatchStatus(ctx, spec.ID); st.ManifestWritten {
		t.Fatal("a pass within the grace wrote the manifest")
	}
	// A worker of other queues leaves it alone.
	rec = &batch.Recorder{Client: e.client, Store: e.store, ManifestGrace: time.Nanosecond}
	if _, err := rec.Reconcile(ctx, []string{"other"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.client.BatchStatus(ctx, spec.ID); st.ManifestWritten {
		t.Fatal("a worker of another queue wrote the manifest")
	}
	rec = &batch.Recorder{Client: e.client, Store: e.store, ManifestGrace: time.Nanosecond}
	if _, err := rec.Reconcile(ctx, []string{spec.Queue}); err != nil {
		t.Fatal(err)
	}
	st := e.waitManifest(t, spec.ID)
	lines := e.manifest(t, st)
	if len(lines) != 12 {
		t.Fatalf("manifest has %d lines, want 12", len(lines))
	}
	for _, l := range lines {
		if l.Status != batch.ItemCanceled || l.Error != "batch canceled" {
			t.Fatalf("%+v, want canceled by the batch's cancel", l)
		}
	}
}
