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
// asynq's client writes for each (the same TaskMessage, keys and script).
// It returns one result per job, in order; the error is for a failure of
// Redis itself. Jobs with Unique, ProcessAt, ProcessIn or Group options go
// through asynq's client one by one.
func (c *Client) EnqueueMany(ctx context.Context, batch []Job) ([]EnqueueResult, error) {
	results := make([]EnqueueResult, len(batch))
	type prepared struct {
		i     int
		keys  []string
		msg   []byte
		id    string
		info  *asynq.TaskInfo
		queue string
	}
	var pipelined []prepared
	queues := map[string]bool{}
	for i, j := range batch {
		task, opts, err := NewTask(j.Type, j.Payload, j.Options...)
		if err != nil {
			results[i].Err = err
			continue
		}
		o, ok := plainOptions(opts)
		if !ok {
			results[i].Info, results[i].Err = c.Enqueue(ctx, j.Type, j.Payload, j.Options...)
			continue
		}
		if o.id == "" {
			o.id = uuid.NewString()
		}
		msg := encodeTaskMessage(task.Type(), task.Payload(), o)
		pipelined = append(pipelined, prepared{
			i: i, msg: msg, id: o.id, queue: o.queue,
			keys: []string{TaskKey(o.queue, o.id), PendingKey(o.queue)},
			info: &asynq.TaskInfo{ID: o.id, Queue: o.queue, Type: task.Type(), Payload: task.Payload(), State: asynq.TaskStatePending,
				MaxRetry: o.retry, Timeout: o.timeout, Deadline: o.deadline, Retention: o.retention, NextProcessAt: time.Now()},
		})
		queues[o.queue] = true
	}
	if len(pipelined) == 0 {
		return results, nil
	}
	if err := c.publishQueues(ctx, queues); err != nil {
		return nil, err
	}
	cmds, err := EvalPipelined(ctx, c.rdb, enqueueScript, func(pipe redis.Pipeliner) {
		for _, p := range pipelined {
			enqueueScript.EvalSha(ctx, pipe, p.keys, p.msg, p.id, time.Now().UnixNano())
		}
	})
	if err != nil && len(cmds) == 0 {
		return nil, fmt.Errorf("jobs: enqueue many: %w", err)
	}
	for k, p := range pipelined {
		n, err := cmds[k].(*redis.Cmd).Int64()
		switch {
		case err != nil:
			results[p.i].Err = fmt.Errorf("jobs: enqueue %s: %w", p.id, err)
		case n == 0:
			results[p.i].Err = fmt.Errorf("jobs: enqueue %s: %w", p.id, asynq.ErrTaskIDConflict)
		default:
			results[p.i].Info = p.info
		}
	}
	return results, nil
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
