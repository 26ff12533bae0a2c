package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// minBenchAccuracy is the character accuracy the wasmjobs path must keep on
// the benchmark's line images.
const minBenchAccuracy = 0.99

// ocrSet is the benchmark's images: the line images, then the pages.
type ocrSet struct {
	images []ocrCase
	lines  int // images[:lines] are single lines, scored for accuracy
}

func newOCRSet(tb testing.TB) ocrSet {
	tb.Helper()
	s := ocrSet{images: ocrCases(tb, 200), lines: 200}
	for _, p := range pageCases(tb) {
		s.images = append(s.images, p.ocrCase)
	}
	return s
}

// warmUp is a few of the images, pages included: what a run does before
// it is timed.
func (s ocrSet) warmUp() []int {
	return append([]int{0, 1, 2, 3}, s.lines, len(s.images)-1)
}

// all is every image's index.
func (s ocrSet) all() []int {
	all := make([]int, len(s.images))
	for i := range all {
		all[i] = i
	}
	return all
}

// charAccuracy is 1 − Σ edit distance / Σ characters over the line images,
// given the OCR outputs of all images.
func (s ocrSet) charAccuracy(outputs [][]byte) (float64, error) {
	var dist, total int
	for i, c := range s.images[:s.lines] {
		var r ocrResult
		if err := json.Unmarshal(outputs[i], &r); err != nil {
			return 0, fmt.Errorf("image %d: output %s: %w", i, outputs[i], err)
		}
		dist += levenshtein(c.text, r.text())
		total += len([]rune(c.text))
	}
	return 1 - float64(dist)/float64(total), nil
}

// BenchmarkOCRPipeline reads one image set — the 200 rendered lines of
// TestOCRAccuracy and the two pages of TestOCRPage — two ways, each round
// (b.N) reading every image once:
//
//   - native: nativeOCR, the ocr guest's pipeline ported to Go, on 2
//     goroutines sharing one ONNX Runtime session per model. The baseline.
//   - wasmjobs: what a user runs. The images are in MinIO; a `wasmjobs
//     worker` process at its default concurrency runs the ocr guest; the
//     jobs (S3 input, S3 output) are enqueued with the jobs client and
//     waited for. Needs Redis and MinIO.
//
// Warm-up (guest compile, model loads, first runs) is not timed. Metrics:
//
//	images/s               images read per second of wall time
//	cpu-ms/image           CPU time (user + system) per image of the process doing
//	                       the work: this one for native (getrusage), the worker for
//	                       wasmjobs (/proc/PID/stat)
//	char-accuracy          1 − Σ edit distance / Σ characters on the line images;
//	                       wasmjobs fails below 0.99
//	concurrency            (wasmjobs) jobs the worker runs at once, from its asynq
//	                       server record
//	peak-RSS-MiB           (wasmjobs) the worker's VmHWM, warm-up included
//	guest-ms/job           (wasmjobs) wasmjobs_guest_run_seconds sum / count over the
//	                       timed rounds: instantiate, run and close one guest
//	inference-ms/job       (wasmjobs) wasmjobs_inference_seconds sum (all models) / jobs:
//	                       WASI-NN compute calls, waits for the backend's running-input
//	                       budget included
//	                       (both are wall times: with more jobs than cores they include
//	                       time the job's thread waited for a core)
//	outside-inference-pct  (wasmjobs) (guest-run sum − inference sum) / guest-run sum
//	                       × 100: the share of guest time not in inference (decoding,
//	                       resizing, post-processing and CTC in Wasm, host calls,
//	                       sandbox set-up). Wall time per job at concurrency 1 would be
//	                       the cleaner base, but the worker runs several jobs at once.
//
// One round is enough for numbers: go test ./e2e -run '^$' -bench BenchmarkOCRPipeline -benchtime 1x
func BenchmarkOCRPipeline(b *testing.B) {
	set := newOCRSet(b)
	b.Run("native", func(b *testing.B) { benchmarkNative(b, set) })
	b.Run("wasmjobs", func(b *testing.B) { benchmarkWasmjobs(b, set) })
}

