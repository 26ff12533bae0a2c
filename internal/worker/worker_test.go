package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/guests/guesttest"
	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/internal/testworker"
	"github.com/wasmjobs/wasmjobs/internal/worker"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// env is a worker on the test Redis and MinIO with the shipped and test
// guests registered.
type env struct {
	redis  asynq.RedisClientOpt
	store  *blob.Store
	bucket string // data bucket
	rt     *sandbox.Runtime
	guests *guests.Registry
	client *jobs.Client
	insp   *asynq.Inspector
	// metrics are the worker's.
	metrics *worker.Metrics
}

type envConfig struct {
	worker      worker.Config
	concurrency int
	memoryPages uint32
	// configure, when set, adjusts the worker's configuration once the
	// data bucket exists.
	configure func(c *worker.Config, bucket string)
}

func newEnv(t testing.TB, cfg envConfig) *env {
	t.Helper()
	e := &env{redis: testenv.Redis(t)}
	e.store, e.bucket = testenv.Store(t)
	wc := cfg.worker
	wc.Redis, wc.Store, wc.Concurrency = e.redis, e.store, cfg.concurrency
	wc.Sandbox = sandbox.Config{CacheDir: t.TempDir(), MemoryLimitPages: cfg.memoryPages}
	if cfg.configure != nil {
		cfg.configure(&wc, e.bucket)
	}
	w := testworker.Start(t, wc,
		map[string][]byte{"hello": guests.Hello, "wordcount": guests.Wordcount, "misbehave": guesttest.Misbehave})
	e.rt, e.guests, e.metrics = w.Runtime(), w.Guests(), w.Metrics()
	var err error
	if e.client, err = jobs.NewClient(e.redis); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.client.Close() })
	e.insp = asynq.NewInspector(e.redis)
	t.Cleanup(func() { e.insp.Close() })
	return e
}

