package sandbox_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/sandbox"
)

// slowModule is a hostile guest at the per-function block limit: about a
// second of compiling.
func slowModule(tb testing.TB) []byte {
	tb.Helper()
	wasm, err := os.ReadFile("../../guest/testdata/hostile/gen-blocks-nested.wasm")
	if err != nil {
		tb.Fatal(err)
	}
	return wasm
}

// TestCompileDeadline: a deadline that passes while compiling is a guest
// timeout, the compile finishes in the background and is cached, and
// concurrent callers share it.
func TestCompileDeadline(t *testing.T) {
	t.Parallel()
	rt := newRuntime(t, sandbox.Config{})
	wasm := slowModule(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, errs[i] = rt.Compile(ctx, wasm, "")
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("Compile returned %s after its deadline", d)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		var ge *sandbox.GuestError
		if !errors.As(err, &ge) || !errors.Is(err, sandbox.ErrTimeout) {
			t.Fatalf("err = %v, want a GuestError of kind ErrTimeout", err)
		}
	}
	m, err := rt.Compile(context.Background(), wasm, "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != sandbox.Digest(wasm) {
		t.Fatal("wrong module")
	}
	if s := rt.Stats(); s.Misses != 1 {
		t.Fatalf("stats = %+v, want one compile shared by all callers", s)
	}
}

// TestCompileCanceled: a canceled ctx (shutdown) is not the guest's failure.
func TestCompileCanceled(t *testing.T) {
	t.Parallel()
	rt := newRuntime(t, sandbox.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := rt.Compile(ctx, slowModule(t), "")
	var ge *sandbox.GuestError
	if errors.As(err, &ge) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled and no GuestError", err)
	}
	_, err = rt.Compile(ctx, slowModule(t), "")
	if errors.As(err, &ge) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled and no GuestError", err)
	}
}

// TestCompileClosedRuntime: a compile that outlives its runtime is dropped.
func TestCompileClosedRuntime(t *testing.T) {
	t.Parallel()
	rt, err := sandbox.New(context.Background(), sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, _ = rt.Compile(ctx, slowModule(t), "")
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the background compile ends without a panic
}
