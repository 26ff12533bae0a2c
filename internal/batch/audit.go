package batch

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// auditInterval is the default of Recorder.AuditInterval: how long a
// running batch must go without an item finishing before Reconcile checks
// that the jobs of its pending items still exist.
const auditInterval = 5 * time.Minute

// auditPage is how many status entries one HSCAN of an audit asks for.
const auditPage = 500

// auditKey holds "<items ended>:<unix ms>": the progress the audit last
// saw of batch id and since when. It is in the batch's slot.
func auditKey(id string) string { return "wasmjobs:batch:{" + id + "}:audit" }

// stalledScript reports 1 when the batch's progress (ARGV[1], items ended)
// is what it was ARGV[3] ms or more ago, and restarts the clock so that the
// next audit is an interval away (several workers may ask); otherwise it
// notes the progress and returns 0. KEYS: the audit key. ARGV: progress,
// now (ms), interval (ms).
var stalledScript = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
local now, every = tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl = math.max(every * 4, 60000)
if v then
	local p, t = string.match(v, "^(%d+):(%d+)$")
	if p == ARGV[1] then
		if now - tonumber(t) < every then return 0 end
		redis.call("SET", KEYS[1], ARGV[1] .. ":" .. ARGV[2], "PX", ttl)
		return 1
	end
