package queue

import "testing"

// evalArgs builds the arguments go-redis's Script.EvalSha sends.
func evalArgs(keys []string, argv ...any) []any {
	args := []any{"evalsha", "0123456789abcdef0123456789abcdef01234567", len(keys)}
	for _, k := range keys {
		args = append(args, k)
	}
	return append(args, argv...)
}

// TestParseAsynqCall feeds the key lists of asynq v0.26's server scripts
// (internal/rdb), as its RDB methods build them.
func TestParseAsynqCall(t *testing.T) {
	t.Parallel()
	p := QueuePrefix("q")
	task := p + "t:id-1"
	unique := p + "unique:wasm:text:6e1d0c6d"
	cases := []struct {
		name string
		args []any
		want asynqCall
		ok   bool
	}{
		{"dequeue", evalArgs([]string{p + "pending", p + "paused", p + "active", p + "lease"}, 1700000000, p+"t:"),
			asynqCall{kind: callDequeue, queue: "q"}, true},
		{"done", evalArgs([]string{p + "active", p + "lease", task, p + "processed:2026-01-02", p + "processed"}, "id-1", 1, 2),
			asynqCall{kind: callFinal, queue: "q", task: "id-1"}, true},
		{"done unique", evalArgs([]string{p + "active", p + "lease", task, p + "processed:2026-01-02", p + "processed", unique}, "id-1"),
			asynqCall{kind: callFinal, queue: "q", task: "id-1"}, true},
		{"mark as complete", evalArgs([]string{p + "active", p + "lease", p + "completed", task, p + "processed:2026-01-02", p + "processed"}, "id-1"),
			asynqCall{kind: callFinal, queue: "q", task: "id-1"}, true},
		{"mark as complete unique", evalArgs([]string{p + "active", p + "lease", p + "completed", task, p + "processed:2026-01-02", p + "processed", unique}),
			asynqCall{kind: callFinal, queue: "q", task: "id-1"}, true},
		{"archive", evalArgs([]string{task, p + "active", p + "lease", p + "archived", p + "processed:2026-01-02", p + "failed:2026-01-02",
			p + "processed", p + "failed", p + "t:"}, "id-1"),
			asynqCall{kind: callFinal, queue: "q", task: "id-1"}, true},
		{"requeue", evalArgs([]string{p + "active", p + "lease", p + "pending", task}, "id-1"),
			asynqCall{kind: callToPending, queue: "q", task: "id-1"}, true},
		{"forward scheduled", evalArgs([]string{p + "scheduled", p + "pending"}, 1, p+"t:", 2, p+"g:"),
			asynqCall{kind: callForward, queue: "q"}, true},
		{"forward retry", evalArgs([]string{p + "retry", p + "pending"}, 1, p+"t:", 2, p+"g:"),
			asynqCall{kind: callForward, queue: "q"}, true},
		{"plain eval", append([]any{"eval", "return 1"}, evalArgs([]string{p + "pending", p + "paused", p + "active", p + "lease"})[2:]...),
			asynqCall{kind: callDequeue, queue: "q"}, true},
		{"queue with a colon", evalArgs([]string{"asynq:{a:b}:pending", "asynq:{a:b}:paused", "asynq:{a:b}:active", "asynq:{a:b}:lease"}),
			asynqCall{kind: callDequeue, queue: "a:b"}, true},

		{"retry", evalArgs([]string{task, p + "active", p + "lease", p + "retry", p + "processed:2026-01-02", p + "failed:2026-01-02",
			p + "processed", p + "failed"}, "id-1"), asynqCall{}, false},
		{"enqueue", evalArgs([]string{task, p + "pending"}, "msg", "id-1", 1), asynqCall{}, false},
		{"lease expired", evalArgs([]string{p + "lease"}, 1, p+"t:"), asynqCall{}, false},
		{"server state", evalArgs([]string{"asynq:servers:{h:1:x}", "asynq:workers:{h:1:x}"}), asynqCall{}, false},
		{"mixed queues", evalArgs([]string{p + "pending", "asynq:{r}:paused", p + "active", p + "lease"}), asynqCall{}, false},
		{"keys short", []any{"evalsha", "sha", 4, p + "pending"}, asynqCall{}, false},
		{"not a script", []any{"hget", task, "state"}, asynqCall{}, false},
		{"string key count", []any{"evalsha", "sha", "2", p + "retry", p + "pending"}, asynqCall{kind: callForward, queue: "q"}, true},
	}
	for _, c := range cases {
		got, ok := parseAsynqCall(c.args)
		if ok != c.ok || got != c.want {
			t.Errorf("%s: got %+v, %v; want %+v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
