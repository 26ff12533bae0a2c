package worker_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/nn/fasttext"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/internal/testworker"
	"github.com/wasmjobs/wasmjobs/internal/worker"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// Side-by-side throughput benchmarks: each pairs wasmjobs with the floor it
// is held to, in the same run on the same Redis and MinIO, so that the ratio
// between the two is what counts (the machine's speed and load cancel out).
//
//	go test ./internal/worker -run '^$' -bench 'BenchmarkTextJobs|BenchmarkSmallObjects' -benchtime 1x
//
// under scripts/with-services.sh.

const (
	// textJobs is how many jobs each side of BenchmarkTextJobs runs.
	textJobs = 20_000
	// smallObjects is the size of BenchmarkSmallObjects' prefix.
	smallObjects = 20_000
	// floorConcurrency is how many requests the S3 floor keeps in flight.
	floorConcurrency = 8
	// resultRetention is how long both sides keep results, as inline text
	// jobs do by default.
	resultRetention = 24 * time.Hour
)

// BenchmarkTextJobs runs inline text jobs through Redis, after they were all
// enqueued (pipelined, with jobs.Client.EnqueueMany), from the worker's start
// until the last one completed:
//
//   - asynq-noop is asynq's own ceiling: a plain asynq.Server whose handler
//     writes a 64-byte result and returns, at the wasmjobs worker's default
//     concurrency;
//   - wasmjobs-langid is the worker as the wasmjobs command builds it, at its
//     default concurrency, running the langid guest on a sentence per job.
//
// Both sides enqueue the very same task messages (wasm:text, the sentence
// inline, retained 24 h; the first textJobs of BenchmarkRecordBatch's
// records): only the handler differs. worker-cpu-ms/job is
// the benchmark process's CPU time (user + system, Getrusage) over the
// timed part, per job; Redis runs in its own process and is not counted
// there but in redis-cpu-ms/job (from its INFO). wasmjobs-langid also
// reports of-asynq-noop, its jobs/s over asynq-noop's, when both ran.
func BenchmarkTextJobs(b *testing.B) {
	sentences := benchRecords(b, textJobs)
	concurrency := worker.Config{}.WithDefaults().Concurrency
	var rates [2]float64
	b.Run("asynq-noop", func(b *testing.B) {
		rates[0] = runTextJobs(b, sentences, func(b *testing.B, opt asynq.RedisClientOpt) (start, stop func()) {
			// A plain asynq server, with the worker's concurrency, queues
			// and timeouts; the queue never runs dry while it is timed, so
			// how an idle server waits does not count.
			srv := asynq.NewServer(opt, asynq.Config{
				Concurrency:              concurrency,
				Queues:                   map[string]int{"default": 1},
				ShutdownTimeout:          30 * time.Second,
				TaskCheckInterval:        time.Second,
				DelayedTaskCheckInterval: time.Second,
				LogLevel:                 asynq.WarnLevel,
			})
			result := []byte(strings.Repeat("r", 64))
			noop := asynq.HandlerFunc(func(_ context.Context, t *asynq.Task) error {
				_, err := t.ResultWriter().Write(result)
				return err
			})
			return func() {
				if err := srv.Start(noop); err != nil {
					b.Fatal(err)
				}
			}, srv.Shutdown
		})
	})
	b.Run("wasmjobs-langid", func(b *testing.B) {
		defer reportRatio(b, rates[:], "of-asynq-noop")
		rates[1] = runTextJobs(b, sentences, func(b *testing.B, opt asynq.RedisClientOpt) (start, stop func()) {
			store, _ := testenv.Store(b)
			w := newProductionWorker(b, opt, store)
			// The guest compiled and the model loaded, as after a worker's
			// first job.
			warm, _, err := jobs.NewTask(jobs.TypeText, jobs.Payload{Guest: "langid", Data: sentences[0]})
			if err != nil {
				b.Fatal(err)
			}
			if err := w.ProcessTask(testenv.Context(b, time.Minute), warm); err != nil {
				b.Fatal(err)
			}
			return func() {
				if err := w.Start(testenv.Context(b, time.Minute)); err != nil {
					b.Fatal(err)
				}
			}, w.Shutdown
		})
	})
}

