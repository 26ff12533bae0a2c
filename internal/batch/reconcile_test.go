package batch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// TestReconcileStrandedItems archives two planned jobs behind their batch's
// back, as asynq's recoverer does with a job killed on its final attempt
// (no handler runs, so nothing reports its item). The workers' reconciler
// records both as failed with the reason, and the batch finishes with its
// manifest, without any manual step; a second pass finds nothing to do.
func TestReconcileStrandedItems(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 2*time.Minute)
	valid := e.upload(t, "s/", 40)
	spec, _ := batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/s/"}.WithDefaults()
	if _, err := e.client.CreateBatch(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := batch.Plan(ctx, e.client, e.store, spec, batch.PlanConfig{}); err != nil {
		t.Fatal(err)
	}
	stranded := map[string]bool{}
	for it, err := range e.client.BatchItems(ctx, spec.ID) {
		if err != nil {
			t.Fatal(err)
		}
		if len(stranded) < 2 && valid[it.Key] {
			if err := e.insp.ArchiveTask(spec.Queue, it.TaskID); err != nil {
				t.Fatal(err)
			}
			stranded[it.Key] = true
		}
	}

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
}
