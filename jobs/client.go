package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/queue"
)

// DefaultResultRetention is how long an inline job's result stays readable
// when the job gives no Retention option.
const DefaultResultRetention = queue.DefaultResultRetention

// Errors returned by [Client.Result] and [Client.Run].
var (
	// ErrNotDone means the job exists but has not completed yet.
	ErrNotDone = errors.New("job not done yet")
	// ErrJobFailed means the job was archived; the error text carries the reason.
	ErrJobFailed = errors.New("job failed")
	// ErrJobNotFound means no such job exists (or its retention expired).
	ErrJobNotFound = errors.New("job not found")
)

// Enqueue errors, the same values asynq returns.
var (
	// ErrTaskIDConflict: a job with the given TaskID already exists.
	ErrTaskIDConflict = asynq.ErrTaskIDConflict
	// ErrDuplicateTask: a job with the same Unique lock is already queued.
	ErrDuplicateTask = asynq.ErrDuplicateTask
)

// Option is a per-enqueue setting; it is asynq's own option type.
type Option = asynq.Option

// Enqueue options, mapped one to one onto asynq's.
var (
	// Queue puts the job on a named queue (default "default").
	Queue = asynq.Queue
	// MaxRetry bounds retries of transient failures (default 25).
	MaxRetry = asynq.MaxRetry
	// Timeout bounds one processing attempt.
	Timeout = asynq.Timeout
	// Deadline bounds processing to an absolute time.
	Deadline = asynq.Deadline
	// Unique rejects duplicates of the same type, queue and payload for a TTL.
	Unique = asynq.Unique
	// ProcessAt schedules the job for a time.
	ProcessAt = asynq.ProcessAt
	// ProcessIn schedules the job after a delay.
	ProcessIn = asynq.ProcessIn
	// Retention keeps the completed job (and its result) for a duration.
	Retention = asynq.Retention
	// TaskID sets the job's id instead of a random UUID.
	TaskID = asynq.TaskID
)

// ErrGroupUnsupported is returned for a job given asynq's Group option: no
// wasmjobs worker aggregates groups, so the job would stay "aggregating"
// forever. It wraps ErrInvalidPayload.
var ErrGroupUnsupported = queue.ErrGroupUnsupported

// TaskInfo describes an enqueued job; it is asynq's type.
type TaskInfo = asynq.TaskInfo

// Client enqueues jobs and reads their results. It is safe for concurrent
// use. Create it with [NewClient] and close it with Close.
type Client struct {
	rdb       redis.UniversalClient
	q         *queue.Client
	batches   *batch.Client
	inspector *asynq.Inspector
	done      *queue.Completions
	// poll is how often Wait reads the job's state without a notification.
	poll time.Duration
	// own is whether Close closes rdb.
	own bool
}

// waitPoll is Wait's fallback poll: notifications from the workers make
// it return as soon as the job is done, so this only bounds the wait when
// one is lost (a worker without them, a dropped subscription).
const waitPoll = time.Second

// NewClient returns a Client on the Redis named by opt (for example the
// result of asynq.ParseRedisURI).
func NewClient(opt asynq.RedisConnOpt) (*Client, error) {
	rc, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("jobs: unsupported Redis connection option %T", opt)
	}
	c := newClient(rc)
	c.own = true
	return c, nil
}

// NewClientFromRedisClient returns a Client on an existing go-redis
// connection (a *redis.Client, a Sentinel failover client or a
// *redis.ClusterClient), as asynq.NewClientFromRedisClient does. Close
// leaves rdb open: its owner closes it.
func NewClientFromRedisClient(rdb redis.UniversalClient) *Client { return newClient(rdb) }

func newClient(rc redis.UniversalClient) *Client {
	q := queue.NewClient(rc)
	return &Client{rdb: rc, q: q, batches: batch.New(q), inspector: q.Inspector(), done: queue.NewCompletions(rc), poll: waitPoll}
}

// Close releases the Client's own connections: the Redis connection too,
// unless it came from NewClientFromRedisClient.
func (c *Client) Close() error {
	err := c.done.Close()
	if c.own {
		err = errors.Join(err, c.rdb.Close())
	}
	return err
}

// Ping checks that Redis answers.
func (c *Client) Ping(ctx context.Context) error { return c.rdb.Ping(ctx).Err() }

// EnqueueImage enqueues an image job (task type [TypeImage]).
func (c *Client) EnqueueImage(ctx context.Context, p Payload, opts ...Option) (*TaskInfo, error) {
	return c.Enqueue(ctx, TypeImage, p, opts...)
}

