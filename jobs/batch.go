package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/queue"
)

// TypeBatch is the task type of a batch plan: a worker lists the batch's
// input prefix and enqueues one job per object.
const TypeBatch = "wasm:batch"

// ErrBatchNotFound means no batch record has that id.
var ErrBatchNotFound = errors.New("batch not found")

// ErrOutputInUse is wrapped (with ErrInvalidPayload) by the error of a
// batch whose output prefix another batch already writes to.
var ErrOutputInUse = errors.New("batch output prefix in use")

// BatchSpec describes a dataset run: one job per object under Input.
type BatchSpec struct {
	// ID names the batch. Empty means derived from the other fields, so
	// running the same batch again resumes it.
	ID string `json:"id"`
	// Guest runs on every object.
	Guest string `json:"guest"`
	// Type is TypeImage or TypeText.
	Type string `json:"type"`
	// Input is the s3://bucket/prefix/ listed.
	Input string `json:"input"`
	// Output is the s3://bucket/prefix/ results go to. Defaults to
	// s3://<input bucket>/wasmjobs-results/<id>/.
	Output string `json:"output,omitempty"`
	// Include is a glob (path.Match) on the key relative to Input; empty
	// means every object.
	Include string `json:"include,omitempty"`
	// MaxSize skips objects larger than this many bytes (0: no limit); they
	// are listed as skipped in the manifest.
	MaxSize int64 `json:"max_size,omitempty"`
	// Queue defaults to "default".
	Queue string `json:"queue,omitempty"`
	// Params are handed to every job.
	Params map[string]string `json:"params,omitempty"`
	// MaxRetry bounds retries of transient failures (default asynq's 25).
	MaxRetry *int `json:"max_retry,omitempty"`
}

// WithDefaults validates s and fills its defaults, including a derived ID.
func (s BatchSpec) WithDefaults() (BatchSpec, error) {
	typ, ok := queue.TaskType(s.Type)
	if !ok {
		return s, fmt.Errorf("%w: batch type %q: want image or text", ErrInvalidPayload, s.Type)
	}
	s.Type = typ
	if err := ValidateGuestRef(s.Guest); err != nil {
		return s, err
	}
	in, err := ParsePrefixURL(s.Input)
	if err != nil {
		return s, fmt.Errorf("%w: batch input: %w", ErrInvalidPayload, err)
	}
	if err := ValidateInclude(s.Include); err != nil {
		return s, err
	}
	if s.MaxSize < 0 {
		return s, fmt.Errorf("%w: max size %d is negative", ErrInvalidPayload, s.MaxSize)
	}
	if s.Queue == "" {
		s.Queue = "default"
	}
	if err := (&Payload{Guest: s.Guest, Data: []byte{}, Params: s.Params}).Validate(); err != nil {
		return s, err
	}
	if s.ID == "" {
		s.ID = s.derivedID()
	} else if !validBatchID(s.ID) {
		return s, fmt.Errorf("%w: batch id %q: use 1-64 letters, digits, '-' or '_'", ErrInvalidPayload, s.ID)
	}
	if s.Output == "" {
		s.Output = "s3://" + in.Bucket + "/wasmjobs-results/" + s.ID + "/"
	}
	out, err := ParsePrefixURL(s.Output)
	if err != nil {
		return s, fmt.Errorf("%w: batch output: %w", ErrInvalidPayload, err)
	}
	if out.Bucket == in.Bucket && strings.HasPrefix(out.Key, in.Key) {
		return s, fmt.Errorf("%w: batch output %s lies under its input %s: a rerun would process the results", ErrInvalidPayload, s.Output, s.Input)
	}
	return s, nil
}

// ValidateInclude checks an include glob: path.Match syntax, which the
// planner matches keys with (the Node client ports the same check; both
// are tested with testdata/include_vectors.json). Empty is valid.
func ValidateInclude(glob string) error {
	if !utf8.ValidString(glob) {
		return fmt.Errorf("%w: include glob %q: not valid UTF-8", ErrInvalidPayload, glob)
	}
	// path.Match checks the whole pattern even when the name cannot match.
	if _, err := path.Match(glob, ""); err != nil {
		return fmt.Errorf("%w: include glob %q: %w", ErrInvalidPayload, glob, err)
	}
	return nil
}

