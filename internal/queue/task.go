package queue

import (
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// DefaultResultRetention is how long an inline job's result stays readable
// when the job gives no Retention option.
const DefaultResultRetention = 24 * time.Hour

// ErrGroupUnsupported is returned for a job given asynq's Group option: no
// wasmjobs worker aggregates groups, so the job would stay "aggregating"
// forever. It wraps ErrInvalidPayload.
var ErrGroupUnsupported = fmt.Errorf("%w: the Group option is not supported: no wasmjobs worker aggregates groups, so the job would wait in state \"aggregating\" forever; enqueue it without a group", ErrInvalidPayload)

// NewTask builds the asynq task for a job without enqueueing it, with the
// options an enqueue uses: taskType must be TypeImage or TypeText, p must
// be valid, and an inline job without an output is retained for
// DefaultResultRetention unless opts set Retention.
func NewTask(taskType string, p Payload, opts ...asynq.Option) (*asynq.Task, []asynq.Option, error) {
	if taskType != TypeImage && taskType != TypeText {
		return nil, nil, fmt.Errorf("%w: task type %q: want %q or %q", ErrInvalidPayload, taskType, TypeImage, TypeText)
	}
	if hasOption(opts, asynq.GroupOpt) {
		return nil, nil, ErrGroupUnsupported
	}
	body, err := p.Encode()
	if err != nil {
		return nil, nil, err
	}
	if p.Data != nil && p.Output == "" {
		opts = KeepResult(opts)
	}
	return asynq.NewTask(taskType, body), opts, nil
}

// KeepResult returns opts with Retention(DefaultResultRetention) added
// unless they set a retention: without one asynq deletes a completed task
// at once, and its result with it. opts itself is not modified.
func KeepResult(opts []asynq.Option) []asynq.Option {
	if hasOption(opts, asynq.RetentionOpt) {
		return opts
	}
	return append(opts[:len(opts):len(opts)], asynq.Retention(DefaultResultRetention))
}

func hasOption(opts []asynq.Option, t asynq.OptionType) bool {
	for _, o := range opts {
		if o.Type() == t {
			return true
		}
	}
	return false
}