func benchmarkNative(b *testing.B, set ocrSet) {
	const goroutines = 2
	o := newNativeOCR(b)
	ctx := context.Background()
	outputs := make([][]byte, len(set.images))
	read := func(indices []int) error {
		return parallel(goroutines, len(indices), func(k int) error {
			i := indices[k]
			out, err := o.ocr(ctx, set.images[i].image)
			if err != nil {
				return fmt.Errorf("image %d: %w", i, err)
			}
			outputs[i] = out
			return nil
		})
	}
	if err := read(set.warmUp()); err != nil {
		b.Fatal(err)
	}
	cpu := processCPU(b)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := read(set.all()); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	cpu = processCPU(b) - cpu
	b.StopTimer()
	acc, err := set.charAccuracy(outputs)
	if err != nil {
		b.Fatal(err)
	}
	n := float64(b.N * len(set.images))
	b.ReportMetric(n/elapsed.Seconds(), "images/s")
	b.ReportMetric(msPer(cpu, n), "cpu-ms/image")
	b.ReportMetric(acc, "char-accuracy")
}

// startOCRWorker builds the CLI, registers the shipped guests and starts a
// `wasmjobs worker` with the shipped models and the extra flags: the OCR
// benchmarks' worker, stopped when the benchmark ends.
func startOCRWorker(b *testing.B, ctx context.Context, redis asynq.RedisClientOpt, store *blob.Store, extra ...string) *exec.Cmd {
	b.Helper()
	testenv.ModelsDir(b)
	models := modelsArgs(b)
	if models == nil {
		b.Fatal("no models/models.json: run `make models`")
	}
	cli := buildCLI(b, ctx, redis, testenv.NewBucket(b, store))
	cli.run(b, ctx, pushBuiltin(b)...)
	return cli.startWorker(b, ctx, append(extra, models...)...)
}

