package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// LogField is the field of a task's hash (TaskKey) that holds the tail of
// the guest's stderr from the run that completed it. asynq reads its own
// fields by name and ignores this one; the field goes when the task's
// record goes (its retention, or a delete).
const LogField = "wasmjobs_log"

// setJobLog writes ARGV[2] into field ARGV[1] of KEYS[1], the task's hash,
// only while the task exists: a task deleted during its run must not come
// back as a hash without a TTL.
var setJobLog = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 0 then
  return 0
end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// SetJobLog keeps log as the log of task id of queue q.
func SetJobLog(ctx context.Context, rdb redis.Scripter, q, id, log string) error {
	if err := setJobLog.Run(ctx, rdb, []string{TaskKey(q, id)}, LogField, log).Err(); err != nil {
		return fmt.Errorf("keep the log of %s/%s: %w", q, id, err)
	}
	return nil
}

// JobLog reads the log SetJobLog kept for task id of queue q: "" when the
// job kept none (its guest wrote nothing to stderr, it has not completed,
// or it does not exist).
func JobLog(ctx context.Context, rdb redis.Cmdable, q, id string) (string, error) {
	s, err := rdb.HGet(ctx, TaskKey(q, id), LogField).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the log of %s/%s: %w", q, id, err)
	}
	return s, nil
}
