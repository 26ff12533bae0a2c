package onnx_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/nn/nntest"
	"github.com/wasmjobs/wasmjobs/internal/nn/onnx"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

const (
	clsModel = "ch_ppocr_mobile_v2.0_cls_infer.onnx"
	recModel = "ch_PP-OCRv4_rec_infer.onnx"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newBackend(tb testing.TB, cfg onnx.Config) (*onnx.Backend, string) {
	tb.Helper()
	dir := testenv.ModelsDir(tb)
	cfg.LibraryPath = filepath.Join(dir, "libonnxruntime.so.1")
	if cfg.Device == "" {
		cfg.Device = onnx.DeviceCPU
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	b, err := onnx.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return b, dir
}

func load(tb testing.TB, b *onnx.Backend, path string) nn.Graph {
	tb.Helper()
	g, err := b.LoadFile(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Close() })
	return g
}

func TestCls(t *testing.T) {
	t.Parallel()
	b, dir := newBackend(t, onnx.Config{})
	g := load(t, b, filepath.Join(dir, clsModel))
	out := nntest.Compute(t, g, nntest.Image(0, 192))
	if out.Type != nn.F32 || len(out.Dims) != 2 || out.Dims[0] != 1 || out.Dims[1] != 2 {
		t.Fatalf("output %s %v", out.Type, out.Dims)
	}
	p0 := math.Float32frombits(binary.LittleEndian.Uint32(out.Data))
	p1 := math.Float32frombits(binary.LittleEndian.Uint32(out.Data[4:]))
	if math.Abs(float64(p0+p1-1)) > 1e-4 {
		t.Fatalf("softmax output %v %v does not sum to 1", p0, p1)
	}
}

func TestBadInputs(t *testing.T) {
	t.Parallel()
	b, dir := newBackend(t, onnx.Config{})
	g := load(t, b, filepath.Join(dir, clsModel))
	c, _ := g.NewContext()
	defer c.Close()
	if err := c.Compute(context.Background()); !errors.Is(err, nn.ErrInvalidArgument) {
		t.Errorf("compute before set_input: %v", err)
	}
	in := nntest.Image(0, 192)
	for name, tn := range map[string]nn.Tensor{
		"wrong type": {Type: nn.U8, Dims: in.Dims, Data: in.Data[:len(in.Data)/4]},
		"wrong rank": {Type: nn.F32, Dims: []uint32{3, 48, 192}, Data: in.Data},
		"wrong dim":  {Type: nn.F32, Dims: []uint32{1, 4, 48, 144}, Data: in.Data},
	} {
		if err := c.SetInput(0, tn); !errors.Is(err, nn.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := c.SetInput(1, in); !errors.Is(err, nn.ErrInvalidArgument) {
		t.Errorf("input 1: %v", err)
	}
	if _, err := c.Output(0); !errors.Is(err, nn.ErrInvalidArgument) {
		t.Errorf("output before compute: %v", err)
	}
	if _, err := b.LoadBytes(context.Background(), []byte("not onnx")); !errors.Is(err, nn.ErrInvalidEncoding) {
		t.Errorf("LoadBytes garbage: %v", err)
	}
}

// TestConcurrentContexts runs 16 contexts on one graph at once (run with
// -race): each gets the result of running alone.
func TestConcurrentContexts(t *testing.T) {
	t.Parallel()
	b, dir := newBackend(t, onnx.Config{})
	g := load(t, b, filepath.Join(dir, clsModel))
	want := make([][]byte, 16)
	for i := range want {
		want[i] = nntest.Compute(t, g, nntest.Image(i, 192)).Data
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if got := nntest.Compute(t, g, nntest.Image(i, 192)).Data; !bytes.Equal(got, want[i]) {
				t.Errorf("context %d: %x, alone %x", i, got, want[i])
			}
		})
	}
	wg.Wait()
}

// TestBatching merges 16 concurrent computes into fewer runs, and each
// result equals the unbatched one.
func TestBatching(t *testing.T) {
	t.Parallel()
	plain, dir := newBackend(t, onnx.Config{})
	batched, _ := newBackend(t, onnx.Config{BatchWindow: 20 * time.Millisecond, MaxBatch: 16})
	path := filepath.Join(dir, clsModel)
	pg, bg := load(t, plain, path), load(t, batched, path)
	const n = 16
	want := make([]nn.Tensor, n)
	for i := range want {
		want[i] = nntest.Compute(t, pg, nntest.Image(i, 192))
	}
	got := make([]nn.Tensor, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i] = nntest.Compute(t, bg, nntest.Image(i, 192)) })
	}
	wg.Wait()
	st := batched.Stats()
	t.Logf("batched: %d computes in %d runs (%d merged)", st.Computes, st.Runs, st.BatchedComputes)
	if st.Computes != n || st.Runs >= st.Computes {
		t.Fatalf("stats %+v: want %d computes in fewer runs", st, n)
	}
	for i := range n {
		if !equalDims(got[i].Dims, want[i].Dims) {
			t.Fatalf("compute %d: dims %v, unbatched %v", i, got[i].Dims, want[i].Dims)
		}
		for k := 0; k < len(want[i].Data); k += 4 {
			a := math.Float32frombits(binary.LittleEndian.Uint32(got[i].Data[k:]))
			w := math.Float32frombits(binary.LittleEndian.Uint32(want[i].Data[k:]))
			if math.Abs(float64(a-w)) > 1e-4 {
				t.Fatalf("compute %d element %d: %v batched, %v unbatched", i, k/4, a, w)
			}
		}
	}
}

