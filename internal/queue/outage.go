package queue

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// OutageWindow is how long RideOutOutages holds a call while Redis cannot
// be reached: asynq's lease, past which a worker's tasks are recovered
// anyway.
const OutageWindow = 30 * time.Second

// outageRetryEvery is how often a held call tries again.
const outageRetryEvery = 250 * time.Millisecond

// RideOutOutages makes rdb's calls wait out a short outage: a command or
// pipeline that failed because no connection to Redis could be made (a
// dial error: Redis restarting, a failover in progress) or because Redis is
// still loading its data is tried again every 250 ms, for up to
// OutageWindow or until its context ends. Both failures mean the command
// never ran, so any command may be tried again; an error after a command
// was sent (a connection lost mid-reply) is left to the driver's own
// retries.
//
// asynq needs it: when it cannot record a task's outcome it queues the
// write for its syncer, but hands the syncer a context it has already
// canceled (asynq v0.26's processor), so the write never happens and the
// task waits out its lease and the recoverer, one to two minutes, although
// Redis was away for seconds. Holding the first write until Redis answers
// records the outcome as soon as it is back.
func RideOutOutages(rdb redis.UniversalClient) {
	rdb.AddHook(outageHook{})
}

type outageHook struct{}

func (outageHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (outageHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		return holdOver(ctx, func() error { return next(ctx, cmd) })
	}
}

func (outageHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		return holdOver(ctx, func() error { return next(ctx, cmds) })
	}
}

// holdOver runs call, and again while it fails with an outage error, for
// up to OutageWindow or until ctx ends.
func holdOver(ctx context.Context, call func() error) error {
	err := call()
	if !isOutage(err) {
		return err
	}
	deadline := time.Now().Add(OutageWindow)
	t := time.NewTimer(outageRetryEvery)
	defer t.Stop()
	for isOutage(err) && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return err
		case <-t.C:
		}
		err = call()
		t.Reset(outageRetryEvery)
	}
	return err
}

// isOutage reports whether err says the command never reached a Redis that
// could run it.
func isOutage(err error) bool {
	if err == nil {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return strings.HasPrefix(err.Error(), "LOADING ")
}