func validBatchID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// derivedID hashes what makes two runs the same batch.
func (s BatchSpec) derivedID() string {
	h := sha256.New()
	for _, f := range []string{s.Type, s.Guest, s.Input, s.Output, s.Include, strconv.FormatInt(s.MaxSize, 10), s.Queue} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	for _, k := range slices.Sorted(maps.Keys(s.Params)) {
		h.Write([]byte(k + "=" + s.Params[k]))
		h.Write([]byte{0})
	}
	return "b-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// The files a finished batch writes directly under its output prefix.
const (
	// ManifestName lists every input object: key, status, output, error.
	ManifestName = "_manifest.jsonl"
	// SummaryName holds the batch record.
	SummaryName = "_summary.json"
)

// OutputObject names the object called name directly under the output
// prefix of s (a spec with its defaults, see WithDefaults).
func (s BatchSpec) OutputObject(name string) ObjectURL {
	out, _ := ParsePrefixURL(s.Output)
	if out.Key != "" && !strings.HasSuffix(out.Key, "/") {
		out.Key += "/"
	}
	return ObjectURL{Bucket: out.Bucket, Key: out.Key + name}
}

// ItemTaskID is the task id of the job for one object of a batch: the same
// object version always gets the same id, so a rerun enqueues nothing twice.
func ItemTaskID(batchID, key, etag string) string {
	h := sha256.Sum256([]byte(batchID + "\x00" + key + "\x00" + etag))
	return batchID + "-" + hex.EncodeToString(h[:12])
}

// Item states in a batch's status hash.
const (
	ItemPending  = "pending"
	ItemDone     = "done"
	ItemFailed   = "failed"
	ItemCanceled = "canceled"
	ItemSkipped  = "skipped"
)

// BatchStatus is a batch's record.
type BatchStatus struct {
	ID       string    `json:"id"`
	Spec     BatchSpec `json:"spec"`
	Total    int64     `json:"total"`    // objects listed (final once Listed)
	Enqueued int64     `json:"enqueued"` // items with a job
	Done     int64     `json:"done"`
	Failed   int64     `json:"failed"`
	Canceled int64     `json:"canceled"`
	Skipped  int64     `json:"skipped"`
	Bytes    int64     `json:"bytes"` // input bytes enqueued
	Listed   bool      `json:"listed"`
	Cancel   bool      `json:"cancel_requested"`
	// ManifestWritten is set once _manifest.jsonl and _summary.json exist.
	ManifestWritten bool      `json:"manifest_written"`
	Started         time.Time `json:"started"`
	Finished        time.Time `json:"finished,omitzero"`
	// Error says why the batch ended without running its items, when the
	// planner refused it (see FailBatch).
	Error string `json:"error,omitempty"`
}

// Remaining is the number of items not yet in a final state.
func (b *BatchStatus) Remaining() int64 {
	return b.Total - b.Done - b.Failed - b.Canceled - b.Skipped
}

// Redis keys of a batch; the {id} hash tag keeps them in one cluster slot.
func batchKey(id string) string       { return "wasmjobs:batch:{" + id + "}" }
func batchStatusKey(id string) string { return "wasmjobs:batch:{" + id + "}:status" }
func batchItemsKey(id string) string  { return "wasmjobs:batch:{" + id + "}:items" }

const batchesKey = "wasmjobs:batches"

// batchOutputKey holds the id of the batch that owns an output prefix.
// The prefix is taken the way outputs are named (jobs.OutputKey): with
// surrounding slashes trimmed, so "out", "out/" and "/out/" are one claim.
// It is a single key, claimed with SETNX, so it needs no hash tag.
func batchOutputKey(out ObjectURL) string {
	return "wasmjobs:batch-output:" + out.Bucket + "/" + strings.Trim(out.Key, "/")
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
func (c *Client) CreateBatch(ctx context.Context, spec BatchSpec) (*BatchStatus, error) {
	spec, err := spec.WithDefaults()
	if err != nil {
		return nil, err
	}
	st, err := c.BatchStatus(ctx, spec.ID)
	switch {
	case errors.Is(err, ErrBatchNotFound):
	case err != nil:
		return nil, err
	default:
		if err := sameBatch(st.Spec, spec); err != nil {
			return nil, err
		}
	}
	out, _ := ParsePrefixURL(spec.Output) // validated by WithDefaults
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
			return nil, fmt.Errorf("jobs: batch %s: output %s belongs to batch %s, whose manifest and outputs it would overwrite; choose another output prefix: %w: %w",
				spec.ID, spec.Output, owner, ErrOutputInUse, ErrInvalidPayload)
		}
	}
	js, _ := json.Marshal(spec)
	now := time.Now()
	pipe := c.rdb.TxPipeline()
	pipe.HSetNX(ctx, batchKey(spec.ID), "spec", js)
	pipe.HSetNX(ctx, batchKey(spec.ID), "started", now.UnixMilli())
	pipe.ZAddNX(ctx, batchesKey, redis.Z{Score: float64(now.UnixMilli()), Member: spec.ID})
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("jobs: create batch %s: %w", spec.ID, err)
	}
	if st, err = c.BatchStatus(ctx, spec.ID); err != nil {
		return nil, err
	}
	if err := sameBatch(st.Spec, spec); err != nil {
		// A concurrent start of the same id with another output won;
		// the claim taken here is for an output no batch writes.
		if have, perr := ParsePrefixURL(st.Spec.Output); claimed && (perr != nil || batchOutputKey(have) != batchOutputKey(out)) {
			c.rdb.Del(ctx, batchOutputKey(out))
		}
		return nil, err
	}
	return st, nil
}

