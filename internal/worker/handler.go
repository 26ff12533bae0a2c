package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
)

// Metadata keys written on output objects.
const (
	// MetaTaskID holds the id of the task that wrote the object.
	MetaTaskID = "wasmjobs-task-id"
	// MetaGuest holds the digest of the guest that produced it.
	MetaGuest = "wasmjobs-guest"
	// MetaRecordErrors holds, on a shard's output, how many of its lines
	// are records' errors: an attempt that finds the output written by its
	// own task reports them without running the shard again.
	MetaRecordErrors = "wasmjobs-record-errors"
)

// ObjectStore is the part of blob.Store the handler uses: what the guest
// registry uses too (stat, size-limited get, put with metadata).
type ObjectStore = guests.ObjectStore

// handlerConfig configures a handler; a Worker fills it from its Config.
type handlerConfig struct {
	// Store reads inputs and writes outputs. Required.
	Store ObjectStore
	// Runtime runs guests. Required.
	Runtime *sandbox.Runtime
	// Guests resolves guest references. Required.
	Guests *guests.Registry
	// MaxInputBytes caps input objects. Defaults to 64 MiB.
	MaxInputBytes int64
	// MaxOutputBytes caps a guest's stdout. Defaults to 64 MiB.
	MaxOutputBytes int
	// MaxResultBytes caps what a job writes through asynq's result writer,
	// which Redis keeps for the task's retention: an inline job's output
	// over it fails permanently, naming the S3 output option. Defaults to
	// 1 MiB.
	MaxResultBytes int
	// Access limits the objects jobs may read and write. The zero value
	// allows every bucket but the guest registry's.
	Access s3url.Access
	// GuestTimeout bounds one guest run. Defaults to 60 s. A job's asynq
	// timeout or deadline, less ResultReserve, wins when it is earlier, so
	// that a guest stopped at it is archived as a timeout, not retried.
	GuestTimeout time.Duration
	// ResultReserve is the time kept back from a job's deadline for writing
	// its result, at most a quarter of the time left. Defaults to 2 s.
	ResultReserve time.Duration
	// MaxRunning caps the guests running at once. A job waits for a slot
	// (or the end of its context) before its guest starts, and the slot is
	// held until the guest instance has returned, even past the job's
	// context, which asynq takes as a free slot. Defaults to 2 × CPUs; a
	// Worker sets its Concurrency when one is configured.
	MaxRunning int
	// OutputPrefix is where outputs of S3 inputs without an explicit output
	// go: "<prefix>/<input key>.<guest>.json". An empty Bucket means the
	// input's bucket. Defaults to key prefix "results".
	OutputPrefix s3url.ObjectURL
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics, when set, count jobs and time guest runs.
	Metrics *Metrics
	// Batches records the outcome of jobs that belong to a batch. Nil means
	// batch jobs run like any other.
	Batches BatchRecorder
}

// BatchRecorder keeps dataset runs' progress: the handler reports each batch
// job's final outcome and asks whether its batch was canceled.
// batch.Recorder implements it.
type BatchRecorder interface {
	// Canceled reports whether the batch was canceled.
	Canceled(ctx context.Context, batchID string) (bool, error)
	// Finished records a job's final outcome (Status batch.ItemDone,
	// batch.ItemFailed or batch.ItemCanceled). It may be called more than
	// once for the same item (at-least-once delivery); later calls are
	// no-ops. An outcome for an item the batch holds under another task id,
	// or for a batch that does not exist, is refused with an error wrapping
	// batch.ErrNotBatchItem or batch.ErrNotFound.
	Finished(ctx context.Context, batchID string, it batch.Item) error
}

var (
	_ BatchRecorder   = (*batch.Recorder)(nil)
	_ BatchReconciler = (*batch.Recorder)(nil)
)

