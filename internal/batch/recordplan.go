package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/records"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

// Opener is the part of blob.Store a record batch's planner also uses:
// reading an object from its start.
type Opener interface {
	Open(ctx context.Context, u s3url.ObjectURL) (io.ReadCloser, blob.ObjectInfo, error)
}

var _ Opener = (*blob.Store)(nil)

// plannedField is the batch record's field that says object key was
// planned whole: "<records> <items>".
func plannedField(key string) string { return "planned:" + key }

// planRecords plans a record batch: each listed object is read once and
// cut into shards at record boundaries, one job per shard, its records
// numbered across the batch in listing order. An object planned whole
// before (plannedField) is not read again; one read part way (a planner
// stopped) is read again, and the shards it had enqueued are found
// recorded. Every pass lists from the start: the record numbers of an
// object depend on the objects before it.
func planRecords(ctx context.Context, c *Client, store Lister, spec Spec, cfg PlanConfig, chunks <-chan []blob.ObjectInfo, listErr <-chan error) (PlanResult, error) {
	opener, ok := store.(Opener)
	if !ok {
		return PlanResult{}, fmt.Errorf("plan %s: the store cannot read objects", spec.ID)
	}
	in, _ := s3url.ParsePrefixURL(spec.Input)
	var res PlanResult
	var base int64 // records of the objects before
	for chunk := range chunks {
		for _, obj := range chunk {
			if canceled, err := c.BatchCancelRequested(ctx, spec.ID); err != nil {
				return res, err
			} else if canceled {
				res.Finished, err = c.SetBatchListed(ctx, spec.ID, res.Listed)
				return res, err
			}
			recs, items, err := planObject(ctx, c, opener, spec, cfg, s3url.ObjectURL{Bucket: in.Bucket, Key: obj.Key}, obj.ETag, base, &res)
			if err != nil {
				return res, err
			}
			base += recs
			res.Listed += items
			if cfg.Progress != nil {
				cfg.Progress(res.Listed, res.Enqueued)
			}
		}
	}
	return res, finishListing(ctx, c, spec.ID, &res, listErr)
}

// planObject enqueues the shards of one object whose first record is the
// batch's record base, and returns its records and items.
func planObject(ctx context.Context, c *Client, opener Opener, spec Spec, cfg PlanConfig, u s3url.ObjectURL, etag string, base int64, res *PlanResult) (int64, int64, error) {
	if v, err := c.rdb.HGet(ctx, batchKey(spec.ID), plannedField(u.Key)).Result(); err == nil {
		if recs, items, ok := strings.Cut(v, " "); ok {
			r, _ := strconv.ParseInt(recs, 10, 64)
			n, _ := strconv.ParseInt(items, 10, 64)
			res.Resumed += n
			return r, n, nil
		}
	}
	rc := spec.recordsConfig()
	if spec.Records.Column != "" {
		col, err := csvColumn(ctx, opener, u, spec.Records.Column, rc.MaxRecordBytes)
		if err != nil && !errors.Is(err, records.ErrMalformed) {
			return 0, 0, fmt.Errorf("read %s: %w", u, err)
		}
		if err != nil {
			// An object without the column: one skipped item says so.
			return 0, 1, c.markSkipped(ctx, spec.ID, Item{Key: ShardKey(u.Key, 0), Object: u.Key, Status: ItemSkipped, Error: err.Error()}, res)
		}
		rc.Column = col
	}
	body, _, err := opener.Open(ctx, u)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", u, err)
	}
	defer body.Close()
	var (
		jobs      []queue.Job
		items     []Item
		recs, n   int64
		readUpTo  int64
		chunkSize = max(cfg.ChunkSize, 1)
	)
	flush := func() error {
		if len(items) == 0 {
			return nil
		}
		// Shards a stopped pass recorded are not enqueued again: their
		// jobs may have run and gone already.
		keys := make([]string, len(items))
		for i, it := range items {
			keys[i] = it.Key
		}
		missing, err := c.MissingBatchItems(ctx, spec.ID, keys)
		if err != nil {
			return err
		}
		var todoJobs []queue.Job
		var todo []Item
		for i := range items {
			if missing[i] {
				todoJobs, todo = append(todoJobs, jobs[i]), append(todo, items[i])
			} else {
				res.Resumed++
			}
		}
		e, r, s, err := enqueueItems(ctx, c, spec.ID, todoJobs, todo, nil)
		res.Enqueued += e
		res.Resumed += r
		res.Skipped += s
		jobs, items = jobs[:0], items[:0]
		return err
	}
	for sh, err := range records.Split(records.Scan(body, 0, rc, false), spec.Records.ShardBytes, spec.Records.ShardRecords) {
		if err != nil {
			if ctx.Err() != nil || !isRecordsError(err) {
				return 0, 0, fmt.Errorf("read %s: %w", u, err)
			}
			// The object's records end here: the rest is listed as
			// skipped, with the reason, and the batch goes on.
			if err := flush(); err != nil {
				return 0, 0, err
			}
			n++
			if err := c.markSkipped(ctx, spec.ID, Item{Key: ShardKey(u.Key, readUpTo), Object: u.Key, Start: readUpTo, Status: ItemSkipped,
				Error: fmt.Sprintf("records from byte %d on not read: %v", readUpTo, err)}, res); err != nil {
				return 0, 0, err
			}
			break
		}
		sh.First += base
		job := spec.ShardJob(u.Key, etag, rc, sh)
		key := ShardKey(u.Key, sh.Start)
		id := ItemTaskID(spec.ID, key, etag)
		job.Options = append(job.Options, asynq.TaskID(id))
		jobs = append(jobs, job)
		items = append(items, Item{Key: key, Status: ItemPending, TaskID: id, Output: job.Payload.Output, Bytes: sh.End - sh.Start,
			Object: u.Key, Start: sh.Start, End: sh.End, First: sh.First, Records: sh.Count})
		recs += sh.Count
		n++
		readUpTo = sh.End
		if len(jobs) == chunkSize {
			if err := flush(); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, 0, err
	}
	if err := c.rdb.HSet(ctx, batchKey(spec.ID), plannedField(u.Key), fmt.Sprintf("%d %d", recs, n)).Err(); err != nil {
		return 0, 0, fmt.Errorf("jobs: batch %s: %w", spec.ID, err)
	}
	return recs, n, nil
}

// isRecordsError tells a problem of the object's bytes (a record over the
// bound, a corrupt tar) from a failure to read them, which the plan's next
// attempt tries again.
func isRecordsError(err error) bool {
	return errors.Is(err, records.ErrRecordTooLarge) || errors.Is(err, records.ErrMalformed)
}

func (c *Client) markSkipped(ctx context.Context, id string, it Item, res *PlanResult) error {
	res.Skipped++
	return c.MarkBatchItems(ctx, id, []Item{it})
}

// csvColumn reads the header row of a CSV object and returns the index of
// column (a name, or an index from 0).
func csvColumn(ctx context.Context, opener Opener, u s3url.ObjectURL, column string, maxRecord int) (int, error) {
	if n, err := strconv.Atoi(column); err == nil && n >= 0 {
		return n, nil
	}
	body, _, err := opener.Open(ctx, u)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	if maxRecord == 0 {
		maxRecord = records.DefaultMaxRecordBytes
	}
	return records.CSVHeader(body, column, maxRecord)
}

// recordsConfig is the records.Config of a record batch's spec, its column
// not resolved yet (-1: the whole row).
func (s Spec) recordsConfig() records.Config {
	r := s.Records
	return records.Config{Format: r.Format, Field: r.Field, Column: -1, Header: r.Header, Member: r.Member}
}
