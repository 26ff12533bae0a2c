package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/jobs"
)

func hashOf(t *testing.T, opt asynq.RedisClientOpt, key string) map[string]string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: opt.Addr, DB: opt.DB})
	defer c.Close()
	h, err := c.HGetAll(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestEnqueueManyWritesWhatAsynqWrites enqueues the same jobs through
// asynq's own client, through Enqueue and through the pipelined
// EnqueueMany, and compares the stored task messages byte for byte and the
// task infos returned.
func TestEnqueueManyWritesWhatAsynqWrites(t *testing.T) {
	viaAsynq, viaOne, viaMany := testenv.Redis(t), testenv.Redis(t), testenv.Redis(t)
	ac := asynq.NewClient(viaAsynq)
	defer ac.Close()
	one := newClient(t, viaOne)
	m := newClient(t, viaMany)
	ctx := testenv.Context(t, 30*time.Second)
	deadline := time.Unix(1900000000, 0)
	cases := []jobs.Job{
		{Type: jobs.TypeText, Payload: jobs.Payload{Guest: "hello", Data: []byte("Ada")}},
		{Type: jobs.TypeText, Payload: jobs.Payload{Guest: "hello", Data: []byte{}}, Options: []jobs.Option{jobs.Queue("q2"), jobs.MaxRetry(0)}},
		{Type: jobs.TypeImage, Payload: jobs.Payload{Guest: "ocr", Input: "s3://data/a.png", Params: map[string]string{"b": "2", "a": "1"}, Batch: "b1"},
			Options: []jobs.Option{jobs.Timeout(90 * time.Second), jobs.Retention(time.Hour), jobs.MaxRetry(3)}},
		{Type: jobs.TypeText, Payload: jobs.Payload{Guest: "wordcount", Input: "s3://data/b.txt", Output: "s3://out/b.json"},
			Options: []jobs.Option{jobs.Deadline(deadline.Add(300 * time.Millisecond))}},
		{Type: jobs.TypeText, Payload: jobs.Payload{Guest: "wordcount", Input: "s3://data/c.txt"},
			Options: []jobs.Option{jobs.Deadline(deadline), jobs.Timeout(time.Minute + 500*time.Millisecond)}},
		// asynq's own "no deadline".
		{Type: jobs.TypeText, Payload: jobs.Payload{Guest: "wordcount", Input: "s3://data/d.txt"}, Options: []jobs.Option{jobs.Deadline(time.Unix(0, 0))}},
	}
	var (
		many  []jobs.Job
		wants []*jobs.TaskInfo
	)
	sameInfo := func(a, b *jobs.TaskInfo) bool {
		return a.ID == b.ID && a.Queue == b.Queue && a.Type == b.Type && string(a.Payload) == string(b.Payload) && a.State == b.State &&
			a.MaxRetry == b.MaxRetry && a.Timeout == b.Timeout && a.Deadline.Equal(b.Deadline) && a.Retention == b.Retention
	}
	for i, c := range cases {
		c.Options = append(c.Options, jobs.TaskID(fmt.Sprintf("same-id-%d", i)))
		task, opts, err := jobs.NewTask(c.Type, c.Payload, c.Options...)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ac.EnqueueContext(ctx, task, opts...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := one.Enqueue(ctx, c.Type, c.Payload, c.Options...)
		if err != nil {
			t.Fatal(err)
		}
		if !sameInfo(got, want) {
			t.Errorf("job %d: Enqueue returned %+v, asynq %+v", i, got, want)
		}
		many, wants = append(many, c), append(wants, want)
	}
	res, err := m.EnqueueMany(ctx, many)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("job %d: %v", i, r.Err)
		}
		if !sameInfo(r.Info, wants[i]) {
			t.Errorf("job %d: EnqueueMany returned %+v, asynq %+v", i, r.Info, wants[i])
		}
		key := "asynq:{" + r.Info.Queue + "}:t:" + r.Info.ID
		ha, ho, hm := hashOf(t, viaAsynq, key), hashOf(t, viaOne, key), hashOf(t, viaMany, key)
		if ha["msg"] != hm["msg"] || ha["msg"] != ho["msg"] {
			t.Errorf("job %d: message differs:\nasynq   %x\nEnqueue %x\nmany    %x", i, ha["msg"], ho["msg"], hm["msg"])
		}
		if ha["state"] != "pending" || ho["state"] != "pending" || hm["state"] != "pending" || len(hm["pending_since"]) < 19 || len(ho["pending_since"]) < 19 {
			t.Errorf("job %d: hash fields asynq %v, Enqueue %v, many %v", i, ha, ho, hm)
		}
	}
	// asynq itself reads what EnqueueMany wrote.
	insp := asynq.NewInspector(viaMany)
	defer insp.Close()
	info, err := insp.GetTaskInfo("default", "same-id-2")
	if err != nil {
		t.Fatal(err)
	}
	if info.MaxRetry != 3 || info.Timeout != 90*time.Second || info.Retention != time.Hour || info.Type != jobs.TypeImage {
		t.Errorf("inspector sees %+v", info)
	}
	queues, err := insp.Queues()
	if err != nil || len(queues) != 2 {
		t.Errorf("queues = %v, %v; want default and q2", queues, err)
	}
}

