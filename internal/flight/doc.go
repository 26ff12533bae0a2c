// Package flight loads a value once per key: callers that ask for a key
// while its load is in flight wait for that load instead of starting their
// own. It fills a cache its caller owns (the models of a WASI-NN module, the
// compiled guests of a sandbox), so the caller keeps its own policy: what it
// remembers, for how long, and what a hit costs.
//
// # Why not golang.org/x/sync/singleflight?
//
// singleflight forgets a key the moment its call returns, and it has its own
// lock. A caller that looks in its cache and then calls Do has a window in
// which the load has finished but its result is not yet cached: a second
// caller misses the cache and loads the key again. A model must load once
// per process, so the cache lookup, joining a load in flight and storing the
// result must happen under one lock, the cache's. A [Group] takes that lock
// from its owner. It is also typed, and a waiter leaves when its own context
// ends while the load goes on for the others.
package flight