func benchmarkWasmjobs(b *testing.B, set ocrSet) {
	redis := testenv.Redis(b)
	store, bucket := testenv.Store(b)
	ctx := testenv.Context(b, 30*time.Minute)
	metricsAddr := freeLoopbackAddr(b)
	// No --concurrency: the default is what is measured.
	worker := startOCRWorker(b, ctx, redis, store, "--metrics-addr", metricsAddr)
	pid := worker.Process.Pid

	client, err := jobs.NewClient(redis)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	inputs := make([]s3url.ObjectURL, len(set.images))
	for i, c := range set.images {
		key, ct := fmt.Sprintf("in/%03d.jpg", i), "image/jpeg"
		if c.png {
			key, ct = fmt.Sprintf("in/%03d.png", i), "image/png"
		}
		inputs[i] = s3url.ObjectURL{Bucket: bucket, Key: key}
		if err := store.Put(ctx, inputs[i], c.image, ct, nil); err != nil {
			b.Fatal(err)
		}
	}
	// readAll enqueues one job per image (output under prefix) and waits
	// for all of them.
	readAll := func(indices []int, prefix string) []s3url.ObjectURL {
		batch := make([]jobs.Job, len(indices))
		outs := make([]s3url.ObjectURL, len(indices))
		for k, i := range indices {
			outs[k] = s3url.ObjectURL{Bucket: bucket, Key: fmt.Sprintf("%s/%03d.json", prefix, i)}
			batch[k] = jobs.Job{Type: jobs.TypeImage, Payload: jobs.Payload{Guest: "ocr", Input: inputs[i].String(), Output: outs[k].String()},
				Options: []jobs.Option{jobs.Retention(time.Hour)}}
		}
		res, err := client.EnqueueMany(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		for k, r := range res {
			if r.Err != nil {
				b.Fatalf("enqueue image %d: %v", indices[k], r.Err)
			}
		}
		for k, r := range res {
			if _, err := client.Wait(ctx, r.Info.Queue, r.Info.ID); err != nil {
				b.Fatalf("image %d: %v", indices[k], err)
			}
		}
		return outs
	}
	readAll(set.warmUp(), "warm-up")
	concurrency := serverConcurrency(b, redis, pid)

	before, cpu := scrapeWorkerMetrics(b, ctx, metricsAddr), procCPU(b, pid)
	b.ResetTimer()
	start := time.Now()
	var last []s3url.ObjectURL
	for round := range b.N {
		last = readAll(set.all(), fmt.Sprintf("out/%d", round))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cpu = procCPU(b, pid) - cpu
	after := scrapeWorkerMetrics(b, ctx, metricsAddr)
	peak := procStatus(b, pid, "VmHWM")

	outputs := make([][]byte, len(last))
	for i, u := range last {
		if outputs[i], _, err = store.Get(ctx, u, 1<<20); err != nil {
			b.Fatalf("image %d output: %v", i, err)
		}
	}
	acc, err := set.charAccuracy(outputs)
	if err != nil {
		b.Fatal(err)
	}
	if acc < minBenchAccuracy {
		b.Fatalf("character accuracy %.4f < %.2f", acc, minBenchAccuracy)
	}
	n := float64(b.N * len(set.images))
	guestRuns := after.guestRuns - before.guestRuns
	guestSec := after.guestSeconds - before.guestSeconds
	inferenceSec := after.inferenceSeconds - before.inferenceSeconds
	if guestRuns != n || guestSec <= 0 {
		b.Fatalf("the worker's metrics count %.0f guest runs (%.3f s) in the timed rounds, want %.0f", guestRuns, guestSec, n)
	}
	b.ReportMetric(n/elapsed.Seconds(), "images/s")
	b.ReportMetric(msPer(cpu, n), "cpu-ms/image")
	b.ReportMetric(acc, "char-accuracy")
	b.ReportMetric(float64(concurrency), "concurrency")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(1000*guestSec/guestRuns, "guest-ms/job")
	b.ReportMetric(1000*inferenceSec/guestRuns, "inference-ms/job")
	b.ReportMetric(100*(guestSec-inferenceSec)/guestSec, "outside-inference-pct")
}

func msPer(d time.Duration, n float64) float64 { return float64(d) / float64(time.Millisecond) / n }

// processCPU is this process's user + system CPU time.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is a process's user + system CPU time from /proc/PID/stat.
func procCPU(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Field 2, the command, is in parentheses and may hold spaces; utime
	// and stime are fields 14 and 15, in clock ticks of USER_HZ, which
	// Linux fixes at 100 per second.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	var ticks int64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			tb.Fatalf("/proc/%d/stat: %v", pid, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * (time.Second / 100)
}

// freeLoopbackAddr returns a loopback address with a port free just now.
func freeLoopbackAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serverConcurrency is the concurrency of the asynq server in process pid,
// as it records itself in Redis.
func serverConcurrency(tb testing.TB, redis asynq.RedisClientOpt, pid int) int {
	tb.Helper()
	insp := asynq.NewInspector(redis)
	defer insp.Close()
	servers, err := insp.Servers()
	if err != nil {
		tb.Fatal(err)
	}
	i := slices.IndexFunc(servers, func(s *asynq.ServerInfo) bool { return s.PID == pid })
	if i < 0 {
		tb.Fatalf("no asynq server of process %d among %d in Redis", pid, len(servers))
	}
	return servers[i].Concurrency
}

// workerMetrics are the totals the benchmark reads from a worker's /metrics.
type workerMetrics struct {
	guestRuns, guestSeconds float64 // wasmjobs_guest_run_seconds count and sum
	inferenceSeconds        float64 // wasmjobs_inference_seconds sum
}

func scrapeWorkerMetrics(tb testing.TB, ctx context.Context, addr string) workerMetrics {
	tb.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("worker /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("worker /metrics: %v", err)
	}
	var m workerMetrics
	for _, s := range fams["wasmjobs_guest_run_seconds"].GetMetric() {
		m.guestRuns += float64(s.GetHistogram().GetSampleCount())
		m.guestSeconds += s.GetHistogram().GetSampleSum()
	}
	for _, s := range fams["wasmjobs_inference_seconds"].GetMetric() {
		m.inferenceSeconds += s.GetHistogram().GetSampleSum()
	}
	return m
}
