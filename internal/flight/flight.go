package flight

import (
	"context"
	"sync"
)

// Group runs at most one load per key at a time, for a cache guarded by its
// owner's mutex.
type Group[K comparable, V any] struct {
	mu    *sync.Mutex
	calls map[K]*call[V]
}

type call[V any] struct {
	done chan struct{}
	v    V
	err  error
}

// New returns a Group for the cache that mu guards.
func New[K comparable, V any](mu *sync.Mutex) *Group[K, V] {
	return &Group[K, V]{mu: mu, calls: map[K]*call[V]{}}
}

// Do returns key's value. With the mutex held, it asks lookup, which answers
// from the cache: found with a value, or found with a remembered error. On a
// miss it joins the load of key in flight, if there is one, or starts load
// on its own goroutine, without the mutex, and then passes its result to
// keep with the mutex held again; what keep returns is what every caller
// waiting for that load gets.
//
// # Notes
//
//   - Every caller, the one that started the load included, stops waiting
//     when its ctx ends and gets ctx.Err() itself (not wrapped); the load
//     goes on, and its result is kept for the next caller. load decides what
//     of the first caller's ctx it may use (usually context.WithoutCancel).
//   - When the load has finished as ctx ends, its result wins.
//   - lookup and keep must not call Do, nor take the mutex themselves.
func (g *Group[K, V]) Do(ctx context.Context, key K,
	lookup func() (v V, found bool, err error),
	load func() (V, error),
	keep func(V, error) (V, error),
) (V, error) {
	g.mu.Lock()
	if v, found, err := lookup(); found {
		g.mu.Unlock()
		return v, err
	}
	c, ok := g.calls[key]
	if !ok {
		c = &call[V]{done: make(chan struct{})}
		g.calls[key] = c
		go func() {
			v, err := load()
			g.mu.Lock()
			delete(g.calls, key)
			c.v, c.err = keep(v, err)
			g.mu.Unlock()
			close(c.done)
		}()
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.v, c.err
	case <-ctx.Done():
		select {
		case <-c.done:
			return c.v, c.err
		default:
		}
		var zero V
		return zero, ctx.Err()
	}
}
