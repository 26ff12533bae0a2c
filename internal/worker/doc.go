// Package worker processes wasmjobs tasks: it reads a job's payload, resolves
// its guest, fetches the input from S3 (or takes it inline), runs the guest in
// the sandbox and stores the output, classifying every failure as retryable
// (infrastructure) or permanent (the job itself) the way asynq expects.
//
// [New] builds a [Worker] from a [Config]: it owns the sandbox runtime, the
// WASI-NN host module, the guest registry and the metrics, and takes batch
// handling through two small interfaces, [BatchRecorder] and
// [BatchPlanner]. [Worker.Run] processes tasks until its context ends;
// [Worker.Shutdown] drains jobs in flight and releases everything, in order.
package worker