func (e *env) put(t testing.TB, key string, data []byte) string {
	t.Helper()
	u := s3url.ObjectURL{Bucket: e.bucket, Key: key}
	if err := e.store.Put(context.Background(), u, data, "text/plain", nil); err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// expect runs a guest directly in the sandbox: same guest, same input, same
// params give the same bytes, so this is what the worker must produce.
func expect(t testing.TB, rt *sandbox.Runtime, wasm, input []byte) []byte {
	t.Helper()
	m, err := rt.Compile(context.Background(), wasm, "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := rt.Run(context.Background(), m, sandbox.RunOptions{Stdin: input})
	if err != nil {
		t.Fatal(err)
	}
	return res.Stdout
}

func sampleText(i int) []byte {
	words := []string{"queue", "guest", "sandbox", "worker", "redis", "object", "wasm", "job"}
	var b strings.Builder
	for j := range 20 + i%37 {
		if j > 0 && j%9 == 0 {
			b.WriteString("\n")
		} else if j > 0 {
			b.WriteString(" ")
		}
		b.WriteString(words[(i*7+j*3)%len(words)])
		if j%5 == 0 {
			fmt.Fprintf(&b, "%d", i)
		}
	}
	return []byte(b.String())
}

// TestEndToEnd enqueues 500 text jobs, half with inputs in S3 and half
// inline, and checks every output object and every inline result.
func TestEndToEnd(t *testing.T) {
	e := newEnv(t, envConfig{concurrency: 8})
	ctx := testenv.Context(t, 3*time.Minute)
	const n = 500
	type job struct {
		info  *jobs.TaskInfo
		input []byte
		s3    bool
		key   string
	}
	all := make([]job, n)
	for i := range n {
		in := sampleText(i)
		j := job{input: in, s3: i%2 == 0}
		var err error
		if j.s3 {
			j.key = fmt.Sprintf("e2e/doc-%03d.txt", i)
			j.info, err = e.client.EnqueueText(ctx, jobs.Payload{Guest: "wordcount", Input: e.put(t, j.key, in)}, jobs.Retention(time.Hour))
		} else {
			j.info, err = e.client.EnqueueText(ctx, jobs.Payload{Guest: "wordcount", Data: in})
		}
		if err != nil {
			t.Fatal(err)
		}
		all[i] = j
	}
	// The expected bytes come from the same guest run directly; one is
	// checked by hand so that the comparison is not vacuous.
	if got := string(expect(t, e.rt, guests.Wordcount, []byte("b a a\nb c"))); got !=
		`{"lines":2,"words":5,"chars":9,"bytes":9,"top":[{"word":"a","count":2},{"word":"b","count":2},{"word":"c","count":1}]}` {
		t.Fatalf("wordcount guest output changed: %s", got)
	}
	for i, j := range all {
		res, err := e.client.Wait(ctx, j.info.Queue, j.info.ID)
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		want := expect(t, e.rt, guests.Wordcount, j.input)
		if !j.s3 {
			if string(res) != string(want) {
				t.Fatalf("inline job %d result = %s, want %s", i, res, want)
			}
			continue
		}
		var sum worker.Summary
		if err := json.Unmarshal(res, &sum); err != nil {
			t.Fatalf("job %d summary %s: %v", i, res, err)
		}
		wantOut := fmt.Sprintf("s3://%s/results/%s.wordcount.json", e.bucket, j.key)
		if sum.Output != wantOut {
			t.Fatalf("job %d output = %s, want %s", i, sum.Output, wantOut)
		}
		u, _ := s3url.ParseObjectURL(sum.Output)
		got, info, err := e.store.Get(ctx, u, 1<<20)
		if err != nil {
			t.Fatalf("job %d output: %v", i, err)
		}
		if string(got) != string(want) {
			t.Fatalf("job %d output object = %s, want %s", i, got, want)
		}
		if info.Metadata[worker.MetaTaskID] != j.info.ID || info.ContentType != "application/json" {
			t.Fatalf("job %d output metadata = %v (%s)", i, info.Metadata, info.ContentType)
		}
	}
}

// TestPermanentFailures checks that each way a job can be wrong ends
// archived after one attempt with a reason naming the cause, while the same
// worker keeps completing good jobs.
func TestPermanentFailures(t *testing.T) {
	e := newEnv(t, envConfig{
		concurrency: 4,
		memoryPages: 256,                                                               // 16 MiB
		worker:      worker.Config{MaxInputBytes: 1024, GuestTimeout: 3 * time.Second}, // generous: the grow case must reach the memory cap first, even on a loaded machine
	})
	ctx := testenv.Context(t, 2*time.Minute)

	// A module that bypassed `guest push` (written straight to the bucket)
	// is still refused by the worker.
	digest := sandbox.Digest(guesttest.BadImport)
	for _, key := range []string{"sneaky.wasm", "sha256/" + strings.TrimPrefix(digest, "sha256:") + ".wasm"} {
		if err := e.store.Put(ctx, s3url.ObjectURL{Bucket: e.guests.Bucket(), Key: key}, guesttest.BadImport, "application/wasm",
			map[string]string{"wasmjobs-sha256": digest}); err != nil {
			t.Fatal(err)
		}
	}
	big := e.put(t, "big.bin", make([]byte, 2048))

	raw := asynq.NewClient(e.redis)
	defer raw.Close()
	cases := []struct {
		name   string
		task   *asynq.Task
		reason string
	}{
		{"malformed payload", asynq.NewTask(jobs.TypeText, []byte(`{"guest": "hello", "data": `)), "not a JSON job object"},
		{"unknown guest", task(jobs.Payload{Guest: "nope", Data: []byte("x")}), `unknown guest "nope"`},
		{"missing input", task(jobs.Payload{Guest: "hello", Input: "s3://" + e.bucket + "/no/such.txt"}), "input object missing"},
		{"input over limit", task(jobs.Payload{Guest: "hello", Input: big}), "input over the size limit"},
		{"guest exits non-zero", task(jobs.Payload{Guest: "misbehave", Data: []byte{}, Params: map[string]string{"mode": "exit"}}), "exit code 3"},
		{"guest loops forever", task(jobs.Payload{Guest: "misbehave", Data: []byte{}, Params: map[string]string{"mode": "loop"}}), "deadline"},
		{"guest grows memory", task(jobs.Payload{Guest: "misbehave", Data: []byte{}, Params: map[string]string{"mode": "grow"}}), "memory limit"},
		{"guest imports a forbidden function", task(jobs.Payload{Guest: "sneaky", Data: []byte{}}), "env.steal_secrets"},
	}

	// Good jobs flow through the same worker the whole time.
	var wg sync.WaitGroup
	goodErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 40 {
			name := fmt.Sprintf("good-%d", i)
			res, err := e.client.Run(ctx, jobs.TypeText, jobs.Payload{Guest: "hello", Data: []byte(name)})
			if err == nil && string(res) != `{"greeting":"Hello, `+name+`!"}` {
				err = fmt.Errorf("good job %d: result %s", i, res)
			}
			if err != nil {
				goodErr <- err
				return
			}
		}
	}()

	for _, c := range cases {
		info, err := raw.EnqueueContext(ctx, c.task, asynq.MaxRetry(5))
		if err != nil {
			t.Fatal(err)
		}
		t.Run(c.name, func(t *testing.T) {
			ti := waitArchived(t, ctx, e.insp, info.Queue, info.ID)
			if ti.Retried != 0 {
				t.Errorf("retried %d times, want 0", ti.Retried)
			}
			if !strings.Contains(ti.LastErr, c.reason) {
				t.Errorf("reason = %q, want it to contain %q", ti.LastErr, c.reason)
			}
			// The client reports the same reason.
			if _, err := e.client.Result(ctx, info.Queue, info.ID); !errors.Is(err, jobs.ErrJobFailed) || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("Result err = %v", err)
			}
		})
	}
	wg.Wait()
	select {
	case err := <-goodErr:
		t.Fatal(err)
	default:
	}
}

