package onnx_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/nn/onnx"
)

// TestRunningInputBudget: while a large run holds the backend's input
// budget, another run waits for it, and leaves with a clear error when its
// deadline passes first; with room in the budget the same run goes ahead.
func TestRunningInputBudget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		budget int64
		wait   bool
	}{
		{"budget held", 1 << 20, true},
		{"room left", 256 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, dir := newBackend(t, onnx.Config{MaxRunningInputBytes: tc.budget})
			g := load(t, b, filepath.Join(dir, detModel))
			big := detContext(t, g, 2560)
			bigCtx, stopBig := context.WithCancel(context.Background())
			bigDone := make(chan error, 1)
			go func() { bigDone <- big.Compute(bigCtx) }()
			defer func() { stopBig(); <-bigDone }()
			// The big run is in ONNX Runtime once the backend counts it.
			for b.Stats().Runs == 0 {
				time.Sleep(time.Millisecond)
			}

			small := detContext(t, g, 64)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := small.Compute(ctx)
			select {
			case <-bigDone:
				t.Skip("the big run ended before the small one was tried: machine too fast for this test")
			default:
			}
			if tc.wait {
				if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, nn.ErrRuntime) || !strings.Contains(err.Error(), "waiting for other runs") {
					t.Fatalf("small run while the budget is held: %v, want a deadline error naming the wait", err)
				}
			} else if err != nil {
				t.Fatalf("small run with room in the budget: %v", err)
			}
		})
	}
}
