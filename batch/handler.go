package batch

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// PlanHandler processes jobs.TypeBatch tasks (from jobs.Client.StartBatch):
// a worker lists the batch's prefix and enqueues its jobs.
type PlanHandler struct {
	Client *jobs.Client
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
	var spec jobs.BatchSpec
	if err := json.Unmarshal(t.Payload(), &spec); err != nil {
		return fmt.Errorf("batch plan: %w: %w", err, asynq.SkipRetry)
	}
	st, err := h.Client.CreateBatch(ctx, spec)
	if err != nil {
		return fmt.Errorf("batch plan: %w: %w", err, asynq.SkipRetry)
	}
	res, err := Plan(ctx, h.Client, h.Store, st.Spec, h.Config)
	if err != nil {
		return err
	}
	if res.Finished {
		return EnsureManifest(ctx, h.Client, h.Store, st.ID)
	}
	return nil
}
