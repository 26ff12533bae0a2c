package queue

// asynq's Redis keys (asynq v0.26 internal/base), the ones we write
// ourselves. The {queue} hash tag keeps a queue's keys in one cluster slot.

// AllQueues is the set of queue names asynq's servers and dashboard know.
const AllQueues = "asynq:queues"

// QueuePrefix is the prefix of every key of queue q.
func QueuePrefix(q string) string { return "asynq:{" + q + "}:" }

// TaskKey is the hash holding task id's message and state in queue q.
func TaskKey(q, id string) string { return QueuePrefix(q) + "t:" + id }

// PendingKey is the list of ids of queue q's pending tasks.
func PendingKey(q string) string { return QueuePrefix(q) + "pending" }
