package batch

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/queue"
)

// TestPlanRefusesOnlyWhatCannotRun: a plan that failed on Redis or S3
// being away runs again (and resumes from its checkpoint); only a spec
// that cannot run ends it for good.
func TestPlanRefusesOnlyWhatCannotRun(t *testing.T) {
	h := &PlanHandler{}
	transient := fmt.Errorf("jobs: create batch b1: %w", errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"))
	if err := h.refuse(context.Background(), Spec{}, transient); errors.Is(err, asynq.SkipRetry) {
		t.Errorf("a transient error ends the plan: %v", err)
	}
	invalid := fmt.Errorf("jobs: batch b1 exists with a different spec: %w", queue.ErrInvalidPayload)
	if err := h.refuse(context.Background(), Spec{}, invalid); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("an invalid spec is retried: %v", err)
	}
}
