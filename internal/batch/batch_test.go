package batch_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/internal/testworker"
	"github.com/wasmjobs/wasmjobs/internal/worker"
)

type env struct {
	redis  asynq.RedisConnOpt
	store  *blob.Store
	bucket string
	client *batch.Client
	insp   *asynq.Inspector
	// guestBucket is the workers' guest bucket, wordcount registered.
	guestBucket string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, testenv.Redis(t))
}

// newEnvOn is newEnv on the Redis of opt.
func newEnvOn(t testing.TB, opt asynq.RedisConnOpt) *env {
	t.Helper()
	e := &env{redis: opt}
	e.store, e.bucket = testenv.Store(t)
	var err error
	if e.client, err = batch.NewClient(e.redis); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.client.Close() })
	e.insp = asynq.NewInspector(e.redis)
	t.Cleanup(func() { e.insp.Close() })
	e.guestBucket = testenv.NewBucket(t, e.store)
	return e
}

// workerConfig is the configuration of a worker on e's services that runs
// the batch's jobs and records their outcomes, and plans batches when plan.
func (e *env) workerConfig(plan bool) worker.Config {
	cfg := worker.Config{Redis: e.redis, Store: e.store, GuestBucket: e.guestBucket, Concurrency: 8,
		BatchRecorder: &batch.Recorder{Client: e.client, Store: e.store}}
	if plan {
		cfg.BatchPlanner = &batch.PlanHandler{Client: e.client, Store: e.store}
	}
	return cfg
}

// startWorker runs a worker that plans batches and records their outcomes
// until the test ends; its Shutdown stops it earlier.
func (e *env) startWorker(t testing.TB) *worker.Worker {
	t.Helper()
	return e.startWorkerConfig(t, e.workerConfig(true))
}

// startWorkerConfig runs a worker for cfg with wordcount registered.
func (e *env) startWorkerConfig(t testing.TB, cfg worker.Config) *worker.Worker {
	t.Helper()
	return testworker.Start(t, cfg, map[string][]byte{"wordcount": guests.Wordcount})
}

// upload puts n text objects under prefix; every tenth is not valid UTF-8,
// which the wordcount guest rejects.
func (e *env) upload(t testing.TB, prefix string, n int) map[string]bool {
	t.Helper()
	key := func(i int) string { return fmt.Sprintf("%sdoc-%05d.txt", prefix, i) }
	valid := make(map[string]bool, n)
	for i := range n {
		valid[key(i)] = i%10 != 3
	}
	testenv.PutObjects(t, e.store, n, func(i int) (s3url.ObjectURL, []byte) {
		body := fmt.Appendf(nil, "document %d says hello to object %d", i, i*7)
		if i%10 == 3 {
			body = append(body, 0xff, 0xfe)
		}
		return s3url.ObjectURL{Bucket: e.bucket, Key: key(i)}, body
	})
	return valid
}

