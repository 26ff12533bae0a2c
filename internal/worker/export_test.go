package worker

import "github.com/wasmjobs/wasmjobs/internal/sandbox"

// Runtime is the worker's sandbox runtime, for running a guest directly.
func (w *Worker) Runtime() *sandbox.Runtime { return w.rt }
