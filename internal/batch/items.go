package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

// Item is the record of one object of a batch: what the planner marks,
// what a worker reports when the object's job ends, what Items streams
// and what a line of the manifest holds (without TaskID and Bytes).
type Item struct {
	// Key is the input object's key.
	Key string `json:"key"`
	// Status is one of the Item* states.
	Status string `json:"status"`
	// TaskID is the id of the object's job.
	TaskID string `json:"task_id,omitempty"`
	// Output is the output object's URL.
	Output string `json:"output,omitempty"`
	// Error says why the item failed, was skipped or canceled.
	Error string `json:"error,omitempty"`
	// DurationMS is how long the job took, in milliseconds.
	DurationMS int64 `json:"duration_ms,omitempty"`
	// Bytes is the input object's size.
	Bytes int64 `json:"bytes,omitempty"`
	// A record batch's item is a shard of an object (see ShardKey): its
	// object's key, its byte range [Start, End), the batch's index of its
	// first record and its number of records; RecordErrors counts the
	// records of a done shard that got an error line.
	Object       string `json:"object,omitempty"`
	Start        int64  `json:"start,omitempty"`
	End          int64  `json:"end,omitempty"`
	First        int64  `json:"first,omitempty"`
	Records      int64  `json:"records,omitempty"`
	RecordErrors int64  `json:"record_errors,omitempty"`
	// Log is what the guest of a done item wrote to stderr (its tail).
	Log string `json:"log,omitempty"`
}

// retentionFuncs give a batch's keys (KEYS: record, status, items) their
// expiry: expire_batch when the batch finishes, the spec's retention
// (DefaultRetention for a spec that names none, as older producers wrote);
// sync_expiry after a script wrote the status or items of a batch that has
// one already, so that keys made late expire with the record.
var retentionFuncs = fmt.Sprintf(`
local function expire_batch()
	local ok, spec = pcall(cjson.decode, redis.call("HGET", KEYS[1], "spec") or "")
	local s = ok and type(spec) == "table" and tonumber(spec.retention_seconds) or %d
	if s < 1 then s = %d end
	if s > %d then s = %d end
	for _, k in ipairs(KEYS) do redis.call("EXPIRE", k, math.floor(s)) end
end
local function sync_expiry()
	local t = redis.call("PTTL", KEYS[1])
	if t > 0 then
		for i = 2, #KEYS do redis.call("PEXPIRE", KEYS[i], t) end
	end
end
`, int64(DefaultRetention/time.Second), int64(DefaultRetention/time.Second), maxRetentionSeconds, maxRetentionSeconds)

// finishedCheck marks the batch finished once listing is done and no item
// is left, and starts its retention; it returns 2 when this call finished
// it. KEYS: record, status, items.
var finishedCheck = retentionFuncs + `
local function finished(rec)
	if redis.call("HGET", rec, "listed") ~= "1" or redis.call("HEXISTS", rec, "finished") == 1 then
		return false
	end
	local n = {}
	for _, f in ipairs({"total", "done", "failed", "canceled", "skipped"}) do
		n[f] = tonumber(redis.call("HGET", rec, f) or "0")
	end
	if n.total - n.done - n.failed - n.canceled - n.skipped <= 0 then
		redis.call("HSET", rec, "finished", ARGV[#ARGV])
		expire_batch()
		return true
	end
	return false
end
`

// markItemScript records an item as pending (a job exists) or skipped,
// unless it already has a state. KEYS: record, status, items. ARGV: key,
// state, item JSON, bytes, now.
var markItemScript = redis.NewScript(finishedCheck + `
if redis.call("HSETNX", KEYS[2], ARGV[1], ARGV[2]) == 0 then
	return 0
end
redis.call("HSET", KEYS[3], ARGV[1], ARGV[3])
if ARGV[2] == "skipped" then
	redis.call("HINCRBY", KEYS[1], "skipped", 1)
else
	redis.call("HINCRBY", KEYS[1], "enqueued", 1)
	redis.call("HINCRBY", KEYS[1], "bytes", ARGV[4])
	local n = tonumber(ARGV[5]) or 0
	if n > 0 then redis.call("HINCRBY", KEYS[1], "records", n) end
end
sync_expiry()
return 1
`)

// finishItemScript records a final state, once, for an item the batch
// holds with the same task id: a job cannot report on an item that is not
// its own. KEYS: record, status, items. ARGV: key, state, item JSON, now.
// Returns one of the item* outcomes: 0 (already final), 1, 2 (this call
// finished the batch), 3 (the batch had finished before), -1 (the batch has
// no such item yet), -2 (the item belongs to another task) or -3 (no such
// batch).
var finishItemScript = redis.NewScript(finishItemSource)

