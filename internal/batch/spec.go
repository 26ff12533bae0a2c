package batch

import (
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

	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/records"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

// ErrNotFound means no batch record has that id.
var ErrNotFound = errors.New("batch not found")

// ErrOutputInUse is wrapped (with queue.ErrInvalidPayload) by the error of a
// batch whose output prefix another batch already writes to.
var ErrOutputInUse = errors.New("batch output prefix in use")

// Spec describes a dataset run: one job per object under Input.
type Spec struct {
	// ID names the batch. Empty means derived from the other fields, so
	// running the same batch again resumes it.
	ID string `json:"id"`
	// Guest runs on every object.
	Guest string `json:"guest"`
	// Type is queue.TypeImage or queue.TypeText ("image" and "text" are
	// accepted and mapped).
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
	// Records, when set, makes the batch split its objects into records:
	// one job per shard of each object, the guest running on every record
	// of it.
	Records *RecordsSpec `json:"records,omitempty"`
	// RetentionSeconds is how long the batch's record (its counts and
	// items) stays in Redis after it finished; 0 means DefaultRetention.
	// Retrying its failures keeps it again until it finishes anew. Outputs
	// and the manifest in S3 are not touched.
	RetentionSeconds int64 `json:"retention_seconds,omitempty"`
}

// RecordsSpec says how a record batch reads its objects.
type RecordsSpec struct {
	// Format is records.JSONL, CSV, Lines or Tar.
	Format string `json:"format"`
	// Field is the JSON lines field that is each record's input (empty:
	// the whole line).
	Field string `json:"field,omitempty"`
	// Column is the CSV column that is each record's input: its name in
	// the header row, or its index from 0; empty means the whole row.
	Column string `json:"column,omitempty"`
	// Header says each CSV object's first row names its columns (it is
	// not a record). A column given by name implies it.
	Header bool `json:"header,omitempty"`
	// Member is the extension of the tar member that is each sample's
	// input; empty means the sample's first member.
	Member string `json:"member,omitempty"`
	// ShardBytes and ShardRecords bound a shard; records.DefaultShardBytes
	// and DefaultShardRecords when 0.
	ShardBytes   int64 `json:"shard_bytes,omitempty"`
	ShardRecords int64 `json:"shard_records,omitempty"`
	// Merge joins the done shards' outputs, in input order, into
	// MergedName under the output prefix when the batch ends.
	Merge bool `json:"merge,omitempty"`
}

// MergedName is the object a record batch with Merge joins its outputs
// into, under its output prefix.
const MergedName = "merged.jsonl"

// withDefaults validates r and fills its defaults.
func (r RecordsSpec) withDefaults() (RecordsSpec, error) {
	c := records.Config{Format: r.Format, Field: r.Field, Member: r.Member}
	if err := c.Validate(); err != nil {
		return r, fmt.Errorf("%w: %w", queue.ErrInvalidPayload, err)
	}
	if r.Column != "" {
		if _, err := strconv.Atoi(r.Column); err != nil {
			r.Header = true
		}
	}
	switch {
	case r.ShardBytes == 0:
		r.ShardBytes = records.DefaultShardBytes
	case r.ShardBytes < 1 || r.ShardBytes > queue.MaxShardBytes:
		return r, fmt.Errorf("%w: shard bytes %d: want 1 to %d", queue.ErrInvalidPayload, r.ShardBytes, queue.MaxShardBytes)
	}
	switch {
	case r.ShardRecords == 0:
		r.ShardRecords = records.DefaultShardRecords
	case r.ShardRecords < 1 || r.ShardRecords > 10_000_000:
		return r, fmt.Errorf("%w: shard records %d: want 1 to 10,000,000", queue.ErrInvalidPayload, r.ShardRecords)
	}
	if len(r.Field) > 256 || len(r.Column) > 256 || len(r.Member) > 32 {
		return r, fmt.Errorf("%w: records field, column or member too long", queue.ErrInvalidPayload)
	}
	return r, nil
}

// ShardKey is the item key of the shard of object key starting at byte
// start.
func ShardKey(key string, start int64) string { return key + "@" + strconv.FormatInt(start, 10) }

// ShardJob is the job for one shard of object key (version etag), holding
// records sh of the batch (First is the batch's index), read with c.
func (s Spec) ShardJob(key, etag string, c records.Config, sh records.Shard) queue.Job {
	job := s.ItemJob(key)
	in, _ := s3url.ParsePrefixURL(s.Input)
	out, _ := s3url.ParsePrefixURL(s.Output)
	o := s3url.BatchItemOutput(in, out, key, s.Guest)
	o.Key = strings.TrimSuffix(o.Key, ".json") + fmt.Sprintf(".%012d.jsonl", sh.Start)
	job.Payload.Output = o.String()
	job.Payload.Shard = &queue.Shard{Config: c, Start: sh.Start, End: sh.End, First: sh.First, Count: sh.Count, ETag: etag}
	return job
}

// DefaultRetention is how long a finished batch's record is kept unless
// its spec says otherwise.
const DefaultRetention = 7 * 24 * time.Hour

// maxRetentionSeconds bounds a spec's retention: ten years.
const maxRetentionSeconds = 10 * 365 * 24 * 3600

// WithDefaults validates s and fills its defaults, including a derived ID.
func (s Spec) WithDefaults() (Spec, error) {
	typ, ok := queue.TaskType(s.Type)
	if !ok {
		return s, fmt.Errorf("%w: batch type %q: want image or text", queue.ErrInvalidPayload, s.Type)
	}
	s.Type = typ
	if err := queue.ValidateGuestRef(s.Guest); err != nil {
		return s, err
	}
	in, err := s3url.ParsePrefixURL(s.Input)
	if err != nil {
		return s, fmt.Errorf("%w: batch input: %w", queue.ErrInvalidPayload, err)
	}
	if err := ValidateInclude(s.Include); err != nil {
		return s, err
	}
	if s.MaxSize < 0 {
		return s, fmt.Errorf("%w: max size %d is negative", queue.ErrInvalidPayload, s.MaxSize)
	}
	if s.Queue == "" {
		s.Queue = "default"
	}
	switch {
	case s.RetentionSeconds == 0:
		s.RetentionSeconds = int64(DefaultRetention / time.Second)
	case s.RetentionSeconds < 0 || s.RetentionSeconds > maxRetentionSeconds:
		return s, fmt.Errorf("%w: batch retention %d s: want 1 s to ten years", queue.ErrInvalidPayload, s.RetentionSeconds)
	}
	if err := (&queue.Payload{Guest: s.Guest, Data: []byte{}, Params: s.Params}).Validate(); err != nil {
		return s, err
	}
	if s.Records != nil {
		r, err := s.Records.withDefaults()
		if err != nil {
			return s, err
		}
		s.Records = &r
	}
	if s.ID == "" {
		s.ID = s.derivedID()
	} else if !validBatchID(s.ID) {
		return s, fmt.Errorf("%w: batch id %q: use 1-64 letters, digits, '-' or '_'", queue.ErrInvalidPayload, s.ID)
	}
	if s.Output == "" {
		s.Output = s3url.BatchOutputPrefix(in.Bucket, s.ID)
	}
	out, err := s3url.ParsePrefixURL(s.Output)
	if err != nil {
		return s, fmt.Errorf("%w: batch output: %w", queue.ErrInvalidPayload, err)
	}
	if out.Bucket == in.Bucket && strings.HasPrefix(out.Key, in.Key) {
		return s, fmt.Errorf("%w: batch output %s lies under its input %s: a rerun would process the results", queue.ErrInvalidPayload, s.Output, s.Input)
	}
	return s, nil
}

// ValidateInclude checks an include glob: path.Match syntax, which the
// planner matches keys with (the Node client ports the same check; both
// are tested with testdata/include_vectors.json). Empty is valid.
func ValidateInclude(glob string) error {
	if !utf8.ValidString(glob) {
		return fmt.Errorf("%w: include glob %q: not valid UTF-8", queue.ErrInvalidPayload, glob)
	}
	// path.Match checks the whole pattern even when the name cannot match.
	if _, err := path.Match(glob, ""); err != nil {
		return fmt.Errorf("%w: include glob %q: %w", queue.ErrInvalidPayload, glob, err)
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
func (s Spec) derivedID() string {
	h := sha256.New()
	for _, f := range []string{s.Type, s.Guest, s.Input, s.Output, s.Include, strconv.FormatInt(s.MaxSize, 10), s.Queue} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	for _, k := range slices.Sorted(maps.Keys(s.Params)) {
		h.Write([]byte(k + "=" + s.Params[k]))
		h.Write([]byte{0})
	}
	if s.Records != nil {
		b, _ := json.Marshal(s.Records)
		h.Write(b)
	}
	return "b-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// OutputObject names the object called name (s3url.ManifestName,
// s3url.SummaryName) directly under the output prefix of s (a spec with
// its defaults, see WithDefaults).
func (s Spec) OutputObject(name string) s3url.ObjectURL {
	out, _ := s3url.ParsePrefixURL(s.Output)
	return s3url.Child(out, name)
}

// ItemTaskID is the task id of the job for one object of a batch: the same
// object version always gets the same id, so a rerun enqueues nothing twice.
func ItemTaskID(batchID, key, etag string) string {
	h := sha256.Sum256([]byte(batchID + "\x00" + key + "\x00" + etag))
	return batchID + "-" + hex.EncodeToString(h[:12])
}

// Item states in a batch's status hash.
const (
	// ItemPending: the item has a job that has not finished.
	ItemPending = "pending"
	// ItemDone: the item's job wrote its output.
	ItemDone = "done"
	// ItemFailed: the item's job failed permanently.
	ItemFailed = "failed"
	// ItemCanceled: the batch was canceled before the item's job ran.
	ItemCanceled = "canceled"
	// ItemSkipped: the planner made no job of the item (over MaxSize, say).
	ItemSkipped = "skipped"
)

// Status is a batch's record.
type Status struct {
	ID       string `json:"id"`
	Spec     Spec   `json:"spec"`
	Total    int64  `json:"total"`    // objects listed (final once Listed)
	Enqueued int64  `json:"enqueued"` // items with a job
	Done     int64  `json:"done"`
	Failed   int64  `json:"failed"`
	Canceled int64  `json:"canceled"`
	Skipped  int64  `json:"skipped"`
	Bytes    int64  `json:"bytes"` // input bytes enqueued
	Listed   bool   `json:"listed"`
	Cancel   bool   `json:"cancel_requested"`
	// ManifestWritten is set once _manifest.jsonl and _summary.json exist.
	ManifestWritten bool      `json:"manifest_written"`
	Started         time.Time `json:"started"`
	Finished        time.Time `json:"finished,omitzero"`
	// Error says why the batch ended without running its items, when the
	// planner refused it (see FailBatch).
	Error string `json:"error,omitempty"`
	// A record batch's records: planned (in enqueued shards), in done
	// shards, in failed and canceled shards, and those of done shards
	// that got an error line.
	Records         int64 `json:"records,omitempty"`
	RecordsDone     int64 `json:"records_done,omitempty"`
	RecordsFailed   int64 `json:"records_failed,omitempty"`
	RecordsCanceled int64 `json:"records_canceled,omitempty"`
	RecordErrors    int64 `json:"record_errors,omitempty"`
}

// Remaining is the number of items not yet in a final state.
func (b *Status) Remaining() int64 {
	return b.Total - b.Done - b.Failed - b.Canceled - b.Skipped
}
