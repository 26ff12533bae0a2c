package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

// Client reads and writes batch state in Redis and enqueues what batches
// run. It is safe for concurrent use. Create it with [NewClient], or [New]
// on a queue client's connection.
type Client struct {
	rdb       redis.UniversalClient
	q         *queue.Client
	inspector *asynq.Inspector
	owned     bool
}

// New returns a Client on q's Redis connection, which it does not own.
func New(q *queue.Client) *Client {
	return &Client{rdb: q.Redis(), q: q, inspector: q.Inspector()}
}

// NewClient returns a Client on its own connection to the Redis named by
// opt; Close releases it.
func NewClient(opt asynq.RedisConnOpt) (*Client, error) {
	rc, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("batch: unsupported Redis connection option %T", opt)
	}
	c := New(queue.NewClient(rc))
	c.owned = true
	return c, nil
}

// Close releases the Redis connection if the Client opened it.
func (c *Client) Close() error {
	if !c.owned {
		return nil
	}
	return c.rdb.Close()
}

// CreateBatch writes the batch record if it does not exist yet and returns
// the current status; a second call with the same spec resumes the batch.
//
// A new batch claims its output prefix: a batch whose output prefix is
// another batch's (one a rerun would overwrite the manifest and outputs
// of) is refused with an error wrapping ErrOutputInUse. The claim lasts as
// long as the batch record, finished or not: the manifest and outputs it
// protects outlive the run. Nested prefixes ("out/" and "out/a/") are not
// claims on each other: their manifests cannot collide (no job writes a
// manifest's name), and their outputs only when the outer batch's input
// holds the inner's relative keys.
func (c *Client) CreateBatch(ctx context.Context, spec Spec) (*Status, error) {
	spec, err := spec.WithDefaults()
	if err != nil {
		return nil, err
	}
	st, err := c.BatchStatus(ctx, spec.ID)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, err
	default:
		if err := sameBatch(st.Spec, spec); err != nil {
			return nil, err
		}
	}
	out, _ := s3url.ParsePrefixURL(spec.Output) // validated by WithDefaults
	claimed, err := c.rdb.SetNX(ctx, batchOutputKey(out), spec.ID, 0).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs: create batch %s: %w", spec.ID, err)
	}
	if !claimed {
		owner, err := c.rdb.Get(ctx, batchOutputKey(out)).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("jobs: create batch %s: %w", spec.ID, err)
		}
		if owner != spec.ID {
			// The owner's record expired or was deleted: the prefix is free.
			gone, err := c.rdb.Exists(ctx, batchKey(owner)).Result()
			if err != nil {
				return nil, fmt.Errorf("jobs: create batch %s: %w", spec.ID, err)
			}
			if gone == 0 {
				n, err := swapClaimScript.Run(ctx, c.rdb, []string{batchOutputKey(out)}, owner, spec.ID).Int64()
				if err != nil {
					return nil, fmt.Errorf("jobs: create batch %s: %w", spec.ID, err)
				}
				if n == 1 {
					owner, claimed = spec.ID, true
				}
			}
		}
		if owner != spec.ID {
			return nil, fmt.Errorf("jobs: batch %s: output %s belongs to batch %s, whose manifest and outputs it would overwrite; choose another output prefix: %w: %w",
				spec.ID, spec.Output, owner, ErrOutputInUse, queue.ErrInvalidPayload)
		}
	}
	js, _ := json.Marshal(spec)
	now := time.Now()
	// The record, then the global index: a transaction may only touch
	// one hash slot on Redis Cluster. A crash between the two leaves a
	// batch out of the list until the same start runs again (ZADD NX).
	pipe := c.rdb.TxPipeline()
	pipe.HSetNX(ctx, batchKey(spec.ID), "spec", js)
	pipe.HSetNX(ctx, batchKey(spec.ID), "started", now.UnixMilli())
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("jobs: create batch %s: %w", spec.ID, err)
	}
	if err := c.rdb.ZAddNX(ctx, batchesKey, redis.Z{Score: float64(now.UnixMilli()), Member: spec.ID}).Err(); err != nil {
		return nil, fmt.Errorf("jobs: create batch %s: index it: %w", spec.ID, err)
	}
	if st, err = c.BatchStatus(ctx, spec.ID); err != nil {
		return nil, err
	}
	if err := sameBatch(st.Spec, spec); err != nil {
		// A concurrent start of the same id with another output won;
		// the claim taken here is for an output no batch writes.
		if have, perr := s3url.ParsePrefixURL(st.Spec.Output); claimed && (perr != nil || batchOutputKey(have) != batchOutputKey(out)) {
			c.rdb.Del(ctx, batchOutputKey(out))
		}
		return nil, err
	}
	return st, nil
}

