// Package queue is wasmjobs' wire contract with asynq: the task types, the
// JSON job payload and its validation, task construction, and the Redis
// keys and scripts we write ourselves (the pipelined enqueue that writes
// exactly what asynq's client writes). Everything that names an asynq key
// does so through keys.go.
//
// # Notes
//
// The Node client (jobs/node) writes the same bytes to the same keys with
// its own implementation; jobs/node_compat_test.go holds the two together.
package queue
