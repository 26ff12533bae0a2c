// Package e2e_test checks the shipped inference guests end to end: jobs go
// through Redis to a worker, which runs the guest in the sandbox with the
// wasi_ephemeral_nn host module (ONNX Runtime, fastText), reads inputs from
// and writes outputs to S3 (MinIO). The accuracy bars are product
// requirements: OCR character accuracy ≥ 98% on rendered text, language
// identification ≥ 95% top-1.
//
// The tests need the models (`make models`) and, for the full path, Redis and
// MinIO (`make test`). Without them they skip; with WASMJOBS_TEST_REQUIRE=1
// they fail.
package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/nn/fasttext"
	"github.com/wasmjobs/wasmjobs/internal/nn/onnx"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/internal/testworker"
	"github.com/wasmjobs/wasmjobs/internal/worker"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// modelFiles are the models the shipped guests load by name, as a worker
// registers them (`--model NAME=FILE`).
var modelFiles = map[string]string{
	"ocr-det":  "ch_PP-OCRv4_det_infer.onnx",
	"ocr-cls":  "ch_ppocr_mobile_v2.0_cls_infer.onnx",
	"ocr-rec":  "ch_PP-OCRv4_rec_infer.onnx",
	"ocr-keys": "ppocr_keys_v1.txt",
	"langid":   "lid.176.ftz",
}

// newNN returns the wasi_ephemeral_nn host module with every model
// registered, on ONNX Runtime's CPU provider.
func newNN(t testing.TB) *nn.Module {
	t.Helper()
	return newNNWith(t, nil)
}

// newNNWith is newNN with the module's config changed by edit first.
func newNNWith(t testing.TB, edit func(*nn.Config)) *nn.Module {
	t.Helper()
	dir := testenv.ModelsDir(t)
	models := map[string]nn.Model{}
	for name, file := range modelFiles {
		path := filepath.Join(dir, file)
		if _, err := os.Stat(path); err != nil {
			if os.Getenv(testenv.EnvRequire) == "1" {
				t.Fatalf("model %s: %v; run `make models`", name, err)
			}
			t.Skipf("model %s: %v: run `make models`", name, err)
		}
		models[name] = nn.Model{Path: path}
	}
	ob, err := onnx.New(onnx.Config{LibraryPath: filepath.Join(dir, "libonnxruntime.so.1"), Device: onnx.DeviceCPU})
	if err != nil {
		t.Fatal(err)
	}
	cfg := nn.Config{
		Models:   models,
		Backends: map[string]nn.Backend{"onnx": ob, "fasttext": fasttext.New()},
	}
	if edit != nil {
		edit(&cfg)
	}
	mod, err := nn.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mod.Close() })
	if err := mod.Preload(testenv.Context(t, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	return mod
}

// newRuntime returns a sandbox runtime with the nn host module.
func newRuntime(t testing.TB, mod *nn.Module) *sandbox.Runtime {
	t.Helper()
	rt, err := sandbox.New(context.Background(), sandbox.Config{
		CacheDir:    t.TempDir(),
		HostModules: []sandbox.HostModule{mod},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

// runGuest runs a guest once in the sandbox, as `wasmjobs run` does.
func runGuest(t testing.TB, rt *sandbox.Runtime, wasm, input []byte, params map[string]string) (*sandbox.Result, error) {
	t.Helper()
	m, err := rt.Compile(context.Background(), wasm, "")
	if err != nil {
		t.Fatal(err)
	}
	return rt.Run(context.Background(), m, sandbox.RunOptions{Stdin: input, Params: params, Timeout: time.Minute})
}

// pipeline is a worker on the test Redis and MinIO with the shipped guests
// registered and the nn host module in its sandbox.
type pipeline struct {
	redis  asynq.RedisClientOpt
	store  *blob.Store
	bucket string // data bucket
	client *jobs.Client
	worker *worker.Worker
}

func newPipeline(t testing.TB, concurrency int) *pipeline {
	t.Helper()
	p := &pipeline{redis: testenv.Redis(t)}
	p.store, p.bucket = testenv.Store(t)
	// The module is preloaded and closed by the test, after the worker.
	p.worker = testworker.Start(t, worker.Config{Redis: p.redis, Store: p.store, Concurrency: concurrency,
		Sandbox: sandbox.Config{CacheDir: t.TempDir(), HostModules: []sandbox.HostModule{newNN(t)}}}, guests.Builtin())
	var err error
	if p.client, err = jobs.NewClient(p.redis); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.client.Close() })
	return p
}

func (p *pipeline) put(t testing.TB, key string, data []byte, contentType string) string {
	t.Helper()
	u := s3url.ObjectURL{Bucket: p.bucket, Key: key}
	if err := p.store.Put(context.Background(), u, data, contentType, nil); err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// output waits for an S3-input job and returns its output object.
func (p *pipeline) output(t testing.TB, ctx context.Context, info *jobs.TaskInfo) []byte {
	t.Helper()
	res, err := p.client.Wait(ctx, info.Queue, info.ID)
	if err != nil {
		t.Fatalf("job %s: %v", info.ID, err)
	}
	var sum worker.Summary
	if err := jsonUnmarshal(res, &sum); err != nil {
		t.Fatalf("job %s summary %s: %v", info.ID, res, err)
	}
	u, err := s3url.ParseObjectURL(sum.Output)
	if err != nil {
		t.Fatalf("job %s output %q: %v", info.ID, sum.Output, err)
	}
	out, _, err := p.store.Get(ctx, u, 1<<20)
	if err != nil {
		t.Fatalf("job %s output: %v", info.ID, err)
	}
	return out
}
