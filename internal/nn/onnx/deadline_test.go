package onnx_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/nn/nntest"
	"github.com/wasmjobs/wasmjobs/internal/nn/onnx"
)

const detModel = "ch_PP-OCRv4_det_infer.onnx"

// detInput is a white page of side px for the detection model: on one
// thread a 2560 px page takes seconds (1.5 s to 5 s measured here).
func detInput(side uint32) nn.Tensor {
	return nn.Tensor{Type: nn.F32, Dims: []uint32{1, 3, side, side}, Data: make([]byte, 4*3*side*side)}
}

// detContext returns an execution context of g holding detInput(side),
// closed when the test ends.
func detContext(tb testing.TB, g nn.Graph, side uint32) nn.ExecContext {
	tb.Helper()
	c, err := g.NewContext()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	if err := c.SetInput(0, detInput(side)); err != nil {
		tb.Fatal(err)
	}
	return c
}

// slack is how much later than its deadline a terminated compute may
// return: ONNX Runtime checks the terminate flag between kernels, and the
// machine may be busy.
const slack = time.Second

// TestComputeTerminatedAtDeadline does not run in parallel: it times how
// soon a compute returns, which the other tests' multi-second runs would
// stretch.
func TestComputeTerminatedAtDeadline(t *testing.T) {
	b, dir := newBackend(t, onnx.Config{})
	g := load(t, b, filepath.Join(dir, detModel))
	// 2048 px runs for seconds untouched. At 2560 px one run returned 1.16 s
	// after its deadline on a loaded machine (ONNX Runtime checks the flag
	// between kernels, and the 78 MB input is copied under -race).
	c := detContext(t, g, 2048)
	const deadline = 150 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := c.Compute(ctx)
	took := time.Since(start)
	t.Logf("compute with a %s deadline returned after %s: %v", deadline, took, err)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, nn.ErrRuntime) {
		t.Fatalf("compute past its deadline: %v, want a runtime error wrapping context.DeadlineExceeded", err)
	}
	if took > deadline+slack {
		t.Fatalf("compute returned %s after a %s deadline", took, deadline)
	}
	// The context stays usable: the same graph computes without a deadline.
	small := detContext(t, g, 64)
	if err := small.Compute(context.Background()); err != nil {
		t.Fatalf("compute after a terminated one: %v", err)
	}
}

func TestComputeCanceledBeforeStart(t *testing.T) {
	t.Parallel()
	b, dir := newBackend(t, onnx.Config{})
	g := load(t, b, filepath.Join(dir, clsModel))
	c, _ := g.NewContext()
	defer c.Close()
	if err := c.SetInput(0, nntest.Image(0, 192)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Compute(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("compute on a canceled context: %v", err)
	}
	if s := b.Stats(); s.Runs != 0 {
		t.Fatalf("%d runs for a canceled compute", s.Runs)
	}
}

// A guest waiting in the batch window leaves when its deadline passes,
// long before a window it would otherwise wait out.
func TestBatchWindowHonoursDeadline(t *testing.T) {
	t.Parallel()
	b, dir := newBackend(t, onnx.Config{BatchWindow: 10 * time.Second, MaxBatch: 16})
	g := load(t, b, filepath.Join(dir, recModel))
	c, _ := g.NewContext()
	defer c.Close()
	if err := c.SetInput(0, nntest.Image(0, 320)); err != nil {
		t.Fatal(err)
	}
	const deadline = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := c.Compute(ctx)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("compute in a 10 s window with a %s deadline: %v", deadline, err)
	}
	if took > deadline+slack {
		t.Fatalf("left the batch window after %s", took)
	}
}

// A batched run whose every caller has left is terminated; callers still
// waiting get their results.
func TestBatchRunTerminatedWhenAllLeave(t *testing.T) {
	t.Parallel()
	b, dir := newBackend(t, onnx.Config{BatchWindow: 20 * time.Millisecond, MaxBatch: 2})
	g := load(t, b, filepath.Join(dir, detModel))
	type result struct {
		err  error
		took time.Duration // of Compute alone: copying the inputs is not under the deadline
	}
	results := make(chan result, 2)
	const deadline = 300 * time.Millisecond
	for range 2 {
		go func() {
			c, _ := g.NewContext()
			defer c.Close()
			if err := c.SetInput(0, detInput(1312)); err != nil {
				results <- result{err: err}
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			err := c.Compute(ctx)
			results <- result{err, time.Since(start)}
		}()
	}
	for range 2 {
		r := <-results
		if !errors.Is(r.err, context.DeadlineExceeded) {
			t.Fatalf("batched compute past its deadline: %v", r.err)
		}
		if r.took > deadline+slack {
			t.Fatalf("batched compute returned after %s", r.took)
		}
	}
	// The abandoned run ends soon too: a fresh compute is not stuck behind it.
	c := detContext(t, g, 64)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Compute(ctx); err != nil {
		t.Fatalf("compute after an abandoned batch: %v", err)
	}
}