func (c handlerConfig) withDefaults() handlerConfig {
	if c.MaxInputBytes <= 0 {
		c.MaxInputBytes = 64 << 20
	}
	if c.MaxOutputBytes <= 0 {
		c.MaxOutputBytes = 64 << 20
	}
	if c.MaxResultBytes <= 0 {
		c.MaxResultBytes = 1 << 20
	}
	if c.GuestTimeout <= 0 {
		c.GuestTimeout = 60 * time.Second
	}
	if c.ResultReserve <= 0 {
		c.ResultReserve = 2 * time.Second
	}
	if c.OutputPrefix.Key == "" && c.OutputPrefix.Bucket == "" {
		c.OutputPrefix.Key = "results"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// handler processes wasm:image and wasm:text tasks for a Worker. It is an
// asynq.Handler.
type handler struct {
	cfg handlerConfig
	// slots holds one token per guest running now.
	slots chan struct{}
	// logs, when set, keeps a completed job's stderr tail as its log
	// (queue.SetJobLog); a started Worker sets it.
	logs redis.Scripter
	// runners run the guests.
	runners *runners
}

var _ asynq.Handler = (*handler)(nil)

// newHandler returns a handler for cfg.
func newHandler(cfg handlerConfig) (*handler, error) {
	if cfg.Store == nil || cfg.Runtime == nil || cfg.Guests == nil {
		return nil, errors.New("worker: the handler needs Store, Runtime and Guests")
	}
	n := cfg.MaxRunning
	if n <= 0 {
		n = 2 * runtime.NumCPU()
	}
	return &handler{cfg: cfg.withDefaults(), slots: make(chan struct{}, n), runners: newRunners()}, nil
}

// runGuest runs mod in a slot, with the guest's deadline cut to leave time
// for the result before the job's own deadline, and returns how long the
// run took once it had its slot.
func (h *handler) runGuest(ctx context.Context, mod *sandbox.Module, opts sandbox.RunOptions) (*sandbox.Result, time.Duration, error) {
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, fmt.Errorf("waiting for a guest slot: %w", ctx.Err())
	}
	defer func() { <-h.slots }()
	var err error
	if opts.Timeout, err = h.guestTime(ctx); err != nil {
		return nil, 0, err
	}
	var res *sandbox.Result
	// The run's time starts once it has a slot: the wait is the queue's.
	start := time.Now()
	err = h.runners.run(func() (err error) {
		res, err = h.cfg.Runtime.Run(ctx, mod, opts)
		return err
	})
	return res, time.Since(start), err
}

// guestTime is how long the guest side of a job (compiling its module,
// running it) may take: GuestTimeout, or less when the job's own deadline,
// less the reserve for writing the result, comes first. Ending there, a
// guest's timeout is the handler's to report (archived), not asynq's (which
// would retry the job).
func (h *handler) guestTime(ctx context.Context) (time.Duration, error) {
	t := h.cfg.GuestTimeout
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return 0, fmt.Errorf("no time left for the guest: %w", context.DeadlineExceeded)
		}
		t = min(t, left-min(h.cfg.ResultReserve, left/4))
	}
	return t, nil
}

// Summary is the result a job writes through asynq's result writer when its
// output went to S3.
type Summary struct {
	Output     string `json:"output"`
	Bytes      int    `json:"bytes"`
	Guest      string `json:"guest"`
	DurationMS int64  `json:"duration_ms"`
	// Skipped is true when an earlier attempt of this task already wrote the
	// output.
	Skipped bool `json:"skipped,omitempty"`
	// Records and RecordErrors count a shard job's records and those that
	// got an error line.
	Records      int64 `json:"records,omitempty"`
	RecordErrors int64 `json:"record_errors,omitempty"`
}

// permanent marks err as a failure of the job itself: asynq archives the
// task with err's text as the reason instead of retrying it.
func permanent(err error) error { return fmt.Errorf("%w (%w)", err, asynq.SkipRetry) }

// ProcessTask runs one job.
func (h *handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	start := time.Now()
	taskID, _ := asynq.GetTaskID(ctx)
	var stats shardStats
	p, err := h.process(ctx, t, taskID, &stats)
	if p != nil && p.Batch != "" && h.cfg.Batches != nil {
		err = h.recordBatch(ctx, p, taskID, time.Since(start), stats, err)
	}
	// The attributes are built only for a record that is written: a
	// successful job logs at debug level, off by default.
	log := h.cfg.Logger
	switch {
	case err == nil:
		if log.Enabled(ctx, slog.LevelDebug) {
			log.Debug("job done", "task", taskID, "type", t.Type(), "duration", time.Since(start))
		}
		h.cfg.Metrics.job(t.Type(), "done")
	case errors.Is(err, asynq.SkipRetry):
		log.Warn("job failed permanently", "task", taskID, "type", t.Type(), "err", err)
		h.cfg.Metrics.job(t.Type(), "failed")
	default:
		log.Warn("job failed, will retry", "task", taskID, "type", t.Type(), "err", err)
		h.cfg.Metrics.job(t.Type(), "retry")
	}
	return err
}

// process runs the job; it returns the payload once decoded, with the
// job's error.
func (h *handler) process(ctx context.Context, t *asynq.Task, taskID string, stats *shardStats) (*queue.Payload, error) {
	if t.Type() != queue.TypeImage && t.Type() != queue.TypeText {
		return nil, permanent(fmt.Errorf("unsupported task type %q", t.Type()))
	}
	p, err := queue.DecodePayload(t.Payload())
	if err != nil {
		return nil, permanent(err)
	}
	if p.Batch != "" && h.cfg.Batches != nil {
		canceled, err := h.cfg.Batches.Canceled(ctx, p.Batch)
		if err != nil {
			return p, fmt.Errorf("batch %s: %w", p.Batch, err)
		}
		if canceled {
			return p, errBatchCanceled
		}
	}
	return p, h.run(ctx, t, taskID, p, stats)
}