// reportRatio reports rates[1] / rates[0], the wasmjobs side over its
// floor, when both sides ran.
func reportRatio(b *testing.B, rates []float64, unit string) {
	if rates[0] > 0 && rates[1] > 0 {
		b.ReportMetric(rates[1]/rates[0], unit)
	}
}

// runTextJobs, per iteration, sets up a side on a fresh Redis database,
// enqueues textJobs inline langid jobs, then times from start (which starts
// processing them) until all have completed. It reports jobs/s and
// worker-cpu-ms/job and returns the rate.
func runTextJobs(b *testing.B, sentences [][]byte, setup func(*testing.B, asynq.RedisClientOpt) (start, stop func())) float64 {
	var total, cpu, redisCPU time.Duration
	for range b.N {
		b.StopTimer()
		opt := testenv.Redis(b)
		start, stop := setup(b, opt)
		enqueueText(b, opt, sentences, textJobs)
		b.StartTimer()
		began, cpu0, redis0 := time.Now(), processCPU(b), redisServerCPU(b, opt)
		start()
		waitCompleted(b, opt, "default", textJobs)
		cpu += processCPU(b) - cpu0
		redisCPU += redisServerCPU(b, opt) - redis0
		total += time.Since(began)
		b.StopTimer()
		stop()
	}
	n := float64(b.N * textJobs)
	rate := n / total.Seconds()
	b.ReportMetric(rate, "jobs/s")
	b.ReportMetric(cpu.Seconds()*1000/n, "worker-cpu-ms/job")
	b.ReportMetric(redisCPU.Seconds()*1000/n, "redis-cpu-ms/job")
	return rate
}