func TestEnqueueManyPerJobErrors(t *testing.T) {
	opt := testenv.Redis(t)
	c, err := jobs.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testenv.Context(t, 30*time.Second)
	res, err := c.EnqueueMany(ctx, []jobs.Job{
		{Type: jobs.TypeText, Payload: jobs.Payload{Guest: "hello", Data: []byte("a")}, Options: []jobs.Option{jobs.TaskID("dup")}},
		{Type: jobs.TypeText, Payload: jobs.Payload{Guest: "", Data: []byte("a")}},
		{Type: jobs.TypeText, Payload: jobs.Payload{Guest: "hello", Data: []byte("b")}, Options: []jobs.Option{jobs.TaskID("dup")}},
		{Type: jobs.TypeText, Payload: jobs.Payload{Guest: "hello", Data: []byte("c")}, Options: []jobs.Option{jobs.Unique(time.Minute)}},
		{Type: jobs.TypeText, Payload: jobs.Payload{Guest: "hello", Data: []byte("c")}, Options: []jobs.Option{jobs.Unique(time.Minute)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[0].Info.ID != "dup" {
		t.Errorf("job 0: %+v", res[0])
	}
	if !errors.Is(res[1].Err, jobs.ErrInvalidPayload) {
		t.Errorf("job 1 err = %v, want invalid payload", res[1].Err)
	}
	if !errors.Is(res[2].Err, jobs.ErrTaskIDConflict) {
		t.Errorf("job 2 err = %v, want id conflict", res[2].Err)
	}
	if res[3].Err != nil || !errors.Is(res[4].Err, jobs.ErrDuplicateTask) {
		t.Errorf("unique jobs: %v, %v", res[3].Err, res[4].Err)
	}
}

func BenchmarkEnqueueMany(b *testing.B) {
	opt := testenv.Redis(b)
	c, err := jobs.NewClient(opt)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	const chunk = 1000
	batch := make([]jobs.Job, chunk)
	for i := range batch {
		batch[i] = jobs.Job{Type: jobs.TypeText, Payload: jobs.Payload{Guest: "wordcount", Input: fmt.Sprintf("s3://data/docs/%06d.txt", i)}}
	}
	b.ResetTimer()
	for n := 0; n < b.N; n += chunk {
		if _, err := c.EnqueueMany(ctx, batch[:min(chunk, b.N-n)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

func BenchmarkEnqueueOneByOne(b *testing.B) {
	opt := testenv.Redis(b)
	c, err := jobs.NewClient(opt)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, err := c.EnqueueText(ctx, jobs.Payload{Guest: "wordcount", Input: fmt.Sprintf("s3://data/docs/%06d.txt", i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}
