package e2e_test

import (
	"context"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
)

// computeClock adds up the time the nn module spends in compute calls.
type computeClock struct {
	mu    sync.Mutex
	total time.Duration
	calls int
}

func (c *computeClock) add(_ string, d time.Duration) {
	c.mu.Lock()
	c.total += d
	c.calls++
	c.mu.Unlock()
}

// BenchmarkOCRGuest runs the ocr guest in the sandbox, one image after the
// other (20 rendered lines and a six-line page), and splits its time into
// inference (the nn module's compute calls) and everything else the guest
// does: decoding, resizing, normalising, DB post-processing, crops, CTC and
// the tensor copies across the boundary.
func BenchmarkOCRGuest(b *testing.B) {
	wasm := guests.OCR
	if f := os.Getenv("WASMJOBS_BENCH_OCR_WASM"); f != "" {
		var err error
		if wasm, err = os.ReadFile(f); err != nil {
			b.Fatal(err)
		}
	}
	clock := &computeClock{}
	mod := newNNWith(b, func(c *nn.Config) { c.OnCompute = clock.add })
	rt := newRuntime(b, mod)
	m, err := rt.Compile(context.Background(), wasm, "")
	if err != nil {
		b.Fatal(err)
	}
	var images [][]byte
	for _, c := range ocrCases(b, 20) {
		images = append(images, c.image)
	}
	images = append(images, encodePNG(b, renderLines(b, pageLines, 0, 36)))
	run := func(img []byte) {
		if _, err := rt.Run(context.Background(), m, sandbox.RunOptions{Stdin: img, Timeout: time.Minute}); err != nil {
			b.Fatal(err)
		}
	}
	run(images[0]) // warm-up: first sessions runs
	clock.total, clock.calls = 0, 0
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	start := time.Now()
	n := 0
	for range b.N {
		for _, img := range images {
			run(img)
			n++
		}
	}
	wall := time.Since(start)
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	b.ReportMetric(float64(ru1.Minflt-ru0.Minflt)/float64(n), "page-faults/image")
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
	b.ReportMetric(per(wall), "guest-ms/image")
	b.ReportMetric(per(clock.total), "inference-ms/image")
	b.ReportMetric(per(wall-clock.total), "outside-ms/image")
	b.ReportMetric(0, "ns/op")
}