// finishItemSource is finishItemScript's Lua, which the Node client's
// cancelBatch runs too (TestNodeBatchScripts holds them equal).
var finishItemSource = finishedCheck + `
if redis.call("HEXISTS", KEYS[1], "spec") == 0 then
	return -3
end
local cur = redis.call("HGET", KEYS[2], ARGV[1])
if not cur then
	return -1
end
local old = redis.call("HGET", KEYS[3], ARGV[1])
local o = old and cjson.decode(old) or {}
local n = cjson.decode(ARGV[3])
if type(o.task_id) ~= "string" or o.task_id == "" or o.task_id ~= n.task_id then
	return -2
end
if cur ~= "pending" then
	return 0
end
redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])
if (n.output == nil or n.output == "") and o.output then n.output = o.output end
for _, f in ipairs({"object", "start", "end", "first", "records"}) do
	if n[f] == nil then n[f] = o[f] end
end
redis.call("HSET", KEYS[3], ARGV[1], cjson.encode(n))
redis.call("HINCRBY", KEYS[1], ARGV[2], 1)
local recs = tonumber(n.records) or 0
if recs > 0 then
	redis.call("HINCRBY", KEYS[1], "records_" .. ARGV[2], recs)
	local bad = tonumber(n.record_errors) or 0
	if bad > 0 then redis.call("HINCRBY", KEYS[1], "record_errors", bad) end
end
if redis.call("HEXISTS", KEYS[1], "finished") == 1 then
	sync_expiry()
	return 3
end
if finished(KEYS[1]) then return 2 end
return 1
`

// Outcomes of finishItemScript that are not errors.
const (
	itemAlreadyFinal    = 0 // reported before: nothing changed
	itemRecorded        = 1 // the batch goes on
	itemFinishedBatch   = 2 // the batch's last item: it finished now
	itemInFinishedBatch = 3 // recorded in a batch that had finished (failed)
)

// listedScript sets the total once listing is complete. KEYS: record,
// status, items. ARGV: total, now.
var listedScript = redis.NewScript(finishedCheck + `
redis.call("HSET", KEYS[1], "total", ARGV[1], "listed", "1")
if finished(KEYS[1]) then return 2 end
return 1
`)

// retryItemScript moves a failed item back to pending, noting when (the
// reconciler leaves such an item alone for a while: its job is still
// archived until RetryFailed runs it): the batch runs again, so its keys no
// longer expire. KEYS: record, status, items. ARGV: key, now.
var retryItemScript = redis.NewScript(retryItemSource)

// retryItemSource is retryItemScript's Lua, which the Node client's
// retryFailed runs too (TestNodeBatchScripts holds them equal).
const retryItemSource = `
if redis.call("HGET", KEYS[2], ARGV[1]) ~= "failed" then
	return 0
end
redis.call("HSET", KEYS[2], ARGV[1], "pending")
redis.call("HSET", KEYS[1], "retried:" .. ARGV[1], ARGV[2])
redis.call("HINCRBY", KEYS[1], "failed", -1)
local it = redis.call("HGET", KEYS[3], ARGV[1])
local ok, item = pcall(cjson.decode, it or "")
if ok and type(item) == "table" and (tonumber(item.records) or 0) > 0 then
	redis.call("HINCRBY", KEYS[1], "records_failed", -item.records)
end
redis.call("HDEL", KEYS[1], "finished", "manifest")
for _, k in ipairs(KEYS) do redis.call("PERSIST", k) end
return 1
`

func batchKeys(id string) []string {
	return []string{batchKey(id), batchStatusKey(id), batchItemsKey(id)}
}

// MissingBatchItems reports, for each key, whether the batch has no record
// of it yet.
func (c *Client) MissingBatchItems(ctx context.Context, id string, keys []string) ([]bool, error) {
	vals, err := c.rdb.HMGet(ctx, batchStatusKey(id), keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs: batch %s items: %w", id, err)
	}
	missing := make([]bool, len(vals))
	for i, v := range vals {
		missing[i] = v == nil
	}
	return missing, nil
}

// MarkBatchItems records items as pending or skipped (pipelined); items
// that already have a state are left alone.
func (c *Client) MarkBatchItems(ctx context.Context, id string, items []Item) error {
	if len(items) == 0 {
		return nil
	}
	keys := batchKeys(id)
	now := time.Now().UnixMilli()
	_, err := queue.EvalPipelined(ctx, c.rdb, markItemScript, func(pipe redis.Pipeliner) {
		for _, it := range items {
			js, _ := json.Marshal(it)
			markItemScript.EvalSha(ctx, pipe, keys, it.Key, it.Status, js, it.Bytes, it.Records, now)
		}
	})
	if err != nil {
		return fmt.Errorf("jobs: batch %s: mark items: %w", id, err)
	}
	return nil
}

