package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
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
	"github.com/wasmjobs/wasmjobs/jobs"
)

// buildBinary compiles wasmjobs once per test binary.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "wasmjobs-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "wasmjobs")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

type batchEnv struct {
	redis      asynq.RedisClientOpt
	store      *blob.Store
	bucket     string
	guestBkt   string
	client     *jobs.Client
	batches    *batch.Client
	globalArgs []string
}

func newBatchEnv(tb testing.TB) *batchEnv {
	tb.Helper()
	e := &batchEnv{redis: testenv.Redis(tb)}
	e.store, e.bucket = testenv.Store(tb)
	e.guestBkt = testenv.NewBucket(tb, e.store)
	s3 := testenv.S3Config(tb)
	e.globalArgs = []string{
		"--redis", "redis://" + e.redis.Addr + "/" + strconv.Itoa(e.redis.DB),
		"--s3-endpoint", s3.Endpoint, "--s3-access-key", s3.AccessKey, "--s3-secret-key", s3.SecretKey,
		"--guest-bucket", e.guestBkt, "--log-level", "warn",
	}
	var err error
	if e.client, err = jobs.NewClient(e.redis); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.client.Close() })
	if e.batches, err = batch.NewClient(e.redis); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.batches.Close() })
	return e
}

func (e *batchEnv) seed(tb testing.TB, prefix string, n int) {
	tb.Helper()
	testenv.PutObjects(tb, e.store, n, func(i int) (s3url.ObjectURL, []byte) {
		return s3url.ObjectURL{Bucket: e.bucket, Key: fmt.Sprintf("%s%07d.txt", prefix, i)}, fmt.Appendf(nil, "object %d of the dataset", i)
	})
}

// TestBatchRunResumesAfterKill kills `wasmjobs batch run` mid-enqueue and
// runs it again: exactly one job per object, and a correct manifest.
func TestBatchRunResumesAfterKill(t *testing.T) {
	e := newBatchEnv(t)
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t, 4*time.Minute)
	const n = 2000
	e.seed(t, "ds/", n)
	runArgs := append([]string{"batch", "run", "s3://" + e.bucket + "/ds/", "--guest", "wordcount", "--type", "text"}, e.globalArgs...)

	// First pass, throttled so that it is still enqueueing when killed.
	first := exec.CommandContext(ctx, bin, append(runArgs, "--chunk", "20", "--rate", "1000")...)
	var firstOut bytes.Buffer
	first.Stdout, first.Stderr = &firstOut, &firstOut
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	spec, _ := jobs.BatchSpec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/ds/"}.WithDefaults()
	for {
		st, err := e.client.BatchStatus(ctx, spec.ID)
		if err == nil && st.Enqueued >= 300 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("first pass never enqueued 300 jobs: %s", firstOut.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	st, err := e.client.BatchStatus(ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Enqueued >= n || st.Listed {
		t.Fatalf("the first pass finished before the kill (%+v): the test proves nothing", st)
	}
	t.Logf("killed after %d of %d jobs were recorded", st.Enqueued, n)

	// Second pass resumes.
	out, err := exec.CommandContext(ctx, bin, runArgs...).CombinedOutput()
	if err != nil {
		t.Fatalf("second pass: %v\n%s", err, out)
	}
	insp := asynq.NewInspector(e.redis)
	defer insp.Close()
	q, err := insp.GetQueueInfo("default")
	if err != nil {
		t.Fatal(err)
	}
	if q.Pending != n {
		t.Fatalf("%d pending jobs after the resumed run, want exactly %d (one per object)\n%s", q.Pending, n, out)
	}
	if st, _ = e.client.BatchStatus(ctx, spec.ID); st.Enqueued != n || st.Total != n || !st.Listed {
		t.Fatalf("record after resume: %+v", st)
	}

	// A worker processes them; the manifest lists each object once, done.
	defer testworker.Start(t, worker.Config{Redis: e.redis, Store: e.store, GuestBucket: e.guestBkt, Concurrency: 8,
		BatchRecorder: &batch.Recorder{Client: e.batches, Store: e.store}}, map[string][]byte{"wordcount": guests.Wordcount}).Shutdown()
	if st, err = batch.Wait(ctx, e.batches, spec.ID, 100*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	if st.Done != n || st.Failed != 0 {
		t.Fatalf("final status %+v", st)
	}
	if err := batch.EnsureManifest(ctx, e.batches, e.store, spec.ID, batch.Access{}); err != nil {
		t.Fatal(err)
	}
	out2, err := exec.CommandContext(ctx, bin, append([]string{"batch", "status", spec.ID}, e.globalArgs...)...).CombinedOutput()
	if err != nil || !bytes.Contains(out2, []byte("done 2000, failed 0")) || !bytes.Contains(out2, []byte("_manifest.jsonl")) {
		t.Fatalf("batch status: %v\n%s", err, out2)
	}
	mf, _ := s3url.ParsePrefixURL(st.Spec.Output)
	body, _, err := e.store.Get(ctx, s3url.ObjectURL{Bucket: mf.Bucket, Key: mf.Key + "_manifest.jsonl"}, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if lines := bytes.Count(body, []byte("\n")); lines != n {
		t.Fatalf("manifest has %d lines, want %d", lines, n)
	}
}

// BenchmarkBatchRun100k measures `wasmjobs batch run` on a prefix of
// WASMJOBS_BENCH_OBJECTS objects (default 100,000): jobs/s including the
// listing, and the command's peak RSS.
func BenchmarkBatchRun100k(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("WASMJOBS_BENCH_OBJECTS")); err == nil && v > 0 {
		n = v
	}
	e := newBatchEnv(b)
	bin, err := buildBinary()
	if err != nil {
		b.Fatal(err)
	}
	e.seed(b, "big/", n)
	b.ResetTimer()
	for i := range b.N {
		cmd := exec.Command(bin, append([]string{"batch", "run", "s3://" + e.bucket + "/big/", "--guest", "wordcount", "--type", "text",
			"--id", fmt.Sprintf("bench-%d", i)}, e.globalArgs...)...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
		took := time.Since(start)
		b.ReportMetric(float64(n)/took.Seconds(), "jobs/s")
		b.ReportMetric(float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)/1024, "peak-RSS-MiB")
	}
}
