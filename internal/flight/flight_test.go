package flight_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wasmjobs/wasmjobs/internal/flight"
)

// cache is the smallest owner of a Group: values and remembered errors.
type cache struct {
	mu    sync.Mutex
	vals  map[string]int
	errs  map[string]error
	loads atomic.Int64
	g     *flight.Group[string, int]
}

func newCache() *cache {
	c := &cache{vals: map[string]int{}, errs: map[string]error{}}
	c.g = flight.New[string, int](&c.mu)
	return c
}

func (c *cache) get(ctx context.Context, key string, load func() (int, error)) (int, error) {
	return c.g.Do(ctx, key,
		func() (int, bool, error) {
			if err, ok := c.errs[key]; ok {
				return 0, true, err
			}
			v, ok := c.vals[key]
			return v, ok, nil
		},
		func() (int, error) { c.loads.Add(1); return load() },
		func(v int, err error) (int, error) {
			if err != nil {
				c.errs[key] = err
			} else {
				c.vals[key] = v
			}
			return v, err
		})
}

// TestOneLoadPerKey hammers one key from many goroutines (run with -race):
// it loads once and every caller gets its value, then from the cache.
func TestOneLoadPerKey(t *testing.T) {
	t.Parallel()
	c := newCache()
	release := make(chan struct{})
	var wg sync.WaitGroup
	got := make([]int, 32)
	for i := range got {
		wg.Go(func() {
			v, err := c.get(context.Background(), "k", func() (int, error) { <-release; return 7, nil })
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	close(release)
	wg.Wait()
	for i, v := range got {
		if v != 7 {
			t.Fatalf("caller %d got %d", i, v)
		}
	}
	if v, _ := c.get(context.Background(), "k", func() (int, error) { return 8, nil }); v != 7 || c.loads.Load() != 1 {
		t.Fatalf("got %d after %d loads, want 7 after 1", v, c.loads.Load())
	}
}

// TestRememberedError: a failed load's error reaches every waiter, and the
// owner's lookup answers later callers without a load.
func TestRememberedError(t *testing.T) {
	t.Parallel()
	c := newCache()
	boom := errors.New("boom")
	started, release := make(chan struct{}), make(chan struct{})
	var first error
	done := make(chan struct{})
	go func() {
		_, first = c.get(context.Background(), "k", func() (int, error) { close(started); <-release; return 0, boom })
		close(done)
	}()
	<-started
	waiter := make(chan error)
	go func() {
		_, err := c.get(context.Background(), "k", func() (int, error) { return 1, nil })
		waiter <- err
	}()
	close(release)
	<-done
	if err := <-waiter; !errors.Is(err, boom) || !errors.Is(first, boom) {
		t.Fatalf("leader %v, waiter %v, want %v", first, err, boom)
	}
	if _, err := c.get(context.Background(), "k", func() (int, error) { return 1, nil }); !errors.Is(err, boom) || c.loads.Load() != 1 {
		t.Fatalf("later caller: %v after %d loads", err, c.loads.Load())
	}
}

// TestWaiterLeavesOnContext: a waiter whose context ends returns at once;
// the load finishes for the caller that runs it.
func TestWaiterLeavesOnContext(t *testing.T) {
	t.Parallel()
	c := newCache()
	started, release := make(chan struct{}), make(chan struct{})
	leader := make(chan int)
	go func() {
		v, _ := c.get(context.Background(), "k", func() (int, error) { close(started); <-release; return 3, nil })
		leader <- v
	}()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.get(ctx, "k", func() (int, error) { return 4, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled waiter: %v", err)
	}
	close(release)
	if v := <-leader; v != 3 {
		t.Fatalf("leader got %d", v)
	}
}

// TestKeysIndependent: a slow load of one key does not hold up another.
func TestKeysIndependent(t *testing.T) {
	t.Parallel()
	c := newCache()
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	go c.get(context.Background(), "slow", func() (int, error) { close(started); <-release; return 0, nil })
	<-started
	if v, err := c.get(context.Background(), "fast", func() (int, error) { return 5, nil }); v != 5 || err != nil {
		t.Fatalf("fast key: %d, %v", v, err)
	}
}