// Errors of [Client.FinishBatchItem].
var (
	// ErrNotBatchItem means the batch holds the item under another task id:
	// the report does not come from the item's job.
	ErrNotBatchItem = errors.New("not this batch's item")
	// ErrBatchItemUnknown means the batch has no record of the item (yet:
	// the planner records an item just after enqueueing its job).
	ErrBatchItemUnknown = errors.New("batch has no such item")
)

// FinishBatchItem records an item's final state (done, failed or
// canceled). It is idempotent: a second report of the same item changes
// nothing. finished is true when this call completed the batch.
//
// Only the item's own job can report: it.TaskID must be the task id the
// batch recorded for it.Key, else the error wraps ErrNotBatchItem (or
// ErrBatchItemUnknown, or ErrNotFound).
func (c *Client) FinishBatchItem(ctx context.Context, id string, it Item) (finished bool, err error) {
	n, err := c.finishItem(ctx, id, it)
	return n == itemFinishedBatch, err
}

// finishItem is FinishBatchItem with the script's outcome: one of the
// item* constants when err is nil.
func (c *Client) finishItem(ctx context.Context, id string, it Item) (int64, error) {
	js, _ := json.Marshal(it)
	n, err := finishItemScript.Run(ctx, c.rdb, batchKeys(id), it.Key, it.Status, js, time.Now().UnixMilli()).Int64()
	switch {
	case err != nil:
		return 0, fmt.Errorf("jobs: batch %s: finish %s: %w", id, it.Key, err)
	case n == -1 && !strings.HasPrefix(it.TaskID, id+"-"):
		// Not an id ItemTaskID makes, so no planner will record the item.
		return 0, fmt.Errorf("jobs: batch %s: task %s is not the job of any item: %w", id, it.TaskID, ErrNotBatchItem)
	case n == -1:
		return 0, fmt.Errorf("jobs: batch %s: %s: %w", id, it.Key, ErrBatchItemUnknown)
	case n == -2:
		return 0, fmt.Errorf("jobs: batch %s: task %s is not the job of item %s: %w", id, it.TaskID, it.Key, ErrNotBatchItem)
	case n == -3:
		return 0, fmt.Errorf("jobs: %s: %w", id, ErrNotFound)
	}
	return n, nil
}

// SetBatchListed records that listing found total objects. finished is
// true when every item was already final.
func (c *Client) SetBatchListed(ctx context.Context, id string, total int64) (finished bool, err error) {
	n, err := listedScript.Run(ctx, c.rdb, batchKeys(id), total, time.Now().UnixMilli()).Int64()
	if err != nil {
		return false, fmt.Errorf("jobs: batch %s: listed: %w", id, err)
	}
	return n == 2, nil
}

// planCheckpoint returns where the last planning pass of batch id got to:
// the last key it enqueued and recorded a chunk up to, and how many
// objects it had counted by then ("", 0 for none).
func (c *Client) planCheckpoint(ctx context.Context, id string) (string, int64, error) {
	v, err := c.rdb.HMGet(ctx, batchKey(id), "plan_after", "plan_listed").Result()
	if err != nil {
		return "", 0, fmt.Errorf("jobs: batch %s: plan checkpoint: %w", id, err)
	}
	after, _ := v[0].(string)
	n, _ := v[1].(string)
	listed, _ := strconv.ParseInt(n, 10, 64)
	if after == "" {
		listed = 0
	}
	return after, listed, nil
}

// setPlanCheckpoint records that planning batch id got to key, having
// counted listed objects; key "" clears the checkpoint.
func (c *Client) setPlanCheckpoint(ctx context.Context, id, key string, listed int64) error {
	var err error
	if key == "" {
		err = c.rdb.HDel(ctx, batchKey(id), "plan_after", "plan_listed").Err()
	} else {
		err = c.rdb.HSet(ctx, batchKey(id), "plan_after", key, "plan_listed", listed).Err()
	}
	if err != nil {
		return fmt.Errorf("jobs: batch %s: plan checkpoint: %w", id, err)
	}
	return nil
}

// BatchCancelRequested reports whether the batch was canceled.
func (c *Client) BatchCancelRequested(ctx context.Context, id string) (bool, error) {
	v, err := c.rdb.HGet(ctx, batchKey(id), "cancel").Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("jobs: batch %s: %w", id, err)
	}
	return v == "1", nil
}

