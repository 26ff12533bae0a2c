package queue

import (
	"strconv"
	"strings"
)

// callKind is what one of asynq's script calls does to a queue, as far as
// notifications go.
type callKind int

const (
	callOther     callKind = iota
	callDequeue            // a server looks for a pending task
	callFinal              // a task leaves "active" for good: completed, archived or deleted
	callToPending          // a task leaves "active" for "pending" again (a requeue at shutdown)
	callForward            // a server moves due scheduled or retry tasks to "pending"
)

// asynqCall is one of asynq's script calls, recognised by its keys.
type asynqCall struct {
	kind  callKind
	queue string
	task  string // callFinal: the task's id
}

// parseAsynqCall recognises asynq v0.26's server-side scripts (internal/rdb)
// from the arguments of an EVALSHA or EVAL, by the roles of their keys
// rather than by their digests, so that a script's text may change across
// asynq releases as long as its keys keep their meaning:
//
//   - dequeue: exactly pending, paused, active, lease;
//   - done, markAsComplete, archive (and their unique-lock variants): active,
//     lease and the task's key, with completed, archived or no destination;
//   - requeue: active, lease and the task's key, with pending;
//   - forward: exactly scheduled or retry, then pending.
//
// retry (active to the retry set) is none of them: it is not final, and
// its task comes back through a forward.
func parseAsynqCall(args []any) (asynqCall, bool) {
	if len(args) < 3 {
		return asynqCall{}, false
	}
	if name, _ := args[0].(string); name != "evalsha" && name != "eval" {
		return asynqCall{}, false
	}
	n, ok := keyCount(args[2])
	if !ok || n < 2 || len(args) < 3+n {
		return asynqCall{}, false
	}
	var (
		c     asynqCall
		roles = make(map[string]bool, n)
		order = make([]string, 0, n)
	)
	for i, a := range args[3 : 3+n] {
		key, _ := a.(string)
		q, rest, ok := splitKey(key)
		if !ok {
			if i == 0 {
				return asynqCall{}, false
			}
			continue // a unique lock names its queue, but say nothing more
		}
		if i == 0 {
			c.queue = q
		} else if q != c.queue {
			return asynqCall{}, false
		}
		if id, ok := strings.CutPrefix(rest, "t:"); ok {
			if id != "" {
				c.task = id
			}
			continue
		}
		role, _, _ := strings.Cut(rest, ":") // "processed:<date>" counts as "processed"
		roles[role] = true
		order = append(order, role)
	}
	switch {
	case n == 4 && c.task == "" && strings.Join(order, ",") == "pending,paused,active,lease":
		c.kind = callDequeue
	case n == 2 && len(order) == 2 && (order[0] == "scheduled" || order[0] == "retry") && order[1] == "pending":
		c.kind = callForward
	case roles["active"] && roles["lease"] && c.task != "":
		switch {
		case roles["pending"]:
			c.kind = callToPending
		case roles["retry"], roles["scheduled"], roles["paused"]:
			return asynqCall{}, false
		default:
			c.kind = callFinal
		}
	default:
		return asynqCall{}, false
	}
	return c, true
}

// keyCount reads EVAL's numkeys argument, an int from go-redis's Script.
func keyCount(a any) (int, bool) {
	switch v := a.(type) {
	case int:
		return v, true
	case int64:
		return int(v), true
	case string:
		n, err := strconv.Atoi(v)
		return n, err == nil
	}
	return 0, false
}