// swapClaimScript hands an output claim from ARGV[1] to ARGV[2] if ARGV[1]
// still holds it, or deletes it when ARGV[2] is empty. KEYS: the claim.
var swapClaimScript = redis.NewScript(swapClaimSource)

// swapClaimSource is swapClaimScript's Lua, which the Node client runs too
// (TestNodeBatchScripts holds the two equal).
const swapClaimSource = `
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
	return 0
end
if ARGV[2] == "" then
	redis.call("DEL", KEYS[1])
else
	redis.call("SET", KEYS[1], ARGV[2])
end
return 1
`

// ErrBatchRunning is returned by DeleteBatch for a batch that has not
// finished.
var ErrBatchRunning = errors.New("batch has not finished")

// DeleteBatch removes a finished batch's record, items and output claim
// from Redis now, as its retention would later; its outputs and manifest
// in S3 stay. A running batch is refused (cancel it first).
func (c *Client) DeleteBatch(ctx context.Context, id string) error {
	st, err := c.BatchStatus(ctx, id)
	if err != nil {
		return err
	}
	if st.Finished.IsZero() {
		return fmt.Errorf("jobs: delete batch %s: %w: cancel it first, or wait for it", id, ErrBatchRunning)
	}
	if err := c.rdb.Del(ctx, batchKeys(id)...).Err(); err != nil {
		return fmt.Errorf("jobs: delete batch %s: %w", id, err)
	}
	if err := c.rdb.ZRem(ctx, batchesKey, id).Err(); err != nil {
		return fmt.Errorf("jobs: delete batch %s: unlist it: %w", id, err)
	}
	if out, err := s3url.ParsePrefixURL(st.Spec.Output); err == nil {
		if err := swapClaimScript.Run(ctx, c.rdb, []string{batchOutputKey(out)}, id, "").Err(); err != nil {
			return fmt.Errorf("jobs: delete batch %s: release its output prefix: %w", id, err)
		}
	}
	return nil
}

// sameBatch refuses a spec that names an existing batch but not its run.
func sameBatch(have, want Spec) error {
	if have.Input != want.Input || have.Guest != want.Guest || have.Type != want.Type || have.Output != want.Output {
		return fmt.Errorf("jobs: batch %s exists with a different spec (input %s, guest %s): %w", want.ID, have.Input, have.Guest, queue.ErrInvalidPayload)
	}
	return nil
}

// StartBatch creates the batch record and enqueues its plan: a worker lists
// the input prefix and enqueues one job per object. Calling it again for the
// same spec resumes the batch without enqueueing anything twice.
func (c *Client) StartBatch(ctx context.Context, spec Spec) (*Status, error) {
	st, err := c.CreateBatch(ctx, spec)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(st.Spec)
	if _, err := c.q.EnqueueTask(ctx, asynq.NewTask(queue.TypeBatch, body), asynq.Queue(st.Spec.Queue), asynq.MaxRetry(5)); err != nil {
		return nil, fmt.Errorf("jobs: enqueue batch plan %s: %w", st.ID, err)
	}
	return st, nil
}

