// Package worker processes wasmjobs tasks: it reads a job's payload, resolves
// its guest, fetches the input from S3 (or takes it inline), runs the guest in
// the sandbox and stores the output, classifying every failure as retryable
// (infrastructure) or permanent (the job itself) the way asynq expects.
//
// [Handler] is an asynq.Handler for both task types; [Server] wires it into an
// asynq server; [Registry] maps guest names to sha256 digests in the guest
// bucket.
package worker
