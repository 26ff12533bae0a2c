package e2e_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/guests/guesttest"
	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/nn/onnx"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// recorder keeps the tensors that went through one model: the inputs a
// guest set and the outputs it read back.
type recorder struct {
	mu      sync.Mutex
	inputs  []nn.Tensor
	outputs []nn.Tensor
}

type recordingBackend struct {
	nn.Backend
	model string // file name whose traffic is recorded
	rec   *recorder
}

func (b *recordingBackend) LoadFile(ctx context.Context, path string) (nn.Graph, error) {
	g, err := b.Backend.LoadFile(ctx, path)
	if err != nil || filepath.Base(path) != b.model {
		return g, err
	}
	return &recordingGraph{Graph: g, rec: b.rec}, nil
}

type recordingGraph struct {
	nn.Graph
	rec *recorder
}

func (g *recordingGraph) NewContext() (nn.ExecContext, error) {
	c, err := g.Graph.NewContext()
	return &recordingContext{ExecContext: c, rec: g.rec}, err
}

type recordingContext struct {
	nn.ExecContext
	rec *recorder
}

func cloneTensor(t nn.Tensor) nn.Tensor {
	return nn.Tensor{Type: t.Type, Dims: append([]uint32(nil), t.Dims...), Data: append([]byte(nil), t.Data...)}
}

func (c *recordingContext) SetInput(i uint32, t nn.Tensor) error {
	c.rec.mu.Lock()
	c.rec.inputs = append(c.rec.inputs, cloneTensor(t))
	c.rec.mu.Unlock()
	return c.ExecContext.SetInput(i, t)
}

func (c *recordingContext) Output(i uint32) (nn.Tensor, error) {
	t, err := c.ExecContext.Output(i)
	if err == nil {
		c.rec.mu.Lock()
		c.rec.outputs = append(c.rec.outputs, cloneTensor(t))
		c.rec.mu.Unlock()
	}
	return t, err
}

func newONNX(t testing.TB, window time.Duration, maxBatch int) *onnx.Backend {
	t.Helper()
	b, err := onnx.New(onnx.Config{LibraryPath: filepath.Join(testenv.ModelsDir(t), "libonnxruntime.so.1"), Device: onnx.DeviceCPU,
		BatchWindow: window, MaxBatch: maxBatch})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Probe(); err != nil {
		t.Fatal(err)
	}
	return b
}