end
redis.call("SET", KEYS[1], ARGV[1] .. ":" .. ARGV[2], "PX", ttl)
return 0
`)

// auditBatches finds the pending items of running batches on queues whose
// jobs no longer exist (deleted by hand, with asynq's inspector or
// asynqmon; lost with a Redis that had not written them down) and records
// them as failed, so that the batch can finish. A batch is audited only
// when no item of it ended for an audit interval, and by one worker per
// interval: a batch that makes progress costs one small script call five
// times an interval.
func (r *Recorder) auditBatches(ctx context.Context, queues []string) (int, error) {
	c := r.Client
	every := cmp.Or(r.AuditInterval, auditInterval)
	// Progress is sampled five times an interval, not on every pass.
	r.auditMu.Lock()
	due := time.Since(r.lastAudit) >= every/5
	if due {
		r.lastAudit = time.Now()
	}
	r.auditMu.Unlock()
	if !due {
		return 0, nil
	}
	ids, err := c.rdb.ZRange(ctx, batchesKey, 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("batch: audit: %w", err)
	}
	n := 0
	var manifestErrs []error
	for chunk := range slices.Chunk(ids, 100) {
		recs := make([]*redis.SliceCmd, len(chunk))
		if _, err := c.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, id := range chunk {
				recs[i] = pipe.HMGet(ctx, batchKey(id), "spec", "listed", "finished", "done", "failed", "canceled", "skipped", "manifest", "error")
			}
			return nil
		}); err != nil {
			return n, fmt.Errorf("batch: audit: %w", err)
		}
		for i, id := range chunk {
			k, err := r.auditIfStalled(ctx, id, recs[i].Val(), queues, every)
			n += k
			var merr *manifestError
			if errors.As(err, &merr) {
				// One batch's manifest that cannot be written (S3 away, its
				// bucket gone) must not hold up the audit of the others.
				manifestErrs = append(manifestErrs, err)
				continue
			}
			if err != nil {
				return n, fmt.Errorf("batch: audit %s: %w", id, err)
			}
		}
	}
	return n, errors.Join(manifestErrs...)
}

// manifestError is auditIfStalled's error when it could not write the
// manifest of a finished batch.
type manifestError struct {
	id  string
	err error
}

func (e *manifestError) Error() string { return "batch: manifest of " + e.id + ": " + e.err.Error() }
func (e *manifestError) Unwrap() error { return e.err }

// auditIfStalled audits batch id (v: its record's fields as auditBatches
// reads them) if it runs on one of queues and made no progress for every.
// A finished batch of those queues still without its manifest past the
// manifest grace gets it written: one a cancel finished without any job
// left to write it (the Node client's cancelBatch writes no S3), or whose
// writer was killed while no archived job of it is left for
// reconcileQueue to find it by.
func (r *Recorder) auditIfStalled(ctx context.Context, id string, v []any, queues []string, every time.Duration) (int, error) {
	str := func(i int) string {
		if i >= len(v) {
			return ""
		}
		s, _ := v[i].(string)
		return s
	}
	var spec Spec
	if str(0) == "" || json.Unmarshal([]byte(str(0)), &spec) != nil || !slices.Contains(queues, spec.Queue) {
		return 0, nil // gone, or not ours to run
	}
	if str(2) != "" {
		if str(7) == "1" || str(8) != "" {
			return 0, nil // finished with its manifest, or with a reason it has none
		}
		if err := r.manifestLeftOver(ctx, id); err != nil {
			return 0, &manifestError{id, err}
		}
		return 0, nil
	}
	if str(1) != "1" {
		return 0, nil // still planning
	}
	var ended int64
	for i := 3; i < 7; i++ {
		k, _ := strconv.ParseInt(str(i), 10, 64)
		ended += k
	}
	stalled, err := stalledScript.Run(ctx, r.Client.rdb, []string{auditKey(id)}, ended, time.Now().UnixMilli(), every.Milliseconds()).Int()
	if err != nil || stalled == 0 {
		return 0, err
	}
	return r.auditBatch(ctx, id, spec.Queue)
}

// auditBatch records as failed each pending item of batch id whose job is
// not in asynq's queue q, unless retry-failed set it pending moments ago.
func (r *Recorder) auditBatch(ctx context.Context, id, q string) (int, error) {
	c := r.Client
	n := 0
	var cursor uint64
	for {
		kv, next, err := c.rdb.HScan(ctx, batchStatusKey(id), cursor, "", auditPage).Result()
		if err != nil {
			return n, err
		}
		var pending []string
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == ItemPending {
				pending = append(pending, kv[i])
			}
		}
		gone, err := c.goneItems(ctx, id, q, pending)
		if err != nil {
			return n, err
		}
		for _, it := range gone {
			failed, _, err := r.failItem(ctx, id, it, "its job no longer exists")
			if err != nil {
				return n, err
			}
			if failed {
				n++
			}
		}
		if cursor = next; cursor == 0 {
			return n, nil
		}
	}
}

// goneItems returns, as failed items, those of keys (pending items of batch
// id) whose task is not in queue q, in two round trips.
func (c *Client) goneItems(ctx context.Context, id, q string, keys []string) ([]Item, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	items := make([]*redis.StringCmd, len(keys))
	retried := make([]*redis.StringCmd, len(keys))
	if _, err := c.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, k := range keys {
			items[i] = pipe.HGet(ctx, batchItemsKey(id), k)
			retried[i] = pipe.HGet(ctx, batchKey(id), "retried:"+k)
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	var cands []Item
	for i, k := range keys {
		var it Item
		if json.Unmarshal([]byte(items[i].Val()), &it) != nil || it.TaskID == "" {
			continue
		}
		if inRetryGrace(retried[i].Val()) {
			continue // retry-failed is putting its job back
		}
		cands = append(cands, Item{Key: k, Status: ItemFailed, TaskID: it.TaskID,
			Error: "its job no longer exists in queue " + q + " (deleted, or lost with Redis), so nothing will report it"})
	}
	// Tasks live in the queue's slot, apart from the batch's keys.
	exists := make([]*redis.IntCmd, len(cands))
	if _, err := c.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, it := range cands {
			exists[i] = pipe.Exists(ctx, asynqTaskKey(q, it.TaskID))
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var out []Item
	for i, it := range cands {
		if exists[i].Val() == 0 {
			out = append(out, it)
		}
	}
	return out, nil
}

// asynqTaskKey is the key of a task in asynq's Redis layout (its
// internal/base.TaskKey), part of the wire format the producers write.
func asynqTaskKey(q, id string) string { return "asynq:{" + q + "}:t:" + id }