// sameBatch refuses a spec that names an existing batch but not its run.
func sameBatch(have, want BatchSpec) error {
	if have.Input != want.Input || have.Guest != want.Guest || have.Type != want.Type || have.Output != want.Output {
		return fmt.Errorf("jobs: batch %s exists with a different spec (input %s, guest %s)", want.ID, have.Input, have.Guest)
	}
	return nil
}

// StartBatch creates the batch record and enqueues its plan: a worker lists
// the input prefix and enqueues one job per object. Calling it again for the
// same spec resumes the batch without enqueueing anything twice.
func (c *Client) StartBatch(ctx context.Context, spec BatchSpec) (*BatchStatus, error) {
	st, err := c.CreateBatch(ctx, spec)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(st.Spec)
	if _, err := c.q.EnqueueTask(ctx, asynq.NewTask(TypeBatch, body), Queue(st.Spec.Queue), MaxRetry(5)); err != nil {
		return nil, fmt.Errorf("jobs: enqueue batch plan %s: %w", st.ID, err)
	}
	return st, nil
}

// BatchStatus reads a batch's record.
func (c *Client) BatchStatus(ctx context.Context, id string) (*BatchStatus, error) {
	h, err := c.rdb.HGetAll(ctx, batchKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs: batch %s: %w", id, err)
	}
	if len(h) == 0 || h["spec"] == "" {
		return nil, fmt.Errorf("jobs: %s: %w", id, ErrBatchNotFound)
	}
	st := &BatchStatus{ID: id}
	if err := json.Unmarshal([]byte(h["spec"]), &st.Spec); err != nil {
		return nil, fmt.Errorf("jobs: batch %s: corrupt spec: %w", id, err)
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(h[k], 10, 64); return n }
	st.Total, st.Enqueued, st.Done, st.Failed = num("total"), num("enqueued"), num("done"), num("failed")
	st.Canceled, st.Skipped, st.Bytes = num("canceled"), num("skipped"), num("bytes")
	st.Listed, st.Cancel, st.ManifestWritten = h["listed"] == "1", h["cancel"] == "1", h["manifest"] == "1"
	st.Started = time.UnixMilli(num("started"))
	st.Error = h["error"]
	if f := num("finished"); f > 0 {
		st.Finished = time.UnixMilli(f)
	}
	return st, nil
}

// failBatchScript ends an unfinished batch with a reason. KEYS: record.
// ARGV: reason, now. Returns 1, or 0 when there is no such batch or it had
// finished.
var failBatchScript = redis.NewScript(`
if redis.call("HEXISTS", KEYS[1], "spec") == 0 or redis.call("HEXISTS", KEYS[1], "finished") == 1 then
	return 0
end
redis.call("HSET", KEYS[1], "error", ARGV[1], "listed", "1", "finished", ARGV[2])
return 1
`)

// FailBatch ends a batch that cannot run (its spec is invalid, say) with
// the reason, instead of leaving it running forever. Items already
// enqueued keep running; a finished or missing batch is left alone.
func (c *Client) FailBatch(ctx context.Context, id, reason string) error {
	if err := failBatchScript.Run(ctx, c.rdb, []string{batchKey(id)}, reason, time.Now().UnixMilli()).Err(); err != nil {
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
func (c *Client) ListBatches(ctx context.Context, limit int) ([]*BatchStatus, error) {
	if limit <= 0 {
		limit = 50
	}
	ids, err := c.rdb.ZRevRange(ctx, batchesKey, 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("jobs: list batches: %w", err)
	}
	out := make([]*BatchStatus, 0, len(ids))
	for _, id := range ids {
		st, err := c.BatchStatus(ctx, id)
		if errors.Is(err, ErrBatchNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}
