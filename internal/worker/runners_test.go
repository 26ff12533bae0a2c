package worker

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestRunners: a call returns fn's error, a panic comes back as an error,
// and concurrent calls all run, each once.
func TestRunners(t *testing.T) {
	t.Parallel()
	r := newRunners()
	want := errors.New("guest failed")
	if err := r.run(func() error { return want }); err != want {
		t.Fatalf("run = %v, want %v", err, want)
	}
	if err := r.run(func() error { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("run of a panicking fn = %v, want an error naming the panic", err)
	}
	var calls atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if err := r.run(func() error { calls.Add(1); return nil }); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := calls.Load(); n != 64*100 {
		t.Fatalf("%d calls ran, want %d", n, 64*100)
	}
}
