package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/queue"
)

// ErrJobRunning means the call needs a job that is not running: cancel it
// first.
var ErrJobRunning = errors.New("job is running")

// JobState is what a job's record says about it.
type JobState struct {
	ID    string `json:"id"`
	Queue string `json:"queue"`
	Type  string `json:"type"`
	// State is asynq's: pending, active, scheduled, retry, archived
	// (failed for good, or canceled) or completed.
	State    string `json:"state"`
	Retried  int    `json:"retried"`
	MaxRetry int    `json:"max_retry"`
	// LastError is the reason of the last failure ("" if none).
	LastError     string    `json:"last_error,omitempty"`
	LastFailedAt  time.Time `json:"last_failed_at,omitzero"`
	NextProcessAt time.Time `json:"next_process_at,omitzero"`
	CompletedAt   time.Time `json:"completed_at,omitzero"`
	// ResultBytes is the size of a completed job's result.
	ResultBytes int `json:"result_bytes"`
	// Log is what the guest of a completed job wrote to stderr (its last
	// 2 KiB), kept with the job's record for its retention; "" when it
	// wrote nothing. A failed job's stderr tail is in LastError.
	Log string `json:"log,omitempty"`
}

// taskInfo reads a job's record; ErrJobNotFound when there is none.
func (c *Client) taskInfo(ctx context.Context, queue, id string) (*asynq.TaskInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	info, err := c.inspector.GetTaskInfo(queue, id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		return nil, fmt.Errorf("jobs: %s/%s: %w", queue, id, ErrJobNotFound)
	case err != nil:
		return nil, fmt.Errorf("jobs: read %s/%s: %w", queue, id, err)
	}
	return info, nil
}

// State returns the job's state, attempts and last failure; ErrJobNotFound
// when no such job exists (never enqueued, or a completed job whose
// retention ran out).
func (c *Client) State(ctx context.Context, q, id string) (*JobState, error) {
	info, err := c.taskInfo(ctx, q, id)
	if err != nil {
		return nil, err
	}
	st := &JobState{ID: info.ID, Queue: info.Queue, Type: info.Type, State: info.State.String(), Retried: info.Retried, MaxRetry: info.MaxRetry,
		LastError: info.LastErr, LastFailedAt: info.LastFailedAt, NextProcessAt: info.NextProcessAt, CompletedAt: info.CompletedAt, ResultBytes: len(info.Result)}
	if info.State == asynq.TaskStateCompleted {
		if st.Log, err = queue.JobLog(ctx, c.rdb, q, id); err != nil {
			return nil, fmt.Errorf("jobs: %w", err)
		}
	}
	return st, nil
}

// cancelWait bounds how long Cancel waits for a running job's worker to
// stop it.
const cancelWait = 10 * time.Second

// Cancel stops a job for good: one waiting (pending, scheduled or waiting
// for a retry) is archived at once; a running one is stopped by its
// worker (asynq's cancellation, which asks the worker through Redis) and
// archived once it is back from its worker, within 10 s. An archived job
// stays readable, with the reason, and Retry runs it again. A job that
// already completed or failed is left as it is, and reported so.
func (c *Client) Cancel(ctx context.Context, queue, id string) error {
	for deadline := time.Now().Add(cancelWait); ; {
		info, err := c.taskInfo(ctx, queue, id)
		if err != nil {
			return err
		}
		switch info.State {
		case asynq.TaskStateCompleted, asynq.TaskStateArchived:
			return fmt.Errorf("jobs: cancel %s/%s: it is %s already", queue, id, info.State)
		case asynq.TaskStateActive:
			if err := c.inspector.CancelProcessing(id); err != nil {
				return fmt.Errorf("jobs: cancel %s/%s: %w", queue, id, err)
			}
		default:
			err := c.inspector.ArchiveTask(queue, id)
			if err == nil || !errors.Is(err, asynq.ErrTaskNotFound) {
				if err != nil {
					return fmt.Errorf("jobs: cancel %s/%s: %w", queue, id, err)
				}
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("jobs: cancel %s/%s: its worker did not stop it within %s (it may have ended meanwhile)", queue, id, cancelWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Retry runs a failed (archived), retrying or scheduled job now. A job
// that is pending, running or completed is left as it is, and reported so.
func (c *Client) Retry(ctx context.Context, queue, id string) error {
	info, err := c.taskInfo(ctx, queue, id)
	if err != nil {
		return err
	}
	switch info.State {
	case asynq.TaskStateArchived, asynq.TaskStateRetry, asynq.TaskStateScheduled:
	default:
		return fmt.Errorf("jobs: retry %s/%s: it is %s", queue, id, info.State)
	}
	if err := c.inspector.RunTask(queue, id); err != nil {
		return fmt.Errorf("jobs: retry %s/%s: %w", queue, id, err)
	}
	return nil
}

// Remove deletes a job's record, and with it its result: a job waiting to
// run never runs. A running job wraps ErrJobRunning (Cancel it first).
func (c *Client) Remove(ctx context.Context, queue, id string) error {
	info, err := c.taskInfo(ctx, queue, id)
	if err != nil {
		return err
	}
	if info.State == asynq.TaskStateActive {
		return fmt.Errorf("jobs: remove %s/%s: %w", queue, id, ErrJobRunning)
	}
	if err := c.inspector.DeleteTask(queue, id); err != nil {
		if errors.Is(err, asynq.ErrTaskNotFound) {
			return fmt.Errorf("jobs: %s/%s: %w", queue, id, ErrJobNotFound)
		}
		return fmt.Errorf("jobs: remove %s/%s: %w", queue, id, err)
	}
	return nil
}
