package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

// PlanHandler processes queue.TypeBatch tasks (from Client.StartBatch):
// a worker lists the batch's prefix and enqueues its jobs.
type PlanHandler struct {
	Client *Client
	Store  interface {
		Lister
		ManifestWriter
	}
	Config PlanConfig
}

var _ asynq.Handler = (*PlanHandler)(nil)

// ProcessTask plans the batch; planning is idempotent, so a retried plan
// resumes.
func (h *PlanHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var spec Spec
	if err := json.Unmarshal(t.Payload(), &spec); err != nil {
		return fmt.Errorf("batch plan: %w: %w", err, asynq.SkipRetry)
	}
	st, err := h.Client.CreateBatch(ctx, spec)
	if err != nil {
		return h.refuse(ctx, spec, err)
	}
	res, err := Plan(ctx, h.Client, h.Store, st.Spec, h.Config)
	if errors.Is(err, queue.ErrInvalidPayload) || errors.Is(err, s3url.ErrAccessDenied) {
		return h.refuse(ctx, st.Spec, err)
	}
	if err != nil {
		return err
	}
	if res.Finished {
		return EnsureManifest(ctx, h.Client, h.Store, st.ID, h.Config.Access)
	}
	return nil
}

// refuse ends the plan of a batch that cannot run. A spec the Go client
// would have refused can still arrive (from another producer, or an older
// one), and a valid spec may name prefixes the worker's allow-lists
// refuse; its batch ends failed with the reason instead of running forever.
// Only the batch whose record holds this very spec is failed: a plan task
// naming someone else's batch id changes nothing.
func (h *PlanHandler) refuse(ctx context.Context, spec Spec, err error) error {
	if !errors.Is(err, queue.ErrInvalidPayload) && !errors.Is(err, s3url.ErrAccessDenied) {
		// Redis or S3 away for a moment: the plan runs again, and resumes.
		return fmt.Errorf("batch plan: %w", err)
	}
	if spec.ID != "" {
		st, serr := h.Client.BatchStatus(ctx, spec.ID)
		if serr == nil && sameSpec(st.Spec, spec) {
			if ferr := h.Client.FailBatch(ctx, spec.ID, err.Error()); ferr != nil {
				return fmt.Errorf("batch plan: %w (refusing it: %w)", ferr, err)
			}
		}
	}
	return fmt.Errorf("batch plan: %w: %w", err, asynq.SkipRetry)
}

func sameSpec(a, b Spec) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