// waitManifest waits for the worker that finished the batch to write its
// manifest.
// runBatch starts spec, waits for the batch to finish and for its manifest,
// and returns its status then.
func (e *env) runBatch(t testing.TB, ctx context.Context, spec batch.Spec) *batch.Status {
	t.Helper()
	st, err := e.client.StartBatch(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = batch.Wait(ctx, e.client, st.ID, 50*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	return e.waitManifest(t, st.ID)
}

func (e *env) waitManifest(t testing.TB, id string) *batch.Status {
	t.Helper()
	return testworker.WaitManifest(t, e.client, id, 30*time.Second)
}

func (e *env) manifest(t testing.TB, st *batch.Status) []batch.Item {
	t.Helper()
	out, _ := s3url.ParsePrefixURL(st.Spec.Output)
	b, _, err := e.store.Get(context.Background(), s3url.ObjectURL{Bucket: out.Bucket, Key: out.Key + "_manifest.jsonl"}, 64<<20)
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	var lines []batch.Item
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var l batch.Item
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("manifest line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

// checkManifest verifies one line per object with the right status, and
// outputs exactly for the valid objects.
func (e *env) checkManifest(t testing.TB, st *batch.Status, valid map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	for _, l := range e.manifest(t, st) {
		if seen[l.Key] {
			t.Fatalf("manifest lists %s twice", l.Key)
		}
		seen[l.Key] = true
		ok, known := valid[l.Key]
		switch {
		case !known:
			t.Fatalf("manifest lists unknown key %s", l.Key)
		case ok && (l.Status != batch.ItemDone || l.Output == ""):
			t.Fatalf("%s: %+v, want done with an output", l.Key, l)
		case !ok && (l.Status != batch.ItemFailed || l.Error == "" || l.Output != ""):
			t.Fatalf("%s: %+v, want failed with a reason", l.Key, l)
		}
	}
	if len(seen) != len(valid) {
		t.Fatalf("manifest has %d lines, want %d", len(seen), len(valid))
	}
	out, _ := s3url.ParsePrefixURL(st.Spec.Output)
	outputs := 0
	for obj, err := range e.store.List(context.Background(), out) {
		if err != nil {
			t.Fatal(err)
		}
		if obj.Key == out.Key+"_manifest.jsonl" || obj.Key == out.Key+"_summary.json" {
			continue
		}
		outputs++
	}
	nValid := 0
	for _, ok := range valid {
		if ok {
			nValid++
		}
	}
	if outputs != nValid {
		t.Fatalf("%d output objects, want %d (one per valid input)", outputs, nValid)
	}
}

func TestBatchOf2000(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 5*time.Minute)
	valid := e.upload(t, "ds/", 2000)
	e.startWorker(t)
	spec, err := batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/ds/"}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateBatch(ctx, spec); err != nil {
		t.Fatal(err)
	}
	res, err := batch.Plan(ctx, e.client, e.store, spec, batch.PlanConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Listed != 2000 || res.Enqueued != 2000 {
		t.Fatalf("plan = %+v, want 2000 listed and enqueued", res)
	}
	st, err := batch.Wait(ctx, e.client, spec.ID, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Done != 1800 || st.Failed != 200 || st.Total != 2000 || st.Enqueued != 2000 {
		t.Fatalf("status = %+v", st)
	}
	// The worker that finished the batch writes the manifest right after.
	st = e.waitManifest(t, spec.ID)
	e.checkManifest(t, st, valid)

	// Running the same batch again enqueues nothing.
	again, err := batch.Plan(ctx, e.client, e.store, spec, batch.PlanConfig{})
	if err != nil || again.Enqueued != 0 || again.Resumed != 2000 {
		t.Fatalf("second plan = %+v, %v; want everything resumed", again, err)
	}
}

func TestStartBatchFromClient(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 2*time.Minute)
	valid := e.upload(t, "small/", 40)
	e.startWorker(t)
	e.runSmall(t, ctx, batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/small/", ID: "from-client"}, valid)
}

// runSmall starts spec on the 40 objects e.upload put under small/ and
// checks the finished batch: 36 done, 4 failed, and its manifest.
func (e *env) runSmall(t *testing.T, ctx context.Context, spec batch.Spec, valid map[string]bool) *batch.Status {
	t.Helper()
	st, err := e.client.StartBatch(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if st, err = batch.Wait(ctx, e.client, st.ID, 50*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	if st.Done != 36 || st.Failed != 4 {
		t.Fatalf("status = %+v", st)
	}
	if err := batch.EnsureManifest(ctx, e.client, e.store, st.ID, batch.Access{}); err != nil {
		t.Fatal(err)
	}
	st, _ = e.client.BatchStatus(ctx, st.ID)
	e.checkManifest(t, st, valid)
	return st
}

func TestRetryFailedRerunsOnlyFailed(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 2*time.Minute)
	valid := e.upload(t, "r/", 50)
	e.startWorker(t)
	spec, _ := batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/r/", MaxRetry: new(int)}.WithDefaults()
	if _, err := e.client.CreateBatch(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := batch.Plan(ctx, e.client, e.store, spec, batch.PlanConfig{}); err != nil {
		t.Fatal(err)
	}
	st, err := batch.Wait(ctx, e.client, spec.ID, 50*time.Millisecond, nil)
	if err != nil || st.Failed != 5 {
		t.Fatalf("first pass: %+v, %v", st, err)
	}
	st = e.waitManifest(t, spec.ID)
	// Remember the done outputs, then repair the corrupt inputs.
	before := map[string]time.Time{}
	for _, l := range e.manifest(t, st) {
		if l.Status == batch.ItemDone {
			u, _ := s3url.ParseObjectURL(l.Output)
			info, err := e.store.Stat(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			before[l.Output] = info.LastModified
		}
	}
	for key, ok := range valid {
		if !ok {
			if err := e.store.Put(ctx, s3url.ObjectURL{Bucket: e.bucket, Key: key}, []byte("repaired text"), "text/plain", nil); err != nil {
				t.Fatal(err)
			}
			valid[key] = true
		}
	}
	time.Sleep(1100 * time.Millisecond) // S3 modification times have 1 s resolution
	n, err := e.client.RetryFailed(ctx, spec.ID)
	if err != nil || n != 5 {
		t.Fatalf("retry-failed = %d, %v; want 5", n, err)
	}
	if st, err = batch.Wait(ctx, e.client, spec.ID, 50*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	if st.Done != 50 || st.Failed != 0 {
		t.Fatalf("after retry: %+v", st)
	}
	st = e.waitManifest(t, spec.ID)
	e.checkManifest(t, st, valid)
	for out, mod := range before {
		u, _ := s3url.ParseObjectURL(out)
		info, err := e.store.Stat(ctx, u)
		if err != nil || !info.LastModified.Equal(mod) {
			t.Fatalf("%s was rewritten by retry-failed (%v → %v, %v)", out, mod, info.LastModified, err)
		}
	}
}

func TestCancelStopsOnlyThatBatch(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, 2*time.Minute)
	e.upload(t, "a/", 30)
	e.upload(t, "b/", 20)
	var specs []batch.Spec
	for _, p := range []string{"a/", "b/"} {
		spec, _ := batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/" + p}.WithDefaults()
		if _, err := e.client.CreateBatch(ctx, spec); err != nil {
			t.Fatal(err)
		}
		if _, err := batch.Plan(ctx, e.client, e.store, spec, batch.PlanConfig{}); err != nil {
			t.Fatal(err)
		}
		specs = append(specs, spec)
	}
	q, err := e.insp.GetQueueInfo("default")
	if err != nil || q.Pending != 50 {
		t.Fatalf("queue before cancel: %+v, %v", q, err)
	}
	n, finished, err := e.client.CancelBatch(ctx, specs[0].ID)
	if err != nil || n != 30 || !finished {
		t.Fatalf("cancel = %d, %v, %v; want 30 canceled and the batch finished", n, finished, err)
	}
	if err := batch.EnsureManifest(ctx, e.client, e.store, specs[0].ID, batch.Access{}); err != nil {
		t.Fatal(err)
	}
	if q, err = e.insp.GetQueueInfo("default"); err != nil || q.Pending != 20 {
		t.Fatalf("queue after cancel: %+v, %v; want batch b's 20 jobs", q, err)
	}
	st, _ := e.client.BatchStatus(ctx, specs[0].ID)
	for _, l := range e.manifest(t, st) {
		if l.Status != batch.ItemCanceled {
			t.Fatalf("%+v, want canceled", l)
		}
	}
	// Batch b still runs to the end.
	e.startWorker(t)
	stB, err := batch.Wait(ctx, e.client, specs[1].ID, 50*time.Millisecond, nil)
	if err != nil || stB.Done+stB.Failed != 20 {
		t.Fatalf("batch b: %+v, %v", stB, err)
	}
}

// TestObjectsThatCannotBeJobsAreSkipped: an object whose output key would
// exceed S3's limit is listed as skipped with the reason; the rest runs.
func TestObjectsThatCannotBeJobsAreSkipped(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t, time.Minute)
	ctxPut := func(key string) {
		if err := e.store.Put(ctx, s3url.ObjectURL{Bucket: e.bucket, Key: key}, []byte("some words"), "text/plain", nil); err != nil {
			t.Fatal(err)
		}
	}
	ctxPut("long/a.txt")
	ctxPut("long/" + strings.Repeat("k", 60) + ".txt")
	e.startWorker(t)
	spec, err := batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/long/",
		// Five 197-byte segments: MinIO allows at most 255 bytes per segment.
		Output: "s3://" + e.bucket + "/" + strings.Repeat(strings.Repeat("o", 197)+"/", 5)}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateBatch(ctx, spec); err != nil {
		t.Fatal(err)
	}
	res, err := batch.Plan(ctx, e.client, e.store, spec, batch.PlanConfig{})
	if err != nil || res.Enqueued != 1 || res.Skipped != 1 {
		t.Fatalf("plan = %+v, %v; want one enqueued and one skipped", res, err)
	}
	st, err := batch.Wait(ctx, e.client, spec.ID, 50*time.Millisecond, nil)
	if err != nil || st.Done != 1 || st.Skipped != 1 {
		t.Fatalf("status %+v, %v", st, err)
	}
	st = e.waitManifest(t, spec.ID)
	for _, l := range e.manifest(t, st) {
		if strings.Contains(l.Key, "kkk") && (l.Status != batch.ItemSkipped || !strings.Contains(l.Error, "1024")) {
			t.Fatalf("%+v: want skipped with the reason", l)
		}
	}
}
