//go:build ignore

// inspect prints, as JSON lines, what asynq's own Inspector sees of every
// task of a queue in the given states. The Node end-to-end test
// (e2e.test.mjs) builds and runs it to check Node-enqueued tasks through
// asynq itself:
//
//	go build -o inspect jobs/node/test/inspect/inspect.go
//	inspect -redis redis://127.0.0.1:6379/5 -queue q -states pending,completed
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/hibiken/asynq"
)

type task struct {
	ID               string `json:"id"`
	Queue            string `json:"queue"`
	Type             string `json:"type"`
	State            string `json:"state"`
	MaxRetry         int    `json:"max_retry"`
	TimeoutSeconds   int64  `json:"timeout_seconds"`
	RetentionSeconds int64  `json:"retention_seconds"`
	Payload          string `json:"payload"`
	Result           string `json:"result"`
	LastErr          string `json:"last_err"`
}

func main() {
	url := flag.String("redis", "", "Redis URL")
	queue := flag.String("queue", "default", "queue")
	states := flag.String("states", "pending,completed", "comma-separated task states")
	flag.Parse()
	opt, err := asynq.ParseRedisURI(*url)
	if err != nil {
		fail(err)
	}
	in := asynq.NewInspector(opt)
	defer in.Close()
	list := map[string]func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		"pending": in.ListPendingTasks, "active": in.ListActiveTasks, "scheduled": in.ListScheduledTasks,
		"retry": in.ListRetryTasks, "archived": in.ListArchivedTasks, "completed": in.ListCompletedTasks,
	}
	enc := json.NewEncoder(os.Stdout)
	for _, st := range strings.Split(*states, ",") {
		f, ok := list[st]
		if !ok {
			fail(fmt.Errorf("unknown state %q", st))
		}
		for page := 1; ; page++ {
			infos, err := f(*queue, asynq.PageSize(500), asynq.Page(page))
			if err != nil {
				fail(err)
			}
			for _, t := range infos {
				_ = enc.Encode(task{ID: t.ID, Queue: t.Queue, Type: t.Type, State: t.State.String(), MaxRetry: t.MaxRetry,
					TimeoutSeconds: int64(t.Timeout.Seconds()), RetentionSeconds: int64(t.Retention.Seconds()),
					Payload: string(t.Payload), Result: string(t.Result), LastErr: t.LastErr})
			}
			if len(infos) < 500 {
				break
			}
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "inspect:", err)
	os.Exit(1)
}