// BatchItems streams every item of a batch (in no particular order).
func (c *Client) BatchItems(ctx context.Context, id string) iter.Seq2[Item, error] {
	return func(yield func(Item, error) bool) {
		var cursor uint64
		for {
			kvs, next, err := c.rdb.HScan(ctx, batchStatusKey(id), cursor, "", 1000).Result()
			if err != nil {
				yield(Item{}, fmt.Errorf("jobs: batch %s items: %w", id, err))
				return
			}
			keys := make([]string, 0, len(kvs)/2)
			for i := 0; i+1 < len(kvs); i += 2 {
				keys = append(keys, kvs[i])
			}
			var details []any
			if len(keys) > 0 {
				if details, err = c.rdb.HMGet(ctx, batchItemsKey(id), keys...).Result(); err != nil {
					yield(Item{}, fmt.Errorf("jobs: batch %s items: %w", id, err))
					return
				}
			}
			for i, k := range keys {
				it := Item{Key: k}
				if s, ok := details[i].(string); ok {
					_ = json.Unmarshal([]byte(s), &it)
				}
				it.Key, it.Status = k, kvs[2*i+1]
				if !yield(it, nil) {
					return
				}
			}
			if cursor = next; cursor == 0 {
				return
			}
		}
	}
}

// CancelBatch stops a batch: its pending, scheduled and retrying jobs are
// deleted and recorded as canceled, and workers skip its jobs from now on.
// Jobs already running finish. It returns the number of jobs canceled.
func (c *Client) CancelBatch(ctx context.Context, id string) (canceled int, finished bool, err error) {
	st, err := c.BatchStatus(ctx, id)
	if err != nil {
		return 0, false, err
	}
	if err := c.rdb.HSet(ctx, batchKey(id), "cancel", "1").Err(); err != nil {
		return 0, false, fmt.Errorf("jobs: cancel batch %s: %w", id, err)
	}
	var pending []Item
	for it, err := range c.BatchItems(ctx, id) {
		if err != nil {
			return 0, false, err
		}
		if it.Status == ItemPending && it.TaskID != "" {
			pending = append(pending, it)
		}
	}
	for _, it := range pending {
		err := c.inspector.DeleteTask(st.Spec.Queue, it.TaskID)
		if err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			continue // active: it finishes on its own
		}
		f, err := c.FinishBatchItem(ctx, id, Item{Key: it.Key, Status: ItemCanceled, TaskID: it.TaskID, Error: "batch canceled"})
		if err != nil {
			return canceled, false, err
		}
		canceled++
		finished = finished || f
	}
	return canceled, finished, nil
}

// RetryFailed puts a batch's failed items back to work: archived jobs run
// again, and jobs no longer in Redis are enqueued anew. It returns the
// number of items retried.
func (c *Client) RetryFailed(ctx context.Context, id string) (int, error) {
	st, err := c.BatchStatus(ctx, id)
	if err != nil {
		return 0, err
	}
	var failed []Item
	for it, err := range c.BatchItems(ctx, id) {
		if err != nil {
			return 0, err
		}
		if it.Status == ItemFailed {
			failed = append(failed, it)
		}
	}
	retried := 0
	for _, it := range failed {
		n, err := retryItemScript.Run(ctx, c.rdb, batchKeys(id), it.Key, time.Now().UnixMilli()).Int64()
		if err != nil {
			return retried, fmt.Errorf("jobs: batch %s: retry %s: %w", id, it.Key, err)
		}
		if n == 0 {
			continue
		}
		err = c.inspector.RunTask(st.Spec.Queue, it.TaskID)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) || it.TaskID == "" {
			job := st.Spec.ItemJob(it.Key)
			if it.TaskID != "" {
				job.Options = append(job.Options, asynq.TaskID(it.TaskID))
			}
			_, err = c.q.Enqueue(ctx, job.Type, job.Payload, job.Options...)
		}
		if err != nil {
			return retried, fmt.Errorf("jobs: batch %s: retry %s: %w", id, it.Key, err)
		}
		retried++
	}
	return retried, nil
}

// ItemJob is the job for the object key of a batch whose spec has its
// defaults (see WithDefaults). Its task id does not depend on the object's
// version; planners use ItemTaskID with the ETag instead.
func (s Spec) ItemJob(key string) queue.Job {
	in, _ := s3url.ParsePrefixURL(s.Input)
	out, _ := s3url.ParsePrefixURL(s.Output)
	opts := []asynq.Option{asynq.Queue(s.Queue)}
	if s.MaxRetry != nil {
		opts = append(opts, asynq.MaxRetry(*s.MaxRetry))
	}
	return queue.Job{
		Type: s.Type,
		Payload: queue.Payload{
			Guest:  s.Guest,
			Input:  s3url.ObjectURL{Bucket: in.Bucket, Key: key}.String(),
			Output: s3url.BatchItemOutput(in, out, key, s.Guest).String(),
			Params: s.Params,
			Batch:  s.ID,
		},
		Options: opts,
	}
}
