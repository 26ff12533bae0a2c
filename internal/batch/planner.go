package batch

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"path"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

// Lister is the part of blob.Store the planner uses: listing in key order,
// from the first key after a given one.
type Lister interface {
	ListAfter(ctx context.Context, prefix s3url.ObjectURL, after string) iter.Seq2[blob.ObjectInfo, error]
}

var _ Lister = (*blob.Store)(nil)

// PlanConfig configures Plan.
type PlanConfig struct {
	// ChunkSize is how many objects are enqueued per pipelined round trip.
	// Defaults to 1000.
	ChunkSize int
	// Rate caps enqueueing in jobs per second; 0 means no cap.
	Rate float64
	// Progress, if set, is called after every chunk.
	Progress func(listed, enqueued int64)
	// Access is what the batch may read and write. The zero value allows
	// every bucket but the default guest registry's.
	Access Access
}

// PlanResult counts what one planning pass did.
type PlanResult struct {
	Listed   int64 // objects under the prefix
	Enqueued int64 // jobs enqueued by this pass
	Resumed  int64 // objects an earlier pass had already recorded
	Skipped  int64 // objects filtered by MaxSize (recorded as skipped)
	Finished bool  // the batch was complete when listing ended
}

// Plan lists spec's input prefix and enqueues a job for every object the
// batch has no record of. A spec whose input or output cfg.Access refuses
// is refused before anything is listed (the error wraps
// s3url.ErrAccessDenied). spec must have its defaults (Spec.WithDefaults)
// and its record must exist (Client.CreateBatch).
func Plan(ctx context.Context, c *Client, store Lister, spec Spec, cfg PlanConfig) (PlanResult, error) {
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = 1000
	}
	var limiter *rate.Limiter
	if cfg.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(cfg.Rate), cfg.ChunkSize)
	}
	in, err := s3url.ParsePrefixURL(spec.Input)
	if err != nil {
		return PlanResult{}, err
	}
	// An invalid glob would match nothing, silently.
	if err := ValidateInclude(spec.Include); err != nil {
		return PlanResult{}, err
	}
	if err := cfg.Access.CheckSpec(spec); err != nil {
		return PlanResult{}, err
	}
	// A pass resumes where the last one got to: its checkpoint is the last
	// key of the last chunk it enqueued and recorded, and how many objects
	// it had counted by then.
	after, listedBefore, err := c.planCheckpoint(ctx, spec.ID)
	if err != nil {
		return PlanResult{}, err
	}
	// Listing runs ahead of enqueueing by a couple of chunks, so the two
	// round trips overlap while memory stays bounded.
	chunks := make(chan []blob.ObjectInfo, 2)
	listErr := make(chan error, 1)
	listCtx, stopListing := context.WithCancel(ctx)
	defer stopListing()
	go func() {
		defer close(chunks)
		chunk := make([]blob.ObjectInfo, 0, cfg.ChunkSize)
		for obj, err := range store.ListAfter(listCtx, in, after) {
			if err != nil {
				listErr <- fmt.Errorf("list %s: %w", spec.Input, err)
				return
			}
			if !included(spec, in.Key, obj.Key) {
				continue
			}
			chunk = append(chunk, obj)
			if len(chunk) == cfg.ChunkSize {
				select {
				case chunks <- chunk:
				case <-listCtx.Done():
					return
				}
				chunk = make([]blob.ObjectInfo, 0, cfg.ChunkSize)
			}
		}
		if len(chunk) > 0 {
			select {
			case chunks <- chunk:
			case <-listCtx.Done():
			}
		}
	}()
	if spec.Records != nil {
		return planRecords(ctx, c, store, spec, cfg, chunks, listErr)
	}
	res := PlanResult{Listed: listedBefore}
	for chunk := range chunks {
		// A canceled batch stops growing: what is listed so far is all
		// it will hold, so it ends once its jobs are canceled or done.
		if canceled, err := c.BatchCancelRequested(ctx, spec.ID); err != nil {
			return res, err
		} else if canceled {
			res.Finished, err = c.SetBatchListed(ctx, spec.ID, res.Listed)
			return res, err
		}
		res.Listed += int64(len(chunk))
		if limiter != nil {
			if err := limiter.WaitN(ctx, len(chunk)); err != nil {
				return res, err
			}
		}
		n, resumed, skipped, err := enqueueChunk(ctx, c, spec, chunk)
		res.Enqueued += n
		res.Resumed += resumed
		res.Skipped += skipped
		if err != nil {
			return res, err
		}
		if err := c.setPlanCheckpoint(ctx, spec.ID, chunk[len(chunk)-1].Key, res.Listed); err != nil {
			return res, err
		}
		if cfg.Progress != nil {
			cfg.Progress(res.Listed, res.Enqueued)
		}
	}
	if err := finishListing(ctx, c, spec.ID, &res, listErr); err != nil {
		return res, err
	}
	// The listing is whole: a later pass (a rerun picking up new objects)
	// lists from the start again.
	return res, c.setPlanCheckpoint(ctx, spec.ID, "", 0)
}