func equalDims(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDeviceCUDAFailsFast(t *testing.T) {
	t.Parallel()
	b, dir := newBackend(t, onnx.Config{Device: onnx.DeviceCUDA})
	start := time.Now()
	err := b.Probe()
	if err == nil {
		t.Skip("this machine has a working CUDA provider")
	}
	if !errors.Is(err, onnx.ErrCUDAUnavailable) || !strings.Contains(err.Error(), "--nn-device") {
		t.Fatalf("error %q: want ErrCUDAUnavailable naming the flag", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %s to fail", d)
	}
	if _, err := b.LoadFile(context.Background(), filepath.Join(dir, clsModel)); !errors.Is(err, onnx.ErrCUDAUnavailable) {
		t.Fatalf("load with cuda: %v", err)
	}
}

func TestDeviceAutoFallsBackOnce(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
	b, dir := newBackend(t, onnx.Config{Device: onnx.DeviceAuto, Logger: log})
	cuda, err := b.UsesCUDA()
	if err != nil {
		t.Fatal(err)
	}
	if cuda {
		t.Skip("this machine has a working CUDA provider")
	}
	load(t, b, filepath.Join(dir, clsModel))
	load(t, b, filepath.Join(dir, clsModel))
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(buf.String(), "running on CPU"); n != 1 {
		t.Fatalf("%d fallback lines, want 1:\n%s", n, buf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestMissingLibrary(t *testing.T) {
	t.Parallel()
	b, err := onnx.New(onnx.Config{LibraryPath: "/nonexistent/libonnxruntime.so.1", Device: onnx.DeviceCPU})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Probe(); err == nil || !strings.Contains(err.Error(), "/nonexistent/") {
		t.Fatalf("probe with a missing library: %v", err)
	}
}

func benchmarkCompute(b *testing.B, model string, in nn.Tensor) {
	be, dir := newBackend(b, onnx.Config{})
	g := load(b, be, filepath.Join(dir, model))
	c, err := g.NewContext()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for b.Loop() {
		if err := c.SetInput(0, in); err != nil {
			b.Fatal(err)
		}
		if err := c.Compute(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCls is one direction-classifier compute ([1,3,48,192]).
func BenchmarkCls(b *testing.B) { benchmarkCompute(b, clsModel, nntest.Image(0, 192)) }

// BenchmarkRec is one recognition compute of a 320-pixel-wide line.
func BenchmarkRec(b *testing.B) { benchmarkCompute(b, recModel, nntest.Image(0, 320)) }

// TestSetInputCopies: a context keeps a copy of what set_input gave it (the
// host passes a view of guest memory), so a guest that reuses its buffer
// before compute, or sets inputs one after another into the same context,
// gets the results of what it set.
func TestSetInputCopies(t *testing.T) {
	t.Parallel()
	b, dir := newBackend(t, onnx.Config{})
	g := load(t, b, filepath.Join(dir, clsModel))
	want := [][]byte{nntest.Compute(t, g, nntest.Image(1, 192)).Data, nntest.Compute(t, g, nntest.Image(2, 192)).Data}
	zero := nntest.Image(0, 192)
	clear(zero.Data)
	if z := nntest.Compute(t, g, zero).Data; bytes.Equal(want[0], want[1]) || bytes.Equal(z, want[0]) || bytes.Equal(z, want[1]) {
		t.Fatal("the test images do not give different outputs")
	}
	c, err := g.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, seed := range []int{1, 2, 1} {
		in := nntest.Image(seed, 192)
		if err := c.SetInput(0, in); err != nil {
			t.Fatal(err)
		}
		clear(in.Data) // the caller's buffer, reused before compute
		if err := c.Compute(context.Background()); err != nil {
			t.Fatal(err)
		}
		out, err := c.Output(0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Data, want[seed-1]) {
			t.Errorf("compute %d (image %d): output %v, want %v", i, seed, out.Data, want[seed-1])
		}
	}
}
