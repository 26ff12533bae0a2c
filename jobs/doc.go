// Package jobs is the Go producer API of wasmjobs.
//
// A [Client] enqueues image and text jobs into Redis in asynq's wire format,
// so any asynq worker fleet running wasmjobs' handlers processes them. A job
// names a guest (a WebAssembly module registered with the workers), an input
// (an object in S3-compatible storage, or small inline data) and optionally
// an output object and parameters for the guest.
//
// Payloads are validated before anything reaches Redis: a malformed s3://
// URL, an inline input over [MaxInlineBytes] or an empty guest name is an
// error returned by the enqueue call, never a job that fails later.
//
// # Notes
//
//   - The payload is JSON with snake_case keys so that every language can
//     produce it; see [Payload] for the exact shape.
//   - An inline job without an output returns its result through asynq's
//     result writer; read it with [Client.Result].
package jobs