// finishListing records the batch's total once its listing ended without
// an error, and whether that finished it.
func finishListing(ctx context.Context, c *Client, id string, res *PlanResult, listErr <-chan error) error {
	select {
	case err := <-listErr:
		return err
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	res.Finished, err = c.SetBatchListed(ctx, id, res.Listed)
	return err
}

// included applies the batch's glob to the key relative to the prefix;
// "directory" placeholder keys ending in '/' are never inputs.
func included(spec Spec, prefix, key string) bool {
	if strings.HasSuffix(key, "/") {
		return false
	}
	if spec.Include == "" {
		return true
	}
	rel := strings.TrimPrefix(key, prefix)
	ok, _ := path.Match(spec.Include, rel)
	if !ok {
		ok, _ = path.Match(spec.Include, path.Base(rel))
	}
	return ok
}

func enqueueChunk(ctx context.Context, c *Client, spec Spec, objs []blob.ObjectInfo) (enqueued, resumed, skipped int64, err error) {
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	missing, err := c.MissingBatchItems(ctx, spec.ID, keys)
	if err != nil {
		return 0, 0, 0, err
	}
	var (
		batch []queue.Job
		items []Item
		marks []Item
	)
	for i, o := range objs {
		if !missing[i] {
			resumed++
			continue
		}
		if spec.MaxSize > 0 && o.Size > spec.MaxSize {
			marks = append(marks, Item{Key: o.Key, Status: ItemSkipped, Bytes: o.Size,
				Error: fmt.Sprintf("object is %d bytes, over the batch's max size %d", o.Size, spec.MaxSize)})
			skipped++
			continue
		}
		job := spec.ItemJob(o.Key)
		id := ItemTaskID(spec.ID, o.Key, o.ETag)
		job.Options = append(job.Options, asynq.TaskID(id))
		batch = append(batch, job)
		items = append(items, Item{Key: o.Key, Status: ItemPending, TaskID: id, Output: job.Payload.Output, Bytes: o.Size})
	}
	n, more, moreSkipped, err := enqueueItems(ctx, c, spec.ID, batch, items, marks)
	return n, resumed + more, skipped + moreSkipped, err
}

// enqueueItems enqueues batch (the jobs of items, pending) and records the
// items with marks (skipped ones): an item whose job exists already counts
// as resumed, one the queue refuses as skipped with the reason.
func enqueueItems(ctx context.Context, c *Client, id string, batch []queue.Job, items, marks []Item) (enqueued, resumed, skipped int64, err error) {
	if len(batch) > 0 {
		results, err := c.q.EnqueueMany(ctx, batch)
		if err != nil {
			return 0, resumed, skipped, err
		}
		for i, r := range results {
			switch {
			case r.Err == nil:
				enqueued++
			case errors.Is(r.Err, asynq.ErrTaskIDConflict):
				resumed++ // enqueued by an interrupted pass that did not record it
			case errors.Is(r.Err, queue.ErrInvalidPayload):
				// An object the batch cannot make a job of (say, its output
				// key would pass S3's 1024-byte limit) is listed with the
				// reason; the rest of the batch goes on.
				skipped++
				marks = append(marks, Item{Key: items[i].Key, Status: ItemSkipped, Bytes: items[i].Bytes, Error: r.Err.Error()})
				continue
			default:
				return enqueued, resumed, skipped, fmt.Errorf("enqueue %s: %w", items[i].Key, r.Err)
			}
			marks = append(marks, items[i])
		}
	}
	return enqueued, resumed, skipped, c.MarkBatchItems(ctx, id, marks)
}

// Wait polls the batch until it finishes or ctx ends, calling report with
// each status.
func Wait(ctx context.Context, c *Client, id string, every time.Duration, report func(*Status)) (*Status, error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		st, err := c.BatchStatus(ctx, id)
		if err != nil {
			return nil, err
		}
		if report != nil {
			report(st)
		}
		if !st.Finished.IsZero() {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-t.C:
		}
	}
}
