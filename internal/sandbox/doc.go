// Package sandbox runs untrusted WebAssembly guests on wazero.
//
// A [Runtime] compiles each guest once per sha256 digest, keeps compiled
// modules in a bounded in-memory cache backed by wazero's on-disk compilation
// cache, and runs every job in a fresh module instance: stdin is the job's
// input, argv and the WASMJOBS_PARAMS environment variable carry its params,
// stdout is captured as the result and the tail of stderr is kept for error
// reports.
//
// # Notes
//
//   - Guests get no preopened directories, no sockets and no environment
//     other than WASMJOBS_PARAMS. Clocks and random numbers are wazero's
//     deterministic defaults, so a guest cannot observe real time and the
//     same input always gives the same output.
//   - Every run has a deadline (the instance is closed when its context
//     ends) and linear memory is capped by [Config.MemoryLimitPages].
//   - Modules importing anything but WASI preview 1 and the host modules
//     given in [Config.HostModules] (functions only, with the host's
//     signatures) are rejected at compile time.
//   - Before wazero sees a module it must fit [Config.Limits]
//     ([ModuleLimits]): size, counts, table sizes (a missing or larger
//     maximum is capped), locals and blocks per function, element items.
//     Guest linear memory is mapped outside the Go heap and unmapped when
//     the instance closes, or, when it is small, cleared and kept for the
//     next instance.
package sandbox