// EnqueueText enqueues a text job (task type [TypeText]).
func (c *Client) EnqueueText(ctx context.Context, p Payload, opts ...Option) (*TaskInfo, error) {
	return c.Enqueue(ctx, TypeText, p, opts...)
}

// Enqueue validates p and enqueues it as a task of taskType, which must be
// [TypeImage] or [TypeText].
//
// An inline job without an output is retained for [DefaultResultRetention]
// unless opts set Retention, so that its result can be read back.
func (c *Client) Enqueue(ctx context.Context, taskType string, p Payload, opts ...Option) (*TaskInfo, error) {
	return c.q.Enqueue(ctx, taskType, p, opts...)
}

// NewTask builds the asynq task for a job without enqueueing it, with the
// options Enqueue would use. It is what Enqueue does before talking to Redis.
func NewTask(taskType string, p Payload, opts ...Option) (*asynq.Task, []Option, error) {
	return queue.NewTask(taskType, p, opts...)
}

// JobFailedError is the error of a job that failed for good (archived by
// asynq): its reason and attempts as values. It matches ErrJobFailed.
type JobFailedError struct {
	Queue, ID string
	// Reason is asynq's last error of the job: the worker's message (a
	// guest's exit and its stderr tail, a refused input, a timeout) or
	// "context canceled" for a canceled job.
	Reason   string
	Retried  int
	FailedAt time.Time
}

// noReason is the reason of a job archived without one: asynq archives a
// job canceled before it ran (Cancel, asynqmon's archive) with no error.
const noReason = "archived before it ran (canceled, or archived by hand), with no error"

func (e *JobFailedError) Error() string {
	return fmt.Sprintf("jobs: %s/%s: %s: %s", e.Queue, e.ID, ErrJobFailed, e.Reason)
}

// Unwrap makes errors.Is(err, ErrJobFailed) hold.
func (e *JobFailedError) Unwrap() error { return ErrJobFailed }

// Result returns the result of a completed job: for an inline job without
// output the guest's stdout, otherwise the worker's JSON summary naming the
// output object. It returns ErrNotDone while the job is pending or running,
// a *JobFailedError (matching ErrJobFailed) with the reason once it is archived, and
// ErrJobNotFound when no such job exists.
func (c *Client) Result(ctx context.Context, queue, id string) ([]byte, error) {
	info, err := c.taskInfo(ctx, queue, id)
	if err != nil {
		return nil, err
	}
	switch info.State {
	case asynq.TaskStateCompleted:
		return info.Result, nil
	case asynq.TaskStateArchived:
		reason := info.LastErr
		if reason == "" {
			reason = noReason
		}
		return nil, &JobFailedError{Queue: queue, ID: id, Reason: reason, Retried: info.Retried, FailedAt: info.LastFailedAt}
	default:
		return nil, fmt.Errorf("jobs: %s/%s is %s: %w", queue, id, info.State, ErrNotDone)
	}
}

// Run enqueues a job and waits until it completes, returning its result as
// [Client.Result] does. It gives up when ctx ends; the job itself keeps its
// own fate. Give inline jobs (Data) to get the guest's output back directly.
//
// Unless opts set Retention, Run keeps the completed job for
// [DefaultResultRetention]: without retention asynq deletes a completed job
// at once and its result could not be read back.
func (c *Client) Run(ctx context.Context, taskType string, p Payload, opts ...Option) ([]byte, error) {
	info, err := c.Enqueue(ctx, taskType, p, queue.KeepResult(opts)...)
	if err != nil {
		return nil, err
	}
	return c.Wait(ctx, info.Queue, info.ID)
}

// Wait waits until the job completes or is archived and returns what
// [Client.Result] returns then. It gives up when ctx ends.
//
// # Notes
//
// Wait returns as soon as a worker announces the job's end; it subscribes
// to that announcement (on one connection the Client shares between all
// its waits) before it first reads the job's state, so that none is
// missed. Without announcements, from workers that do not send them or
// across a lost subscription, it reads the state once a second.
func (c *Client) Wait(ctx context.Context, queue, id string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := c.done.Watch(ctx, queue, id)
	defer w.Close()
	next := w.Ready()
	for {
		t := time.NewTimer(c.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("jobs: waiting for %s/%s: %w", queue, id, ctx.Err())
		case <-next:
		case <-t.C:
		}
		t.Stop()
		next = w.Fired()
		res, err := c.Result(ctx, queue, id)
		if !errors.Is(err, ErrNotDone) {
			return res, err
		}
	}
}
