package jobs

import (
	"context"

	"github.com/wasmjobs/wasmjobs/internal/queue"
)

// Job is one entry of [Client.EnqueueMany]: its Type (TypeImage or
// TypeText), Payload and per-job Options.
type Job = queue.Job

// EnqueueResult is the outcome of one job of [Client.EnqueueMany]: Info on
// success, otherwise Err (validation, ErrTaskIDConflict, …).
type EnqueueResult = queue.EnqueueResult

// EnqueueMany enqueues jobs in pipelined round trips, writing exactly what
// asynq's client writes for each (the same TaskMessage, keys and script).
// It returns one result per job, in order; the error is for a failure of
// Redis itself. Jobs with Unique, ProcessAt, ProcessIn or Group options go
// through asynq's client one by one.
func (c *Client) EnqueueMany(ctx context.Context, batch []Job) ([]EnqueueResult, error) {
	return c.q.EnqueueMany(ctx, batch)
}
