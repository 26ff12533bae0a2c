package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/wasmjobs/wasmjobs/blob"
	"github.com/wasmjobs/wasmjobs/jobs"
	"github.com/wasmjobs/wasmjobs/worker/sandbox"
)

// Metadata keys written on output objects.
const (
	// MetaTaskID holds the id of the task that wrote the object.
	MetaTaskID = "wasmjobs-task-id"
	// MetaGuest holds the digest of the guest that produced it.
	MetaGuest = "wasmjobs-guest"
)

// HandlerConfig configures a Handler.
type HandlerConfig struct {
	// Store reads inputs and writes outputs. Required.
	Store ObjectStore
	// Runtime runs guests. Required.
	Runtime *sandbox.Runtime
	// Guests resolves guest references. Required.
	Guests *Registry
	// MaxInputBytes caps input objects. Defaults to 64 MiB.
	MaxInputBytes int64
	// MaxOutputBytes caps a guest's stdout. Defaults to 64 MiB.
	MaxOutputBytes int
	// GuestTimeout bounds one guest run. Defaults to 60 s. A job's asynq
	// timeout or deadline, when shorter, wins.
	GuestTimeout time.Duration
	// OutputPrefix is where outputs of S3 inputs without an explicit output
	// go: "<prefix>/<input key>.<guest>.json". An empty Bucket means the
	// input's bucket. Defaults to key prefix "results".
	OutputPrefix jobs.ObjectURL
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c HandlerConfig) withDefaults() HandlerConfig {
	if c.MaxInputBytes <= 0 {
		c.MaxInputBytes = 64 << 20
	}
	if c.MaxOutputBytes <= 0 {
		c.MaxOutputBytes = 64 << 20
	}
	if c.GuestTimeout <= 0 {
		c.GuestTimeout = 60 * time.Second
	}
	if c.OutputPrefix.Key == "" && c.OutputPrefix.Bucket == "" {
		c.OutputPrefix.Key = "results"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Handler processes wasm:image and wasm:text tasks. It is an asynq.Handler.
type Handler struct {
	cfg HandlerConfig
}

var _ asynq.Handler = (*Handler)(nil)

// NewHandler returns a Handler for cfg.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if cfg.Store == nil || cfg.Runtime == nil || cfg.Guests == nil {
		return nil, errors.New("worker: HandlerConfig needs Store, Runtime and Guests")
	}
	return &Handler{cfg: cfg.withDefaults()}, nil
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
}

// permanent marks err as a failure of the job itself: asynq archives the
// task with err's text as the reason instead of retrying it.
func permanent(err error) error { return fmt.Errorf("%w (%w)", err, asynq.SkipRetry) }

// ProcessTask runs one job.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	start := time.Now()
	taskID, _ := asynq.GetTaskID(ctx)
	log := h.cfg.Logger.With("task", taskID, "type", t.Type())
	err := h.process(ctx, t, taskID)
	switch {
	case err == nil:
		log.Debug("job done", "duration", time.Since(start))
	case errors.Is(err, asynq.SkipRetry):
		log.Warn("job failed permanently", "err", err)
	default:
		log.Warn("job failed, will retry", "err", err)
	}
	return err
}

func (h *Handler) process(ctx context.Context, t *asynq.Task, taskID string) error {
	if t.Type() != jobs.TypeImage && t.Type() != jobs.TypeText {
		return permanent(fmt.Errorf("unsupported task type %q", t.Type()))
	}
	p, err := jobs.DecodePayload(t.Payload())
	if err != nil {
		return permanent(err)
	}
	var in jobs.ObjectURL
	if p.Input != "" {
		in, _ = jobs.ParseObjectURL(p.Input) // validated by DecodePayload
	}
	out, hasOut, err := h.outputURL(p, in)
	if err != nil {
		return permanent(err)
	}

	if hasOut && taskID != "" {
		info, err := h.cfg.Store.Stat(ctx, out)
		switch {
		case err == nil && info.Metadata[MetaTaskID] == taskID:
			return h.writeSummary(t, Summary{Output: out.String(), Bytes: int(info.Size), Guest: info.Metadata[MetaGuest], Skipped: true})
		case err != nil && !errors.Is(err, blob.ErrNotFound):
			return fmt.Errorf("check output: %w", err)
		}
	}

	mod, err := h.cfg.Guests.Resolve(ctx, p.Guest)
	if err != nil {
		return classify(err)
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
			return fmt.Errorf("read input: %w", err)
		}
	}
	if input == nil {
		input = []byte{}
	}

	res, err := h.cfg.Runtime.Run(ctx, mod, sandbox.RunOptions{
		Stdin:     input,
		Params:    p.Params,
		Name:      p.Guest,
		Timeout:   h.cfg.GuestTimeout,
		MaxOutput: h.cfg.MaxOutputBytes,
	})
	if err != nil {
		return classify(err)
	}

	if !hasOut {
		return writeResult(t, res.Stdout)
	}
	ct := "application/json"
	if v := p.Params["content_type"]; v != "" {
		ct = v
	}
	md := map[string]string{MetaTaskID: taskID, MetaGuest: mod.Digest}
	if err := h.cfg.Store.Put(ctx, out, res.Stdout, ct, md); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return h.writeSummary(t, Summary{
		Output: out.String(), Bytes: len(res.Stdout), Guest: mod.Digest,
		DurationMS: res.Duration.Milliseconds(),
	})
}

// outputURL picks where the job's output goes; false means the result
// writer.
func (h *Handler) outputURL(p *jobs.Payload, in jobs.ObjectURL) (jobs.ObjectURL, bool, error) {
	if p.Output != "" {
		u, err := jobs.ParseObjectURL(p.Output)
		return u, err == nil, err
	}
	if p.Input == "" {
		return jobs.ObjectURL{}, false, nil
	}
	return DefaultOutput(h.cfg.OutputPrefix, in, p.Guest), true, nil
}

// DefaultOutput returns "<prefix>/<input key>.<guest>.json", in the input's
// bucket when prefix has none. A digest guest reference is shortened to its
// first 12 hex digits.
func DefaultOutput(prefix, in jobs.ObjectURL, guest string) jobs.ObjectURL {
	bucket := prefix.Bucket
	if bucket == "" {
		bucket = in.Bucket
	}
	if hex, ok := strings.CutPrefix(guest, "sha256:"); ok {
		guest = hex[:12]
	}
	key := in.Key + "." + guest + ".json"
	if pfx := strings.Trim(prefix.Key, "/"); pfx != "" {
		key = path.Join(pfx, key)
	}
	return jobs.ObjectURL{Bucket: bucket, Key: key}
}

// writeSummary stores a Summary as the job's result.
func (h *Handler) writeSummary(t *asynq.Task, sum Summary) error {
	b, err := json.Marshal(sum)
	if err != nil {
		return permanent(err)
	}
	return writeResult(t, b)
}

// writeResult stores b as the job's result (kept for the task's retention).
func writeResult(t *asynq.Task, b []byte) error {
	w := t.ResultWriter()
	if w == nil {
		return nil
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// classify maps guest and registry errors to permanent failures and leaves
// everything else retryable.
func classify(err error) error {
	var ge *sandbox.GuestError
	if errors.As(err, &ge) || errors.Is(err, ErrUnknownGuest) {
		return permanent(err)
	}
	return err
}
