package batch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

// reconcilePage is how many archived tasks Reconcile reads at a time.
const reconcilePage = 200

// retryGrace is how long after retry-failed set an item pending again
// Reconcile leaves it alone: its job stays archived until RetryFailed has
// run it, a moment later. Past this, a job still archived was never run
// again (RetryFailed stopped in between) and the item fails once more.
const retryGrace = time.Minute

// manifestGrace is the default of Recorder.ManifestGrace: how long after a
// batch finished Reconcile leaves its manifest to the worker that finished
// it. Past this, a finished batch
// still without one lost its writer (killed during the write, on a final
// attempt or in a reconcile pass, so no job will run again to write it),
// and Reconcile writes it.
const manifestGrace = 30 * time.Second

// Reconcile finishes the items that no handler will ever report: a batch
// job archived by asynq without its outcome recorded (killed or out of
// memory on its final attempt, when asynq's recoverer archives it once its
// lease expires; a report that failed on the last attempt; an item set
// pending again by retry-failed whose job was never put back). Each such
// item is recorded as failed with the archived reason, and a batch that
// ends this way gets its manifest, as does a finished batch of an archived
// job whose manifest write was cut short. It reads the archived tasks of queues,
// which asynq bounds, not the batches' items; and it fails the pending
// items whose jobs no longer exist at all (see auditBatches), looking only
// at batches that stopped making progress; the same audit writes the
// manifest of a finished batch still without one past the manifest grace
// (one a cancel finished with no job left to write it). It returns how
// many items it finished. Safe to run from any number of workers at once: recording
// an outcome happens once.
func (r *Recorder) Reconcile(ctx context.Context, queues []string) (int, error) {
	n := 0
	var errs []error
	for _, q := range queues {
		k, err := r.reconcileQueue(ctx, q)
		n += k
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			errs = append(errs, fmt.Errorf("batch: reconcile queue %s: %w", q, err))
		}
	}
	k, err := r.auditBatches(ctx, queues)
	return n + k, errors.Join(append(errs, err)...)
}

// stranded is an archived batch job and the item it was for.
type stranded struct {
	batch string
	item  Item
}

func (r *Recorder) reconcileQueue(ctx context.Context, q string) (int, error) {
	c := r.Client
	n := 0
	for page := 1; ; page++ {
		tasks, err := c.inspector.ListArchivedTasks(q, asynq.Page(page), asynq.PageSize(reconcilePage))
		if err != nil {
			return n, err
		}
		var cands []stranded
		for _, t := range tasks {
			if t.Type != queue.TypeImage && t.Type != queue.TypeText {
				continue
			}
			p, err := queue.DecodePayload(t.Payload)
			if err != nil || p.Batch == "" {
				continue
			}
			u, err := s3url.ParseObjectURL(p.Input)
			if err != nil {
				continue
			}
			reason := "the job was archived without its outcome recorded"
			if t.LastErr != "" {
				reason += ": " + t.LastErr
			}
			cands = append(cands, stranded{p.Batch, Item{Key: u.Key, Status: ItemFailed, TaskID: t.ID, Error: reason}})
		}
		pending, err := c.pendingItems(ctx, cands)
		if err != nil {
			return n, err
		}
		ended := map[string]bool{}
		for i, s := range cands {
			if !pending[i] {
				ended[s.batch] = true
				continue
			}
			failed, final, err := r.failItem(ctx, s.batch, s.item, "its job was archived without an outcome")
			if err != nil {
				return n, err
			}
			if final {
				ended[s.batch] = true // its job reported meanwhile
			}
			if failed {
				n++
			}
		}
		for id := range ended {
			if err := r.manifestLeftOver(ctx, id); err != nil {
				return n, err
			}
		}
		if len(tasks) < reconcilePage {
			return n, nil
		}
	}
}

// manifestLeftOver writes the manifest of batch id if the batch finished
// more than the manifest grace ago without one (and without a reason it cannot
// have one).
func (r *Recorder) manifestLeftOver(ctx context.Context, id string) error {
	st, err := r.Client.BatchStatus(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil // expired or deleted
	}
	if err != nil {
		return err
	}
	if st.Finished.IsZero() || st.ManifestWritten || st.Error != "" || time.Since(st.Finished) < cmp.Or(r.ManifestGrace, manifestGrace) {
		return nil
	}
	if r.Logger != nil {
		r.Logger.Warn("batch finished without its manifest; writing it", "batch", id)
	}
	return r.batchEnded(ctx, id)
}

// failItem records item it of batch id as failed, for a job that will never
// report it (why says so in the log), and writes the manifest when that
// ended the batch. It reports whether it recorded the failure, and whether
// the item had an outcome already; an item the batch holds for another
// task, or no longer holds, is left alone.
func (r *Recorder) failItem(ctx context.Context, id string, it Item, why string) (failed, final bool, err error) {
	res, err := r.Client.finishItem(ctx, id, it)
	switch {
	case errors.Is(err, ErrBatchItemUnknown) || errors.Is(err, ErrNotBatchItem) || errors.Is(err, ErrNotFound):
		return false, false, nil // not this batch's job for that item
	case err != nil:
		return false, false, err
	case res == itemAlreadyFinal:
		return false, true, nil
	}
	if r.Logger != nil {
		r.Logger.Warn("batch item failed: "+why, "batch", id, "key", it.Key, "task", it.TaskID)
	}
	if res == itemFinishedBatch {
		return true, false, r.batchEnded(ctx, id)
	}
	return true, false, nil
}

// inRetryGrace reports whether an item's retried:<key> record (a Unix ms
// time, "" for none) says retry-failed set it pending within retryGrace:
// its job is still being put back.
func inRetryGrace(retried string) bool {
	at, _ := strconv.ParseInt(retried, 10, 64)
	return time.Since(time.UnixMilli(at)) <= retryGrace
}

// pendingItems reports, in one round trip, which of the items are pending
// in their batches, and not just set so by retry-failed.
func (c *Client) pendingItems(ctx context.Context, items []stranded) ([]bool, error) {
	if len(items) == 0 {
		return nil, nil
	}
	states := make([]*redis.StringCmd, len(items))
	retried := make([]*redis.StringCmd, len(items))
	_, err := c.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, s := range items {
			states[i] = pipe.HGet(ctx, batchStatusKey(s.batch), s.item.Key)
			retried[i] = pipe.HGet(ctx, batchKey(s.batch), "retried:"+s.item.Key)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]bool, len(items))
	for i := range items {
		out[i] = states[i].Val() == ItemPending && !inRetryGrace(retried[i].Val())
	}
	return out, nil
}
