// Package batch runs datasets: point it at an S3 prefix and it enqueues one
// job per object, idempotently and resumably, keeps the batch's progress in
// Redis as workers finish jobs, and writes a results manifest when the batch
// ends.
//
// # Notes
//
//   - A job's task id is derived from (batch id, object key, object ETag),
//     and each object's state is recorded once; running the same batch again
//     enqueues only what is missing, so an interrupted run resumes.
//   - The listing is streamed and enqueued in pipelined chunks, so memory
//     stays flat for millions of objects.
//   - There is no coordinator besides Redis: workers update the batch record
//     atomically (Lua), and the worker that finishes the last item writes
//     <output>/_manifest.jsonl and <output>/_summary.json.
package batch