func floats(t testing.TB, tensor nn.Tensor) []float32 {
	t.Helper()
	if tensor.Type != nn.F32 || len(tensor.Data)%4 != 0 {
		t.Fatalf("want an f32 tensor, got type %v with %d bytes", tensor.Type, len(tensor.Data))
	}
	out := make([]float32, len(tensor.Data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(tensor.Data[4*i:]))
	}
	return out
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// TestGuestRecognitionMatchesGo runs the ocr guest on one rendered line,
// records the tensor it gives the recognition model and the output it reads
// back, runs the same model directly from Go on that tensor, and requires the
// same output (within 1e-4) and the same text when CTC-decoded in Go.
func TestGuestRecognitionMatchesGo(t *testing.T) {
	dir := testenv.ModelsDir(t)
	recFile := modelFiles["ocr-rec"]
	rec := &recorder{}
	models := map[string]nn.Model{}
	for name, file := range modelFiles {
		if !strings.HasPrefix(name, "ocr-") {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
			if os.Getenv(testenv.EnvRequire) == "1" {
				t.Fatalf("model %s: %v", name, err)
			}
			t.Skipf("model %s: %v", name, err)
		}
		models[name] = nn.Model{Path: filepath.Join(dir, file)}
	}
	mod, err := nn.New(nn.Config{Models: models, Backends: map[string]nn.Backend{
		"onnx": &recordingBackend{Backend: newONNX(t, 0, 1), model: recFile, rec: rec},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close()
	rt := newRuntime(t, mod)
	const line = "Sandboxed guests 2026: 7 jobs/s"
	res, err := runGuest(t, rt, guests.OCR, encodePNG(t, renderLines(t, []string{line}, 0, 44)), nil)
	if err != nil {
		t.Fatal(err)
	}
	var out ocrResult
	if err := json.Unmarshal(res.Stdout, &out); err != nil || len(out.Lines) != 1 {
		t.Fatalf("ocr output %s (%v): want one line", res.Stdout, err)
	}
	rec.mu.Lock()
	inputs, outputs := rec.inputs, rec.outputs
	rec.mu.Unlock()
	if len(inputs) != 1 || len(outputs) != 1 {
		t.Fatalf("recorded %d inputs and %d outputs of the recognition model, want 1 each", len(inputs), len(outputs))
	}
	in := inputs[0]
	if len(in.Dims) != 4 || in.Dims[0] != 1 || in.Dims[1] != 3 || in.Dims[2] != 48 || in.Dims[3]%8 != 0 {
		t.Fatalf("recognition input dims %v, want [1 3 48 W] with W a multiple of 8", in.Dims)
	}

	// The same model, straight from Go, on the same tensor.
	direct := newONNX(t, 0, 1)
	g, err := direct.LoadFile(context.Background(), filepath.Join(dir, recFile))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ec, err := g.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	if err := ec.SetInput(0, in); err != nil {
		t.Fatal(err)
	}
	if err := ec.Compute(context.Background()); err != nil {
		t.Fatal(err)
	}
	want, err := ec.Output(0)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(want.Dims) != fmt.Sprint(outputs[0].Dims) {
		t.Fatalf("output dims: guest saw %v, Go got %v", outputs[0].Dims, want.Dims)
	}
	gf, wf := floats(t, outputs[0]), floats(t, want)
	if d := maxDiff(gf, wf); d > 1e-4 {
		t.Fatalf("guest's recognition output differs from Go's by %g (> 1e-4)", d)
	}

	// Greedy CTC decoding of Go's output gives the guest's text.
	keys, err := os.ReadFile(filepath.Join(dir, modelFiles["ocr-keys"]))
	if err != nil {
		t.Fatal(err)
	}
	dict := append([]string{""}, strings.Split(strings.TrimRight(string(keys), "\n"), "\n")...)
	dict = append(dict, " ")
	steps, classes := int(want.Dims[1]), int(want.Dims[2])
	if classes != len(dict) {
		t.Fatalf("model has %d classes, dictionary %d", classes, len(dict))
	}
	var text strings.Builder
	prev := 0
	for s := range steps {
		best := 0
		for c := 1; c < classes; c++ {
			if wf[s*classes+c] > wf[s*classes+best] {
				best = c
			}
		}
		if best != 0 && best != prev {
			text.WriteString(dict[best])
		}
		prev = best
	}
	if text.String() != out.Lines[0].Text {
		t.Fatalf("Go's CTC decoding gives %q, the guest said %q", text.String(), out.Lines[0].Text)
	}
	if out.Lines[0].Text != line {
		t.Logf("note: recognised %q for %q", out.Lines[0].Text, line)
	}
}

// TestConcurrentGuestsShareBatchedRuns runs 16 guest instances at once, each
// computing the direction classifier on its own tensor through WASI-NN, with
// dynamic batching on: ONNX Runtime runs fewer times than there were
// computes, and every guest's output equals the unbatched one.
func TestConcurrentGuestsShareBatchedRuns(t *testing.T) {
	dir := testenv.ModelsDir(t)
	clsPath := filepath.Join(dir, modelFiles["ocr-cls"])
	if _, err := os.Stat(clsPath); err != nil {
		if os.Getenv(testenv.EnvRequire) == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	batched := newONNX(t, 100*time.Millisecond, 16)
	mod, err := nn.New(nn.Config{Models: map[string]nn.Model{"ocr-cls": {Path: clsPath}}, Backends: map[string]nn.Backend{"onnx": batched}})
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close()
	if err := mod.Preload(context.Background()); err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, mod)
	m, err := rt.Compile(context.Background(), guesttest.NNRun, "")
	if err != nil {
		t.Fatal(err)
	}
	const n, size = 16, 3 * 48 * 192
	inputs := make([][]byte, n)
	for i := range inputs {
		b := make([]byte, 4*size)
		for j := range size {
			v := float32(math.Sin(float64(i*7919+j)*0.001)) * 0.9
			binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(v))
		}
		inputs[i] = b
	}
	params := map[string]string{"model": "ocr-cls", "dims": "1,3,48,192", "out": "64"}
	outs := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := rt.Run(context.Background(), m, sandbox.RunOptions{Stdin: inputs[i], Params: params, Timeout: time.Minute})
			if err == nil {
				outs[i] = res.Stdout
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("guest %d: %v", i, err)
		}
	}
	st := batched.Stats()
	t.Logf("16 guests: %d computes, %d ONNX Runtime runs, %d merged", st.Computes, st.Runs, st.BatchedComputes)
	if st.Computes != n || st.Runs >= st.Computes {
		t.Fatalf("stats %+v: want %d computes in fewer runs", st, n)
	}

	// Unbatched reference, one compute per input.
	plain := newONNX(t, 0, 1)
	g, err := plain.LoadFile(context.Background(), clsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for i := range n {
		ec, err := g.NewContext()
		if err != nil {
			t.Fatal(err)
		}
		if err := ec.SetInput(0, nn.Tensor{Type: nn.F32, Dims: []uint32{1, 3, 48, 192}, Data: inputs[i]}); err != nil {
			t.Fatal(err)
		}
		if err := ec.Compute(context.Background()); err != nil {
			t.Fatal(err)
		}
		want, err := ec.Output(0)
		ec.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := nn.Tensor{Type: nn.F32, Data: outs[i]}
		if len(outs[i]) != len(want.Data) {
			t.Fatalf("guest %d: %d output bytes, want %d", i, len(outs[i]), len(want.Data))
		}
		if d := maxDiff(floats(t, got), floats(t, want)); d > 1e-4 {
			t.Fatalf("guest %d: batched output differs from unbatched by %g", i, d)
		}
	}
}
