package onnx

import (
	"sync/atomic"
	"time"
)

// trimEvery is how often freed native memory goes back to the kernel after
// computes ran.
const trimEvery = 2 * time.Second

// computedSinceTrim is set by every run and cleared by the trimmer.
var computedSinceTrim atomic.Bool

// returnNativeMemory runs for the life of the process, like the ONNX Runtime
// environment it serves (see initLibrary). Activations are freed when a run
// ends, but malloc keeps freed memory mapped, so without this one job with
// a large input would keep the worker's RSS at its peak for good.
//
// # Notes
//
// Trimming costs a walk of the heap, so it runs on a timer and only when a
// compute has run since the last trim, never on the compute path.
func returnNativeMemory() {
	// A run's outputs are freed when its guest instance closes, after the
	// run: trim once more on the tick after the last run.
	pending := 0
	for range time.Tick(trimEvery) {
		if computedSinceTrim.Swap(false) {
			pending = 2
		}
		if pending > 0 {
			trimHeap()
			pending--
		}
	}
}