// enqueueText enqueues n inline langid jobs, sentences in turn, in
// pipelined chunks.
func enqueueText(b *testing.B, opt asynq.RedisClientOpt, sentences [][]byte, n int) {
	client, err := jobs.NewClient(opt)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	ctx := testenv.Context(b, time.Minute)
	const chunk = 1000
	for i := 0; i < n; i += chunk {
		batch := make([]jobs.Job, 0, chunk)
		for j := i; j < min(i+chunk, n); j++ {
			batch = append(batch, jobs.Job{
				Type:    jobs.TypeText,
				Payload: jobs.Payload{Guest: "langid", Data: sentences[j%len(sentences)]},
				Options: []jobs.Option{jobs.Retention(resultRetention)},
			})
		}
		res, err := client.EnqueueMany(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
}

// waitCompleted polls the queue until n tasks have completed; an archived
// task fails the benchmark at once.
func waitCompleted(b *testing.B, opt asynq.RedisClientOpt, q string, n int64) {
	rc := redis.NewClient(&redis.Options{Addr: opt.Addr, DB: opt.DB})
	defer rc.Close()
	ctx := testenv.Context(b, 10*time.Minute)
	for {
		pipe := rc.Pipeline()
		done := pipe.ZCard(ctx, queue.QueuePrefix(q)+"completed")
		archived := pipe.ZCard(ctx, queue.QueuePrefix(q)+"archived")
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		if archived.Val() > 0 {
			b.Fatalf("%d tasks archived (failed)", archived.Val())
		}
		if done.Val() >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkSmallObjects processes a prefix of smallObjects small text
// objects in MinIO, S3 in and S3 out:
//
//   - s3-floor is what any worker must do per object, with minio-go at
//     floorConcurrency requests in flight and no queue, no guest: HEAD the
//     output key (not there yet), GET the input, PUT an output of the size
//     langid writes, with the metadata the worker writes;
//   - wasmjobs-batch is a batch of langid over the prefix, run as `wasmjobs
//     batch run --wait` runs it (create, plan: list and enqueue, wait for
//     the end, manifest) against a worker built as the wasmjobs command
//     builds it, at its default concurrency.
//
// Both report objects/s over the same objects, and wasmjobs-batch
// of-s3-floor, its objects/s over the floor's, when both ran.
func BenchmarkSmallObjects(b *testing.B) {
	store, bucket := testenv.Store(b)
	keys := putSmallObjects(b, store, bucket, benchSentences(b), smallObjects)
	var rates [2]float64
	b.Run("s3-floor", func(b *testing.B) {
		var total time.Duration
		for i := range b.N {
			began := time.Now()
			s3Floor(b, store, bucket, fmt.Sprintf("floor-%d/", i), keys)
			total += time.Since(began)
		}
		rates[0] = float64(b.N*len(keys)) / total.Seconds()
		b.ReportMetric(rates[0], "objects/s")
	})
	b.Run("wasmjobs-batch", func(b *testing.B) {
		defer reportRatio(b, rates[:], "of-s3-floor")
		var total time.Duration
		for i := range b.N {
			b.StopTimer()
			opt := testenv.Redis(b)
			w := newProductionWorker(b, opt, store)
			if err := w.Start(testenv.Context(b, time.Minute)); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			began := time.Now()
			runBatch(b, opt, store, w.Guests().Bucket(), bucket, fmt.Sprintf("batch-%d/", i), len(keys))
			total += time.Since(began)
			b.StopTimer()
			w.Shutdown()
		}
		rates[1] = float64(b.N*len(keys)) / total.Seconds()
		b.ReportMetric(rates[1], "objects/s")
	})
}

// putSmallObjects writes n objects under "texts/", sentences in turn, and
// returns their keys.
func putSmallObjects(b *testing.B, store *blob.Store, bucket string, sentences [][]byte, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("texts/%05d.txt", i)
	}
	ctx := testenv.Context(b, 5*time.Minute)
	forEach(b, 16, keys, func(i int, key string) error {
		return store.Put(ctx, s3url.ObjectURL{Bucket: bucket, Key: key}, sentences[i%len(sentences)], "text/plain", nil)
	})
	return keys
}

// s3Floor does a worker's S3 requests for each key, at floorConcurrency.
func s3Floor(b *testing.B, store *blob.Store, bucket, outPrefix string, keys []string) {
	ctx := testenv.Context(b, 10*time.Minute)
	output := []byte(`{"languages":[{"lang":"en","prob":0.9876},{"lang":"de","prob":0.0042},{"lang":"nl","prob":0.0017}]}`)
	forEach(b, floorConcurrency, keys, func(i int, key string) error {
		out := s3url.ObjectURL{Bucket: bucket, Key: outPrefix + key + ".langid.json"}
		if _, err := store.Stat(ctx, out); !errors.Is(err, blob.ErrNotFound) {
			return fmt.Errorf("stat %s: %v", out, err)
		}
		if _, _, err := store.Get(ctx, s3url.ObjectURL{Bucket: bucket, Key: key}, 64<<20); err != nil {
			return err
		}
		md := map[string]string{worker.MetaTaskID: fmt.Sprintf("floor-%d", i), worker.MetaGuest: "sha256:0"}
		return store.Put(ctx, out, output, "application/json", md)
	})
}

// runBatch runs a langid batch over bucket's "texts/" prefix as `wasmjobs
// batch run --wait` does, and checks that every object was done.
func runBatch(b *testing.B, opt asynq.RedisClientOpt, store *blob.Store, guestBucket, bucket, outPrefix string, n int) {
	ctx := testenv.Context(b, 10*time.Minute)
	c, err := batch.NewClient(opt)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	spec, err := batch.Spec{
		Guest:  "langid",
		Type:   "text",
		Input:  "s3://" + bucket + "/texts/",
		Output: "s3://" + bucket + "/" + outPrefix,
	}.WithDefaults()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.CreateBatch(ctx, spec); err != nil {
		b.Fatal(err)
	}
	access := batch.Access{GuestBucket: guestBucket}
	if _, err := batch.Plan(ctx, c, store, spec, batch.PlanConfig{ChunkSize: 1000, Access: access}); err != nil {
		b.Fatal(err)
	}
	st, err := batch.Wait(ctx, c, spec.ID, 200*time.Millisecond, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := batch.EnsureManifest(ctx, c, store, spec.ID, access); err != nil {
		b.Fatal(err)
	}
	if st.Done != int64(n) {
		b.Fatalf("batch: %d of %d objects done, %d failed (%s)", st.Done, n, st.Failed, st.Error)
	}
}

// newProductionWorker returns a worker on opt and store configured as
// `wasmjobs worker --model langid=models/lid.176.ftz` configures it (the
// flags' defaults: 256 MiB guests, 60 s guest timeout, 64 MiB inputs and
// outputs, 1 MiB results, batch recording and planning, text logs at info),
// not started, with the langid guest pushed.
func newProductionWorker(b *testing.B, opt asynq.RedisClientOpt, store *blob.Store) *worker.Worker {
	b.Helper()
	models := testenv.ModelsDir(b)
	bc, err := batch.NewClient(opt)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bc.Close() })
	guestBucket := testenv.NewBucket(b, store)
	access := batch.Access{GuestBucket: guestBucket}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return testworker.New(b, worker.Config{
		Redis:       opt,
		Store:       store,
		GuestBucket: guestBucket,
		Sandbox:     sandbox.Config{CacheDir: b.TempDir(), MemoryLimitPages: 256 * 16},
		NN: &nn.Config{
			Models:         map[string]nn.Model{"langid": {Path: filepath.Join(models, "lid.176.ftz")}},
			Backends:       map[string]nn.Backend{"fasttext": fasttext.New()},
			MaxTensorBytes: 128 << 20,
			MaxContexts:    16,
			MaxGraphs:      16,
			Logger:         logger,
		},
		MaxInputBytes:  64 << 20,
		MaxOutputBytes: 64 << 20,
		MaxResultBytes: 1 << 20,
		GuestTimeout:   60 * time.Second,
		OutputPrefix:   s3url.ObjectURL{Key: "results"},
		PollInterval:   time.Second,
		BatchRecorder:  &batch.Recorder{Client: bc, Store: store, Logger: logger, Access: access},
		BatchPlanner:   &batch.PlanHandler{Client: bc, Store: store, Config: batch.PlanConfig{Access: access}},
		Logger:         logger,
	}, map[string][]byte{"langid": guests.Langid})
}

// benchSentences are the fastText tests' sentences, in many languages.
func benchSentences(b *testing.B) [][]byte {
	f, err := os.Open(filepath.Join(testenv.RepoRoot(b), "internal/nn/fasttext/testdata/sentences.txt"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if _, text, ok := strings.Cut(sc.Text(), "\t"); ok && !strings.HasPrefix(sc.Text(), "#") && text != "" {
			out = append(out, []byte(text))
		}
	}
	if err := sc.Err(); err != nil || len(out) == 0 {
		b.Fatalf("sentences: %v (%d)", err, len(out))
	}
	return out
}

// forEach calls fn for every key from n goroutines; the first error fails
// the benchmark.
func forEach(b *testing.B, n int, keys []string, fn func(i int, key string) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(keys) {
					return
				}
				if err := fn(i, keys[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// redisServerCPU is the CPU time the Redis server has used so far, user
// and system, as its INFO reports it.
func redisServerCPU(b *testing.B, opt asynq.RedisClientOpt) time.Duration {
	rc := redis.NewClient(&redis.Options{Addr: opt.Addr, DB: opt.DB})
	defer rc.Close()
	info, err := rc.Info(testenv.Context(b, 10*time.Second), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			s, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("redis INFO %s: %v", line, err)
			}
			total += s
		}
	}
	return time.Duration(total * float64(time.Second))
}

// processCPU is the process's CPU time so far, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLangidJob is the worker's side of one inline langid job without
// Redis: the handler as the wasmjobs command builds it, from the task's
// payload to the result (which, without a result writer, goes nowhere).
// cpu-µs/job is the process's CPU time per job (the benchmark runs one job
// at a time; the worker's background loops count too), faults/job its minor
// page faults, most of them guest memory.
func BenchmarkLangidJob(b *testing.B) {
	sentences := benchSentences(b)
	store, _ := testenv.Store(b)
	w := newProductionWorker(b, testenv.Redis(b), store)
	tasks := make([]*asynq.Task, len(sentences))
	for i, s := range sentences {
		var err error
		if tasks[i], _, err = jobs.NewTask(jobs.TypeText, jobs.Payload{Guest: "langid", Data: s}); err != nil {
			b.Fatal(err)
		}
	}
	ctx := testenv.Context(b, 10*time.Minute)
	if err := w.ProcessTask(ctx, tasks[0]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	f0, cpu0 := minorFaults(b), processCPU(b)
	i := 0
	for b.Loop() {
		if err := w.ProcessTask(ctx, tasks[i%len(tasks)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/1000/float64(b.N), "cpu-µs/job")
	b.ReportMetric(float64(minorFaults(b)-f0)/float64(b.N), "faults/job")
}

// minorFaults is the process's minor page faults so far.
func minorFaults(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Minflt
}
