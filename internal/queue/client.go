package queue

import (
	"context"
	"fmt"
	"sync"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Client enqueues wasmjobs tasks on one Redis. It is safe for concurrent
// use; it does not own the Redis connection.
type Client struct {
	rdb       redis.UniversalClient
	asynq     *asynq.Client
	inspector *asynq.Inspector
	// published remembers queues EnqueueMany added to AllQueues.
	published sync.Map
	// cluster: rdb is a Redis Cluster client (see writePlain).
	cluster bool
}

// NewClient returns a Client on rdb.
func NewClient(rdb redis.UniversalClient) *Client {
	_, cluster := rdb.(*redis.ClusterClient)
	return &Client{
		rdb:       rdb,
		asynq:     asynq.NewClientFromRedisClient(rdb),
		inspector: asynq.NewInspectorFromRedisClient(rdb),
		cluster:   cluster,
	}
}

// Redis returns the client's Redis connection.
func (c *Client) Redis() redis.UniversalClient { return c.rdb }

// Inspector returns an asynq inspector on the client's Redis.
func (c *Client) Inspector() *asynq.Inspector { return c.inspector }

// Enqueue validates p and enqueues it as a task of taskType (see NewTask),
// and wakes the queue's idle workers. A job with plain options (no Unique,
// ProcessAt, ProcessIn) is written in one round trip, wake-up included,
// exactly as asynq's client writes it; others go through asynq's client.
func (c *Client) Enqueue(ctx context.Context, taskType string, p Payload, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	task, opts, err := NewTask(taskType, p, opts...)
	if err != nil {
		return nil, err
	}
	info, err := c.enqueueTask(ctx, task, opts)
	if err != nil {
		return nil, fmt.Errorf("jobs: enqueue %s: %w", taskType, err)
	}
	return info, nil
}

// EnqueueTask enqueues a task built elsewhere (a batch plan) as Enqueue
// does. The task must carry no options of its own: give them as opts.
func (c *Client) EnqueueTask(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	return c.enqueueTask(ctx, task, opts)
}

func (c *Client) enqueueTask(ctx context.Context, task *asynq.Task, opts []asynq.Option) (*asynq.TaskInfo, error) {
	if pt, ok := newPlainTask(task, opts); ok {
		errs, err := c.writePlain(ctx, []plainTask{pt})
		if err == nil {
			err = errs[0]
		}
		if err != nil {
			return nil, err
		}
		return pt.info, nil
	}
	info, err := c.asynq.EnqueueContext(ctx, task, opts...)
	if err == nil && info.State == asynq.TaskStatePending {
		c.wake(ctx, map[string]bool{info.Queue: true})
	}
	return info, err
}