var errBatchCanceled = errors.New("batch canceled")

// recordBatch reports a batch job's final outcome; a retryable error with
// retries left is not final.
func (h *handler) recordBatch(ctx context.Context, p *queue.Payload, taskID string, d time.Duration, stats shardStats, jobErr error) error {
	out := batch.Item{TaskID: taskID, Output: p.Output, DurationMS: d.Milliseconds()}
	if u, err := s3url.ParseObjectURL(p.Input); err == nil {
		out.Key = u.Key
	}
	if p.Shard != nil {
		out.Key = batch.ShardKey(out.Key, p.Shard.Start)
		if jobErr == nil {
			out.RecordErrors = stats.recordErrors
		}
	}
	if jobErr == nil {
		out.Log = stats.log
	}
	switch {
	case jobErr == nil:
		out.Status = batch.ItemDone
	case errors.Is(jobErr, errBatchCanceled):
		out.Status, out.Error, out.Output = batch.ItemCanceled, "batch canceled", ""
		jobErr = nil // nothing to retry: the job completes without work
	case errors.Is(jobErr, asynq.SkipRetry) || lastAttempt(ctx):
		out.Status, out.Error, out.Output = batch.ItemFailed, jobErr.Error(), ""
	default:
		return jobErr
	}
	if err := h.cfg.Batches.Finished(ctx, p.Batch, out); err != nil {
		if errors.Is(err, batch.ErrNotBatchItem) || errors.Is(err, batch.ErrNotFound) {
			// A payload naming a batch it was not planned by: the batch is
			// left alone and the job fails, whatever it did.
			return permanent(fmt.Errorf("job claims batch %s: %w", p.Batch, err))
		}
		// Retried either way (recording is idempotent): a failure the batch
		// does not know about would leave it unfinished forever.
		if jobErr != nil {
			return fmt.Errorf("record batch outcome: %w (the job failed: %s)", err, jobErr.Error())
		}
		return fmt.Errorf("record batch outcome: %w", err)
	}
	return jobErr
}

// lastAttempt reports whether a failure now archives the task.
func lastAttempt(ctx context.Context) bool {
	retried, ok1 := asynq.GetRetryCount(ctx)
	maxRetry, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && retried >= maxRetry
}

func (h *handler) run(ctx context.Context, t *asynq.Task, taskID string, p *queue.Payload, stats *shardStats) error {
	var in s3url.ObjectURL
	if p.Input != "" {
		in, _ = s3url.ParseObjectURL(p.Input) // validated by DecodePayload
	}
	out, hasOut, err := h.outputURL(p, in)
	if err != nil {
		return permanent(err)
	}
	if p.Input != "" {
		if err := h.checkInput(in); err != nil {
			return permanent(err)
		}
	}
	if hasOut {
		if err := h.checkOutput(out); err != nil {
			return permanent(err)
		}
	}

	if hasOut && taskID != "" {
		info, err := h.cfg.Store.Stat(ctx, out)
		switch {
		case err == nil && info.Metadata[MetaTaskID] == taskID && p.Shard != nil:
			// A shard's output also says how many of its records got an
			// error line; without that (written before it did) the shard
			// runs again.
			if bad, err := strconv.ParseInt(info.Metadata[MetaRecordErrors], 10, 64); err == nil && bad >= 0 {
				stats.recordErrors = bad
				return h.writeSummary(t, Summary{Output: out.String(), Bytes: int(info.Size), Guest: info.Metadata[MetaGuest], Skipped: true,
					Records: p.Shard.Count, RecordErrors: bad})
			}
		case err == nil && info.Metadata[MetaTaskID] == taskID:
			return h.writeSummary(t, Summary{Output: out.String(), Bytes: int(info.Size), Guest: info.Metadata[MetaGuest], Skipped: true})
		case err != nil && !errors.Is(err, blob.ErrNotFound):
			return storeError("check output", err)
		}
	}

	limit, err := h.guestTime(ctx)
	if err != nil {
		return err
	}
	resolveCtx, cancel := context.WithTimeout(ctx, limit)
	mod, err := h.cfg.Guests.Resolve(resolveCtx, p.Guest)
	cancel()
	if err != nil {
		return classify(err)
	}

	if p.Shard != nil {
		return h.runShard(ctx, t, taskID, p, in, out, mod, stats)
	}
	input := p.Data
	if p.Input != "" {
		input, _, err = h.cfg.Store.Get(ctx, in, h.cfg.MaxInputBytes)
		switch {
		case errors.Is(err, blob.ErrNotFound):
			return permanent(fmt.Errorf("input object missing: %w", err))
		case errors.Is(err, blob.ErrTooLarge):
			return permanent(fmt.Errorf("input over the size limit: %w", err))
		case err != nil:
			return storeError("read input", err)
		}
	}
	if input == nil {
		input = []byte{}
	}

	res, ran, err := h.runGuest(ctx, mod, sandbox.RunOptions{
		Stdin:     input,
		Params:    p.Params,
		Name:      p.Guest,
		MaxOutput: h.cfg.MaxOutputBytes,
	})
	outcome, outBytes := "ok", 0
	if err != nil {
		outcome = "error"
		var ge *sandbox.GuestError
		if errors.As(err, &ge) {
			outcome = guestOutcome(ge.Kind)
		}
	} else {
		outBytes = len(res.Stdout)
	}
	h.cfg.Metrics.run(p.Guest, outcome, ran, len(input), outBytes)
	if err != nil {
		return classify(err)
	}

	if !hasOut {
		if err := h.writeResult(t, res.Stdout); err != nil {
			return err
		}
		h.keepLog(ctx, taskID, res.Stderr, stats)
		return nil
	}
	ct := "application/json"
	if v := p.Params["content_type"]; v != "" {
		ct = v
	}
	md := map[string]string{MetaTaskID: taskID, MetaGuest: mod.Digest}
	if err := h.cfg.Store.Put(ctx, out, res.Stdout, ct, md); err != nil {
		return storeError("write output", err)
	}
	if err := h.writeSummary(t, Summary{
		Output: out.String(), Bytes: len(res.Stdout), Guest: mod.Digest,
		DurationMS: res.Duration.Milliseconds(),
	}); err != nil {
		return err
	}
	h.keepLog(ctx, taskID, res.Stderr, stats)
	return nil
}