// BatchStatus reads a batch's record.
func (c *Client) BatchStatus(ctx context.Context, id string) (*Status, error) {
	h, err := c.rdb.HGetAll(ctx, batchKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs: batch %s: %w", id, err)
	}
	if len(h) == 0 || h["spec"] == "" {
		return nil, fmt.Errorf("jobs: %s: %w", id, ErrNotFound)
	}
	st := &Status{ID: id}
	if err := json.Unmarshal([]byte(h["spec"]), &st.Spec); err != nil {
		return nil, fmt.Errorf("jobs: batch %s: corrupt spec: %w", id, err)
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(h[k], 10, 64); return n }
	st.Total, st.Enqueued, st.Done, st.Failed = num("total"), num("enqueued"), num("done"), num("failed")
	st.Canceled, st.Skipped, st.Bytes = num("canceled"), num("skipped"), num("bytes")
	st.Listed, st.Cancel, st.ManifestWritten = h["listed"] == "1", h["cancel"] == "1", h["manifest"] == "1"
	st.Started = time.UnixMilli(num("started"))
	st.Error = h["error"]
	st.Records, st.RecordsDone, st.RecordsFailed = num("records"), num("records_done"), num("records_failed")
	st.RecordsCanceled, st.RecordErrors = num("records_canceled"), num("record_errors")
	if f := num("finished"); f > 0 {
		st.Finished = time.UnixMilli(f)
	}
	return st, nil
}

// failBatchScript ends an unfinished batch with a reason and starts its
// retention. KEYS: record, status, items. ARGV: reason, now. Returns 1, or
// 0 when there is no such batch or it had finished.
var failBatchScript = redis.NewScript(retentionFuncs + `
if redis.call("HEXISTS", KEYS[1], "spec") == 0 or redis.call("HEXISTS", KEYS[1], "finished") == 1 then
	return 0
end
redis.call("HSET", KEYS[1], "error", ARGV[1], "listed", "1", "finished", ARGV[2])
expire_batch()
return 1
`)

// FailBatch ends a batch that cannot run (its spec is invalid, say) with
// the reason, instead of leaving it running forever. Items already
// enqueued keep running; a finished or missing batch is left alone.
func (c *Client) FailBatch(ctx context.Context, id, reason string) error {
	if err := failBatchScript.Run(ctx, c.rdb, batchKeys(id), reason, time.Now().UnixMilli()).Err(); err != nil {
		return fmt.Errorf("jobs: fail batch %s: %w", id, err)
	}
	return nil
}

// setErrorScript gives a batch a reason unless it has one. KEYS: record.
// ARGV: reason.
var setErrorScript = redis.NewScript(`
if redis.call("HEXISTS", KEYS[1], "spec") == 1 then
	redis.call("HSETNX", KEYS[1], "error", ARGV[1])
end
return 0
`)

// SetBatchError records why a batch went wrong without changing its
// progress (a finished batch whose manifest the worker may not write,
// say); the first reason stays. A missing batch is left alone.
func (c *Client) SetBatchError(ctx context.Context, id, reason string) error {
	if err := setErrorScript.Run(ctx, c.rdb, []string{batchKey(id)}, reason).Err(); err != nil {
		return fmt.Errorf("jobs: batch %s: %w", id, err)
	}
	return nil
}

// SetBatchManifestWritten records that the batch's manifest exists.
func (c *Client) SetBatchManifestWritten(ctx context.Context, id string) error {
	if err := c.rdb.HSet(ctx, batchKey(id), "manifest", "1").Err(); err != nil {
		return fmt.Errorf("jobs: batch %s: %w", id, err)
	}
	return nil
}

// ListBatches returns the most recent batches, newest first.
func (c *Client) ListBatches(ctx context.Context, limit int) ([]*Status, error) {
	if limit <= 0 {
		limit = 50
	}
	ids, err := c.rdb.ZRevRange(ctx, batchesKey, 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs: list batches: %w", err)
	}
	out := make([]*Status, 0, len(ids))
	for _, id := range ids {
		st, err := c.BatchStatus(ctx, id)
		if errors.Is(err, ErrNotFound) {
			// Its retention ran out: the index forgets it too.
			c.rdb.ZRem(ctx, batchesKey, id)
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}
