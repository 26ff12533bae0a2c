package jobs

import (
	"context"

	"github.com/wasmjobs/wasmjobs/internal/batch"
)

// ErrBatchNotFound means no batch record has that id.
var ErrBatchNotFound = batch.ErrNotFound

// ErrOutputInUse is wrapped (with ErrInvalidPayload) by the error of a
// batch whose output prefix another batch already writes to.
var ErrOutputInUse = batch.ErrOutputInUse

// ErrBatchRunning is wrapped by DeleteBatch's error for a batch that has not
// finished.
var ErrBatchRunning = batch.ErrBatchRunning

// DefaultBatchRetention is how long a finished batch's record stays in
// Redis unless its spec's RetentionSeconds says otherwise.
const DefaultBatchRetention = batch.DefaultRetention

// BatchSpec describes a dataset run: one job per object under Input. Its
// WithDefaults validates it and fills its defaults, including an ID derived
// from the other fields, so that running the same batch again resumes it.
type BatchSpec = batch.Spec

// BatchStatus is a batch's record: its spec, item counts, and when it
// started and finished.
type BatchStatus = batch.Status

// RecordsSpec makes a batch split its objects into records (JSON lines,
// CSV, plain lines or tar shards): one job per shard of records, the guest
// running on every record, one JSON line per record in the outputs. Set it
// as BatchSpec.Records.
type RecordsSpec = batch.RecordsSpec

// MergedName is the object under a record batch's output prefix that
// RecordsSpec.Merge joins the shard outputs into.
const MergedName = batch.MergedName

// StartBatch creates the batch record and enqueues its plan: a worker lists
// the input prefix and enqueues one job per object. Calling it again for the
// same spec resumes the batch without enqueueing anything twice.
//
// A batch whose output prefix is another batch's is refused with an error
// wrapping ErrOutputInUse.
func (c *Client) StartBatch(ctx context.Context, spec BatchSpec) (*BatchStatus, error) {
	return c.batches.StartBatch(ctx, spec)
}

// BatchStatus reads a batch's record; the error wraps ErrBatchNotFound when
// there is none.
func (c *Client) BatchStatus(ctx context.Context, id string) (*BatchStatus, error) {
	return c.batches.BatchStatus(ctx, id)
}

// DeleteBatch removes a finished batch's record from Redis now, as its
// retention would later; its outputs and manifest in S3 stay. A batch that
// has not finished is refused with an error wrapping ErrBatchRunning.
func (c *Client) DeleteBatch(ctx context.Context, id string) error {
	return c.batches.DeleteBatch(ctx, id)
}

// ListBatches returns the most recent batches, newest first; limit <= 0
// means 50.
func (c *Client) ListBatches(ctx context.Context, limit int) ([]*BatchStatus, error) {
	return c.batches.ListBatches(ctx, limit)
}