// keepLog keeps what a guest that succeeded wrote to stderr (its tail,
// sandbox.RunOptions.StderrTail) as the job's log, readable with the job's
// state for its retention. The job is done either way: a log that could
// not be written is only reported.
func (h *handler) keepLog(ctx context.Context, taskID, stderr string, stats *shardStats) {
	stats.log = stderr // a batch job's item keeps it too: its task is deleted when it completes
	q, ok := asynq.GetQueueName(ctx)
	if stderr == "" || h.logs == nil || taskID == "" || !ok {
		return
	}
	if err := queue.SetJobLog(ctx, h.logs, q, taskID, stderr); err != nil {
		h.cfg.Logger.Warn("job log not kept", "queue", q, "id", taskID, "err", err)
	}
}

// outputURL picks where the job's output goes; false means the result
// writer.
func (h *handler) outputURL(p *queue.Payload, in s3url.ObjectURL) (s3url.ObjectURL, bool, error) {
	if p.Output != "" {
		u, err := s3url.ParseObjectURL(p.Output)
		return u, err == nil, err
	}
	if p.Input == "" {
		return s3url.ObjectURL{}, false, nil
	}
	return s3url.DefaultOutput(h.cfg.OutputPrefix, in, p.Guest), true, nil
}

// writeSummary stores a Summary as the job's result.
func (h *handler) writeSummary(t *asynq.Task, sum Summary) error {
	b, err := json.Marshal(sum)
	if err != nil {
		return permanent(err)
	}
	return h.writeResult(t, b)
}

// ErrResultTooLarge means a result is over Config.MaxResultBytes.
var ErrResultTooLarge = errors.New("result too large for Redis")

// writeResult stores b as the job's result (kept in Redis for the task's
// retention).
func (h *handler) writeResult(t *asynq.Task, b []byte) error {
	if len(b) > h.cfg.MaxResultBytes {
		return permanent(fmt.Errorf("%w: the guest wrote %d bytes, more than the %d a result may hold; give the job an S3 \"output\" (s3://bucket/key) to write it there", ErrResultTooLarge, len(b), h.cfg.MaxResultBytes))
	}
	w := t.ResultWriter()
	if w == nil {
		return nil
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// storeError classifies an S3 failure: an object the store refuses (its
// name or size) is the job's problem; anything else may pass and is retried.
func storeError(op string, err error) error {
	if errors.Is(err, blob.ErrInvalidObject) {
		return permanent(fmt.Errorf("%s: %w", op, err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

// guestOutcome names a guest failure kind for metrics.
func guestOutcome(kind error) string {
	switch kind {
	case sandbox.ErrExit:
		return "exit"
	case sandbox.ErrTrap:
		return "trap"
	case sandbox.ErrTimeout:
		return "timeout"
	case sandbox.ErrMemoryLimit:
		return "memory_limit"
	case sandbox.ErrOutputTooLarge:
		return "output_too_large"
	}
	return "invalid"
}

// classify maps guest and registry errors to permanent failures and leaves
// everything else retryable.
func classify(err error) error {
	var ge *sandbox.GuestError
	if errors.As(err, &ge) || errors.Is(err, guests.ErrUnknownGuest) {
		return permanent(err)
	}
	return err
}
