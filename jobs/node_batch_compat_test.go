package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// runCompatBatch runs jobs/node/test/compat-batch.mjs (the Node client's
// cancelBatch or retryFailed) on batch id of the database opt and decodes
// what it printed into out.
func runCompatBatch(tb testing.TB, node string, opt asynq.RedisClientOpt, op, id string, out any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("node", "test", "compat-batch.mjs"), redisURL(tb, opt), op, id)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		tb.Fatalf("compat-batch.mjs %s: %v\n%s", op, err, stderr.Bytes())
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		tb.Fatalf("compat-batch.mjs output %q: %v", stdout, err)
	}
}

// compatItem is one object of a planted batch: its job's fate before the
// cancel or retry under test.
type compatItem struct {
	key string
	// job: "pending", "scheduled", "active", "deleted" (the job is gone),
	// "archived", "none" (the item has no task id) or "done".
	job string
	// failed records the item as failed (for retry-failed).
	failed bool
}

// plantBatch writes the same batch into the database opt each time it is
// called: its record, its items with their jobs (enqueued by the Go
// client, with the task ids a planner gives them) in the states items
// name, and its listing done.
func plantBatch(tb testing.TB, ctx context.Context, opt asynq.RedisClientOpt, spec batch.Spec, items []compatItem) {
	tb.Helper()
	bc, err := batch.NewClient(opt)
	if err != nil {
		tb.Fatal(err)
	}
	defer bc.Close()
	gc, ins, rdb := newClient(tb, opt), newInspector(tb, opt), rawRedis(tb, opt)
	if _, err := bc.CreateBatch(ctx, spec); err != nil {
		tb.Fatal(err)
	}
	var marks []batch.Item
	for _, it := range items {
		if it.job == "none" {
			marks = append(marks, batch.Item{Key: it.key, Status: batch.ItemPending})
			continue
		}
		id := batch.ItemTaskID(spec.ID, it.key, "etag")
		job := spec.ItemJob(it.key)
		opts := append(job.Options, asynq.TaskID(id))
		if it.job == "scheduled" {
			opts = append(opts, asynq.ProcessIn(time.Hour))
		}
		if _, err := gc.Enqueue(ctx, job.Type, job.Payload, opts...); err != nil {
			tb.Fatal(err)
		}
		marks = append(marks, batch.Item{Key: it.key, Status: batch.ItemPending, TaskID: id})
		q := spec.Queue
		switch it.job {
		case "active": // as a worker's dequeue leaves it
			if err := rdb.LRem(ctx, "asynq:{"+q+"}:pending", 0, id).Err(); err != nil {
				tb.Fatal(err)
			}
			rdb.LPush(ctx, "asynq:{"+q+"}:active", id)
			rdb.HSet(ctx, "asynq:{"+q+"}:t:"+id, "state", "active")
		case "deleted":
			err = ins.DeleteTask(q, id)
		case "archived":
			err = ins.ArchiveTask(q, id)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	if err := bc.MarkBatchItems(ctx, spec.ID, marks); err != nil {
		tb.Fatal(err)
	}
	if _, err := bc.SetBatchListed(ctx, spec.ID, int64(len(items))); err != nil {
		tb.Fatal(err)
	}
	for i, it := range items {
		switch {
		case it.job == "done":
			_, err = bc.FinishBatchItem(ctx, spec.ID, batch.Item{Key: it.key, Status: batch.ItemDone, TaskID: marks[i].TaskID, Output: "s3://out/x"})
		case it.failed && it.job == "none":
			// No job can report an item without a task id: as an older
			// planner's item, failed by hand.
			rdb.HSet(ctx, "wasmjobs:batch:{"+spec.ID+"}:status", it.key, batch.ItemFailed)
			err = rdb.HIncrBy(ctx, "wasmjobs:batch:{"+spec.ID+"}", "failed", 1).Err()
		case it.failed:
			_, err = bc.FinishBatchItem(ctx, spec.ID, batch.Item{Key: it.key, Status: batch.ItemFailed, TaskID: marks[i].TaskID, Error: "exit 1"})
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// compareBatchState compares what Go and Node left of batch id: its items
// and their records, the counts of its record, its keys' expiry, and
// every asynq key of the queue (a task's pending_since aside).
func compareBatchState(t *testing.T, ctx context.Context, viaGo, viaNode asynq.RedisClientOpt, spec batch.Spec) {
	t.Helper()
	rg, rn := rawRedis(t, viaGo), rawRedis(t, viaNode)
	for _, k := range []string{"wasmjobs:batch:{" + spec.ID + "}:status", "wasmjobs:batch:{" + spec.ID + "}:items"} {
		if g, n := rg.HGetAll(ctx, k).Val(), rn.HGetAll(ctx, k).Val(); !reflect.DeepEqual(g, n) {
			t.Errorf("%s differs:\nGo   %v\nNode %v", k, g, n)
		}
	}
	rec := "wasmjobs:batch:{" + spec.ID + "}"
	hg, hn := rg.HGetAll(ctx, rec).Val(), rn.HGetAll(ctx, rec).Val()
	if !sameKeys(hg, hn) {
		t.Errorf("record fields differ: Go %v, Node %v", keysOf(hg), keysOf(hn))
	}
	for _, f := range []string{"total", "enqueued", "done", "failed", "canceled", "skipped", "listed", "cancel", "manifest"} {
		if hg[f] != hn[f] {
			t.Errorf("record %s: Go %q, Node %q", f, hg[f], hn[f])
		}
	}
	for _, k := range []string{rec, rec + ":status", rec + ":items"} {
		if g, n := rg.TTL(ctx, k).Val(), rn.TTL(ctx, k).Val(); (g > 0) != (n > 0) || (g-n).Abs() > 2*time.Second {
			t.Errorf("%s TTL: Go %v, Node %v", k, g, n)
		}
	}
	q := "asynq:{" + spec.Queue + "}:"
	kg, kn := rg.Keys(ctx, q+"*").Val(), rn.Keys(ctx, q+"*").Val()
	if !sameSet(kg, kn) {
		t.Errorf("asynq keys differ:\nGo   %v\nNode %v", kg, kn)
	}
	for _, k := range kg {
		if !strings.Contains(k, ":t:") {
			continue
		}
		tg, tn := rg.HGetAll(ctx, k).Val(), rn.HGetAll(ctx, k).Val()
		if tg["msg"] != tn["msg"] || tg["state"] != tn["state"] || !sameKeys(tg, tn) {
			t.Errorf("task %s differs:\nGo   %q\nNode %q", k, tg, tn)
		}
	}
	for _, s := range []string{"pending", "active"} {
		if g, n := rg.LRange(ctx, q+s, 0, -1).Val(), rn.LRange(ctx, q+s, 0, -1).Val(); !sameSet(g, n) {
			t.Errorf("%s list: Go %v, Node %v", s, g, n)
		}
	}
	for _, s := range []string{"scheduled", "retry", "archived"} {
		if g, n := rg.ZRange(ctx, q+s, 0, -1).Val(), rn.ZRange(ctx, q+s, 0, -1).Val(); !sameSet(g, n) {
			t.Errorf("%s set: Go %v, Node %v", s, g, n)
		}
	}
}

// TestNodeCancelBatchMatchesGo plants the same batch in two databases and
// cancels it with Go's CancelBatch in one and the Node client's
// cancelBatch in the other: the same jobs are deleted (pending, scheduled,
// one already gone; not the running one), the same items canceled with the
// same records, and Redis holds the same state. Canceled with nothing
// running, the batch finishes alike, its keys set to expire.
func TestNodeCancelBatchMatchesGo(t *testing.T) {
	node := nodeCommand(t)
	ctx := testenv.Context(t, 2*time.Minute)
	for _, tc := range []struct {
		name     string
		items    []compatItem
		canceled int
		finished bool
	}{
		{"one running", []compatItem{{key: "in/a.txt", job: "pending"}, {key: "in/b.txt", job: "pending"}, {key: "in/c.txt", job: "scheduled"},
			{key: "in/d.txt", job: "active"}, {key: "in/e.txt", job: "deleted"}, {key: "in/f.txt", job: "done"}, {key: "in/g.txt", job: "none"}}, 4, false},
		{"nothing running", []compatItem{{key: "in/a.txt", job: "pending"}, {key: "in/b.txt", job: "scheduled"}, {key: "in/c.txt", job: "done"}}, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			viaGo, viaNode := testenv.Redis(t), testenv.Redis(t)
			spec, err := batch.Spec{ID: "cx", Guest: "wordcount", Type: "text", Input: "s3://data/in/", Queue: "cq"}.WithDefaults()
			if err != nil {
				t.Fatal(err)
			}
			plantBatch(t, ctx, viaGo, spec, tc.items)
			plantBatch(t, ctx, viaNode, spec, tc.items)
			bc, err := batch.NewClient(viaGo)
			if err != nil {
				t.Fatal(err)
			}
			defer bc.Close()
			n, finished, err := bc.CancelBatch(ctx, spec.ID)
			if err != nil || n != tc.canceled || finished != tc.finished {
				t.Fatalf("Go CancelBatch = %d, %v, %v; want %d, %v", n, finished, err, tc.canceled, tc.finished)
			}
			var got struct {
				Canceled int  `json:"canceled"`
				Finished bool `json:"finished"`
			}
			runCompatBatch(t, node, viaNode, "cancel", spec.ID, &got)
			if got.Canceled != n || got.Finished != finished {
				t.Errorf("Node cancelBatch = %+v, Go %d, %v", got, n, finished)
			}
			compareBatchState(t, ctx, viaGo, viaNode, spec)
		})
	}
}

// TestNodeRetryFailedMatchesGo plants the same batch with failed items in
// two databases and retries them with Go's RetryFailed in one and the Node
// client's retryFailed in the other: the archived job runs again, the
// deleted one is enqueued anew under its task id with the same
// TaskMessage bytes (Spec.ItemJob's payload and options), and the item
// without a task id gets a job with the same payload.
func TestNodeRetryFailedMatchesGo(t *testing.T) {
	node := nodeCommand(t)
	ctx := testenv.Context(t, 2*time.Minute)
	viaGo, viaNode := testenv.Redis(t), testenv.Redis(t)
	three := 3
	spec, err := batch.Spec{ID: "rx", Guest: "sha256:" + strings.Repeat("0f", 32), Type: "image", Input: "s3://data/in/", Output: "s3://out/res/",
		Queue: "rq", Params: map[string]string{"z": "<&>", "lang": "en"}, MaxRetry: &three}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	items := []compatItem{{key: "in/archived.png", job: "archived", failed: true}, {key: "in/sub/é gone.png", job: "deleted", failed: true},
		{key: "in/no-id.png", job: "none", failed: true}, {key: "in/ok.png", job: "done"}}
	plantBatch(t, ctx, viaGo, spec, items)
	plantBatch(t, ctx, viaNode, spec, items)
	bc, err := batch.NewClient(viaGo)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	n, err := bc.RetryFailed(ctx, spec.ID)
	if err != nil || n != 3 {
		t.Fatalf("Go RetryFailed = %d, %v; want 3", n, err)
	}
	var got struct {
		Retried int      `json:"retried"`
		Missing []string `json:"missing"`
	}
	runCompatBatch(t, node, viaNode, "retry", spec.ID, &got)
	if got.Retried != n || len(got.Missing) != 0 {
		t.Errorf("Node retryFailed = %+v, Go %d", got, n)
	}
	// The item without a task id got a job under a fresh id in each: same
	// message but for the id.
	rg, rn := rawRedis(t, viaGo), rawRedis(t, viaNode)
	q := "asynq:{" + spec.Queue + "}:"
	known := map[string]bool{batch.ItemTaskID(spec.ID, "in/archived.png", "etag"): true, batch.ItemTaskID(spec.ID, "in/sub/é gone.png", "etag"): true}
	newMsg := func(ids []string, get func(string) string) *taskMessage {
		for _, id := range ids {
			if !known[id] {
				m, err := decodeTaskMessage([]byte(get(q + "t:" + id)))
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
		}
		t.Fatalf("no new task in %v", ids)
		return nil
	}
	mg := newMsg(rg.LRange(ctx, q+"pending", 0, -1).Val(), func(k string) string { return rg.HGet(ctx, k, "msg").Val() })
	mn := newMsg(rn.LRange(ctx, q+"pending", 0, -1).Val(), func(k string) string { return rn.HGet(ctx, k, "msg").Val() })
	if mg.ID == mn.ID || len(mn.ID) != 36 {
		t.Errorf("fresh task ids: Go %s, Node %s; want two UUIDs", mg.ID, mn.ID)
	}
	idG, idN := mg.ID, mn.ID
	mg.ID, mn.ID = "", ""
	if !reflect.DeepEqual(mg, mn) {
		t.Errorf("new job of the item without a task id:\nGo   %+v\nNode %+v", mg, mn)
	}
	if want := spec.ItemJob("in/no-id.png").Payload; string(mn.Payload) != string(mustEncode(t, want)) {
		t.Errorf("payload %s, want %s", mn.Payload, mustEncode(t, want))
	}
	// Everything else alike, once the two fresh tasks are set aside.
	for r, id := range map[*redis.Client]string{rg: idG, rn: idN} {
		r.Del(ctx, q+"t:"+id)
		r.LRem(ctx, q+"pending", 0, id)
	}
	compareBatchState(t, ctx, viaGo, viaNode, spec)
}

func mustEncode(tb testing.TB, p jobs.Payload) []byte {
	tb.Helper()
	b, err := p.Encode()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
