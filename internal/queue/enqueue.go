package queue

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"
)

// Job is one entry of [Client.EnqueueMany].
type Job struct {
	// Type is TypeImage or TypeText.
	Type string
	// Payload is the job's body.
	Payload Payload
	// Options apply to this job only.
	Options []asynq.Option
}

// EnqueueResult is the outcome of one job of [Client.EnqueueMany]: Info on
// success, otherwise Err (validation, ErrTaskIDConflict, …).
type EnqueueResult struct {
	// Info describes the enqueued job.
	Info *asynq.TaskInfo
	// Err says why the job was not enqueued.
	Err error
}

// asynq's enqueue script (internal/rdb's enqueueCmd), byte for byte, so
// that its SHA is the one asynq's own client loads.
var enqueueScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 1 then
	return 0
end
redis.call("HSET", KEYS[1],
           "msg", ARGV[1],
           "state", "pending",
           "pending_since", ARGV[3])
redis.call("LPUSH", KEYS[2], ARGV[2])
return 1
`)

// asynq's defaults (client.go).
const (
	asynqDefaultRetry   = 25
	asynqDefaultTimeout = 30 * time.Minute
)

// EnqueueMany enqueues jobs in pipelined round trips, writing exactly what
// asynq's client writes for each (the same TaskMessage, keys and script),
// and wakes the idle workers of each queue once. It returns one result per
// job, in order; the error is for a failure of Redis itself. Jobs with
// Unique, ProcessAt, ProcessIn or Group options go through asynq's client
// one by one.
func (c *Client) EnqueueMany(ctx context.Context, batch []Job) ([]EnqueueResult, error) {
	results := make([]EnqueueResult, len(batch))
	var (
		plain []plainTask
		where []int // plain[k] is batch[where[k]]
	)
	for i, j := range batch {
		task, opts, err := NewTask(j.Type, j.Payload, j.Options...)
		if err != nil {
			results[i].Err = err
			continue
		}
		pt, ok := newPlainTask(task, opts)
		if !ok {
			if results[i].Info, err = c.enqueueTask(ctx, task, opts); err != nil {
				results[i].Err = fmt.Errorf("jobs: enqueue %s: %w", j.Type, err)
			}
			continue
		}
		plain = append(plain, pt)
		where = append(where, i)
	}
	if len(plain) == 0 {
		return results, nil
	}
	errs, err := c.writePlain(ctx, plain)
	if err != nil {
		return nil, fmt.Errorf("jobs: enqueue many: %w", err)
	}
	for k, i := range where {
		if errs[k] != nil {
			results[i].Err = fmt.Errorf("jobs: enqueue %s: %w", plain[k].info.ID, errs[k])
		} else {
			results[i].Info = plain[k].info
		}
	}
	return results, nil
}

// plainTask is a task enqueued with asynq's plain enqueue script, written
// by us: its keys, its TaskMessage and what asynq's client would return.
type plainTask struct {
	keys []string
	msg  []byte
	info *asynq.TaskInfo
}

// newPlainTask prepares task for writePlain; false means a task that only
// asynq's client enqueues (see plainOptions).
func newPlainTask(task *asynq.Task, opts []asynq.Option) (plainTask, bool) {
	if strings.TrimSpace(task.Type()) == "" || len(task.Headers()) > 0 {
		return plainTask{}, false
	}
	o, ok := plainOptions(opts)
	if !ok {
		return plainTask{}, false
	}
	if o.id == "" {
		o.id = uuid.NewString()
	}
	msg := encodeTaskMessage(task.Type(), task.Payload(), o)
	var deadline time.Time
	if !o.deadline.IsZero() {
		deadline = time.Unix(o.deadline.Unix(), 0)
	}
	return plainTask{
		keys: []string{TaskKey(o.queue, o.id), PendingKey(o.queue)},
		msg:  msg,
		// As asynq's client fills it in, whole seconds included.
		info: &asynq.TaskInfo{ID: o.id, Queue: o.queue, Type: task.Type(), Payload: task.Payload(), State: asynq.TaskStatePending,
			MaxRetry: o.retry, Timeout: o.timeout.Truncate(time.Second), Deadline: deadline,
			Retention: o.retention.Truncate(time.Second), NextProcessAt: time.Now()},
	}, true
}

// writePlain enqueues tasks in one pipelined round trip and, in the same
// pipeline, wakes each queue's idle workers. It returns the error of each
// task (asynq.ErrTaskIDConflict, a script error) and of Redis itself.
//
// # Notes
//
// On Redis Cluster the wake-ups go out after the pipeline: PUBLISH, having
// no key, may go to another node than the queue's, and then reach a worker
// before the task does.
func (c *Client) writePlain(ctx context.Context, tasks []plainTask) ([]error, error) {
	queues := map[string]bool{}
	for _, t := range tasks {
		queues[t.info.Queue] = true
	}
	if err := c.publishQueues(ctx, queues); err != nil {
		return nil, err
	}
	cmds, err := EvalPipelined(ctx, c.rdb, enqueueScript, func(pipe redis.Pipeliner) {
		for _, t := range tasks {
			enqueueScript.EvalSha(ctx, pipe, t.keys, t.msg, t.info.ID, time.Now().UnixNano())
		}
		if !c.cluster {
			addWakeups(ctx, pipe, queues)
		}
	})
	if err != nil && len(cmds) == 0 {
		return nil, err
	}
	if c.cluster {
		c.wake(ctx, queues)
	}
	errs := make([]error, len(tasks))
	for k := range tasks {
		n, err := cmds[k].(*redis.Cmd).Int64()
		switch {
		case err != nil:
			errs[k] = err
		case n == 0:
			errs[k] = asynq.ErrTaskIDConflict
		}
	}
	return errs, nil
}

// wake publishes the queues' wake-ups in a round trip of their own. A
// failure is not the enqueue's: the workers' polls find the tasks.
func (c *Client) wake(ctx context.Context, queues map[string]bool) {
	_, _ = c.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		addWakeups(ctx, pipe, queues)
		return nil
	})
}

func addWakeups(ctx context.Context, pipe redis.Pipeliner, queues map[string]bool) {
	for q := range queues {
		pipe.Publish(ctx, WakeChannel(q), "")
	}
}

// publishQueues adds queue names to AllQueues once per client.
func (c *Client) publishQueues(ctx context.Context, queues map[string]bool) error {
	var add []any
	for q := range queues {
		if _, done := c.published.Load(q); !done {
			add = append(add, q)
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := c.rdb.SAdd(ctx, AllQueues, add...).Err(); err != nil {
		return fmt.Errorf("jobs: publish queues: %w", err)
	}
	for _, q := range add {
		c.published.Store(q, true)
	}
	return nil
}

type plainOpts struct {
	queue     string
	retry     int
	timeout   time.Duration
	deadline  time.Time
	retention time.Duration
	id        string
}

// plainOptions folds opts as asynq's composeOptions does; false means an
// option EnqueueMany leaves to asynq's client.
func plainOptions(opts []asynq.Option) (plainOpts, bool) {
	o := plainOpts{queue: "default", retry: asynqDefaultRetry}
	for _, opt := range opts {
		switch opt.Type() {
		case asynq.QueueOpt:
			o.queue = opt.Value().(string)
		case asynq.MaxRetryOpt:
			o.retry = max(opt.Value().(int), 0)
		case asynq.TimeoutOpt:
			o.timeout = opt.Value().(time.Duration)
		case asynq.DeadlineOpt:
			o.deadline = opt.Value().(time.Time)
		case asynq.RetentionOpt:
			o.retention = opt.Value().(time.Duration)
		case asynq.TaskIDOpt:
			o.id = opt.Value().(string)
		default:
			return o, false
		}
	}
	if strings.TrimSpace(o.queue) == "" || (o.id != "" && strings.TrimSpace(o.id) == "") {
		return o, false // let asynq report its own error
	}
	if !o.deadline.IsZero() && o.deadline.Unix() == 0 {
		o.deadline = time.Time{} // asynq's "no deadline"
	}
	if o.deadline.IsZero() && o.timeout == 0 {
		o.timeout = asynqDefaultTimeout
	}
	return o, true
}

// encodeTaskMessage writes asynq's TaskMessage protobuf the way Go's
// proto.Marshal does: set fields only, in field-number order.
func encodeTaskMessage(typ string, payload []byte, o plainOpts) []byte {
	b := make([]byte, 0, len(payload)+len(typ)+len(o.id)+len(o.queue)+32)
	str := func(num protowire.Number, s string) {
		if s != "" {
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendString(b, s)
		}
	}
	varint := func(num protowire.Number, v uint64) {
		if v != 0 {
			b = protowire.AppendTag(b, num, protowire.VarintType)
			b = protowire.AppendVarint(b, v)
		}
	}
	str(1, typ)
	if len(payload) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, payload)
	}
	str(3, o.id)
	str(4, o.queue)
	varint(5, uint64(int64(int32(o.retry)))) // int32 fields sign-extend, as proto does
	varint(8, uint64(int64(o.timeout.Seconds())))
	deadline := int64(0)
	if !o.deadline.IsZero() {
		deadline = o.deadline.Unix()
	}
	varint(9, uint64(deadline))
	varint(12, uint64(int64(o.retention.Seconds())))
	return b
}