func task(p jobs.Payload) *asynq.Task {
	t, _, err := jobs.NewTask(jobs.TypeText, p)
	if err != nil {
		panic(err)
	}
	return t
}

func waitArchived(t *testing.T, ctx context.Context, insp *asynq.Inspector, queue, id string) *asynq.TaskInfo {
	t.Helper()
	for {
		ti, err := insp.GetTaskInfo(queue, id)
		if err != nil {
			t.Fatal(err)
		}
		switch ti.State {
		case asynq.TaskStateArchived:
			return ti
		case asynq.TaskStateCompleted:
			t.Fatalf("task completed, want archived")
		case asynq.TaskStateRetry:
			t.Fatalf("task scheduled for retry (%s), want archived", ti.LastErr)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("task still %s: %v", ti.State, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestOutputWrittenOnceSkipsWork: a task whose output already carries its
// own id (an earlier attempt wrote it, then the worker died) is not run again.
func TestOutputWrittenOnceSkipsWork(t *testing.T) {
	e := newEnv(t, envConfig{concurrency: 2})
	ctx := testenv.Context(t, time.Minute)
	in := e.put(t, "in.txt", []byte("fresh input"))
	out := s3url.ObjectURL{Bucket: e.bucket, Key: "out/once.json"}
	if err := e.store.Put(ctx, out, []byte("EARLIER"), "application/json", map[string]string{worker.MetaTaskID: "task-once"}); err != nil {
		t.Fatal(err)
	}
	res, err := e.client.Run(ctx, jobs.TypeText, jobs.Payload{Guest: "wordcount", Input: in, Output: out.String()},
		jobs.TaskID("task-once"), jobs.Retention(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var sum worker.Summary
	if err := json.Unmarshal(res, &sum); err != nil || !sum.Skipped {
		t.Fatalf("summary = %s (%v), want skipped", res, err)
	}
	got, _, err := e.store.Get(ctx, out, 1<<10)
	if err != nil || string(got) != "EARLIER" {
		t.Fatalf("output = %q, %v; want it untouched", got, err)
	}

	// Another task's output at the same key is overwritten.
	res, err = e.client.Run(ctx, jobs.TypeText, jobs.Payload{Guest: "wordcount", Input: in, Output: out.String()},
		jobs.TaskID("task-twice"), jobs.Retention(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err = e.store.Get(ctx, out, 1<<10)
	if err != nil || !strings.HasPrefix(string(got), `{"lines":1,"words":2,`) {
		t.Fatalf("output = %q, %v; want the new result (summary %s)", got, err, res)
	}
}

// TestInfrastructureErrorsAreRetryable: an unreachable S3 is not the job's
// fault, so the handler does not mark it permanent.
func TestInfrastructureErrorsAreRetryable(t *testing.T) {
	t.Parallel()
	store, err := blob.New(blob.Config{Endpoint: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	// Never started: the handler runs the tasks without Redis.
	h, err := worker.New(worker.Config{Redis: asynq.RedisClientOpt{Addr: "127.0.0.1:1"}, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Shutdown()
	ctx := testenv.Context(t, 30*time.Second)
	err = h.ProcessTask(ctx, task(jobs.Payload{Guest: "hello", Data: []byte("x")}))
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	// While a bad payload is permanent without touching S3.
	err = h.ProcessTask(ctx, asynq.NewTask(jobs.TypeText, []byte(`{"guest":""}`)))
	if !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, jobs.ErrInvalidPayload) {
		t.Fatalf("err = %v, want permanent invalid payload", err)
	}
}

// TestOutputTheStoreRefusesIsPermanent: an output name the store rejects
// (MinIO allows at most 255 bytes per path segment) fails the job at once
// instead of retrying for hours.
func TestOutputTheStoreRefusesIsPermanent(t *testing.T) {
	e := newEnv(t, envConfig{concurrency: 2})
	ctx := testenv.Context(t, time.Minute)
	out := "s3://" + e.bucket + "/" + strings.Repeat("x", 300) + "/out.json"
	info, err := e.client.EnqueueText(ctx, jobs.Payload{Guest: "hello", Data: []byte("Ada"), Output: out}, jobs.MaxRetry(5))
	if err != nil {
		t.Fatal(err)
	}
	ti := waitArchived(t, ctx, e.insp, info.Queue, info.ID)
	if ti.Retried != 0 || !strings.Contains(ti.LastErr, "refused by the store") {
		t.Fatalf("retried %d, reason %q", ti.Retried, ti.LastErr)
	}
}

// TestJobLog checks that a job whose guest succeeds keeps the tail of its
// stderr as its log, inline and with an S3 output, and that a quiet guest
// keeps none.
func TestJobLog(t *testing.T) {
	e := newEnv(t, envConfig{concurrency: 2})
	ctx := testenv.Context(t, time.Minute)
	warn := map[string]string{"mode": "warn"}
	inline, err := e.client.EnqueueText(ctx, jobs.Payload{Guest: "misbehave", Data: []byte("kept"), Params: warn})
	if err != nil {
		t.Fatal(err)
	}
	toS3, err := e.client.EnqueueText(ctx, jobs.Payload{Guest: "misbehave", Input: e.put(t, "log/in.txt", []byte("in s3")), Params: warn}, jobs.Retention(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	quiet, err := e.client.EnqueueText(ctx, jobs.Payload{Guest: "misbehave", Data: []byte("quiet")})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []*jobs.TaskInfo{inline, toS3, quiet} {
		if _, err := e.client.Wait(ctx, j.Queue, j.ID); err != nil {
			t.Fatalf("%s: %v", j.ID, err)
		}
	}
	for _, j := range []*jobs.TaskInfo{inline, toS3} {
		st, err := e.client.State(ctx, j.Queue, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		// The tail: the last 2 KiB, marked as cut, ending with the marker
		// after 100 KiB of 'w'.
		body, cut := strings.CutPrefix(st.Log, "…")
		if !cut || !strings.HasSuffix(body, "w\nmisbehave: warn marker") || len(body) < 2000 || len(body) > 2<<10 || strings.Trim(body[:1900], "w") != "" {
			t.Errorf("%s: log = %d bytes ending %q, want the 2 KiB tail of the guest's stderr", j.ID, len(st.Log), st.Log[max(0, len(st.Log)-40):])
		}
	}
	if st, err := e.client.State(ctx, quiet.Queue, quiet.ID); err != nil || st.Log != "" {
		t.Errorf("a guest that wrote no stderr: log %q, %v", st.Log, err)
	}
	// A job deleted while its log is being kept does not come back as a
	// hash of its own.
	rdb := redis.NewClient(&redis.Options{Addr: e.redis.Addr, DB: e.redis.DB, Password: e.redis.Password})
	defer rdb.Close()
	if err := queue.SetJobLog(ctx, rdb, "default", "no-such-task", "x"); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, queue.TaskKey("default", "no-such-task")).Val(); n != 0 {
		t.Error("SetJobLog created the record of a task that does not exist")
	}
}

// TestFleetEntry checks that a started worker announces its queues and
// models, and withdraws them when it stops.
func TestFleetEntry(t *testing.T) {
	ropt := testenv.Redis(t)
	store, _ := testenv.Store(t)
	rdb := redis.NewClient(&redis.Options{Addr: ropt.Addr, DB: ropt.DB, Password: ropt.Password})
	defer rdb.Close()
	ctx := testenv.Context(t, time.Minute)
	keys := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(keys, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{Redis: ropt, Store: store, Queues: map[string]int{"fleet-a": 1, "fleet-b": 1},
		Sandbox: sandbox.Config{CacheDir: t.TempDir()}, NN: &nn.Config{Models: map[string]nn.Model{"keys": {Path: keys}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var live []queue.WorkerInfo
	for deadline := time.Now().Add(10 * time.Second); len(live) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if live, err = queue.LiveWorkers(ctx, rdb); err != nil {
			t.Fatal(err)
		}
	}
	if len(live) != 1 || !slices.Equal(live[0].Models, []string{"keys"}) || !slices.Equal(live[0].Queues, []string{"fleet-a", "fleet-b"}) ||
		time.Until(live[0].Until) < queue.FleetTTL-10*time.Second {
		t.Fatalf("fleet = %+v, want one worker with model keys on fleet-a and fleet-b", live)
	}
	w.Shutdown()
	if n := rdb.HLen(ctx, queue.FleetKey).Val(); n != 0 {
		t.Errorf("a stopped worker left %d fleet entries", n)
	}
}
