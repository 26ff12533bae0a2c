package queue

import "strings"

// asynq's Redis keys (asynq v0.26 internal/base), the ones we write
// ourselves or recognise in asynq's own script calls. The {queue} hash tag
// keeps a queue's keys in one cluster slot.

// AllQueues is the set of queue names asynq's servers and dashboard know.
const AllQueues = "asynq:queues"

// QueuePrefix is the prefix of every key of queue q.
func QueuePrefix(q string) string { return "asynq:{" + q + "}:" }

// TaskKey is the hash holding task id's message and state in queue q.
func TaskKey(q, id string) string { return QueuePrefix(q) + "t:" + id }

// PendingKey is the list of ids of queue q's pending tasks.
func PendingKey(q string) string { return QueuePrefix(q) + "pending" }

// splitKey splits an asynq key of a queue into the queue's name and the
// rest ("pending", "t:<id>", …).
func splitKey(key string) (q, rest string, ok bool) {
	s, ok := strings.CutPrefix(key, "asynq:{")
	if !ok {
		return "", "", false
	}
	q, rest, ok = strings.Cut(s, "}:")
	return q, rest, ok
}

// Pub/sub channels of wasmjobs' notifications (asynq has none of its own
// but its cancelation channel). They carry no data: a notification only
// says "look again", and every reader re-reads the state it waits for.
// Redis Cluster delivers PUBLISH to subscribers on every node, so any
// channel name works there; the {queue} tag only mirrors the keys.

// WakeChannel is where producers announce new pending tasks of queue q, so
// that idle workers dequeue at once instead of at their next poll.
func WakeChannel(q string) string { return "wasmjobs:{" + q + "}:wake" }

// DoneChannel is where a worker announces that task id of queue q reached a
// final state: completed, archived, or deleted (completed without
// retention).
func DoneChannel(q, id string) string { return "wasmjobs:{" + q + "}:done:" + id }
