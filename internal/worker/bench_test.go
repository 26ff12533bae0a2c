package worker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// BenchmarkInlineTextJobs measures whole jobs through Redis: enqueue an
// inline hello job, a worker (concurrency 8) runs it, the result is read back.
func BenchmarkInlineTextJobs(b *testing.B) {
	e := newEnv(b, envConfig{concurrency: 8})
	ctx := testenv.Context(b, 10*time.Minute)
	b.ResetTimer()
	infos := make([]*jobs.TaskInfo, 0, b.N)
	for i := range b.N {
		info, err := e.client.EnqueueText(ctx, jobs.Payload{Guest: "hello", Data: fmt.Appendf(nil, "n%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		infos = append(infos, info)
	}
	for _, info := range infos {
		if _, err := e.client.Wait(ctx, info.Queue, info.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkS3TextJobs is the same with inputs and outputs in MinIO.
func BenchmarkS3TextJobs(b *testing.B) {
	e := newEnv(b, envConfig{concurrency: 8})
	ctx := testenv.Context(b, 10*time.Minute)
	urls := make([]string, b.N)
	for i := range b.N {
		urls[i] = e.put(b, fmt.Sprintf("bench/%d.txt", i), sampleText(i))
	}
	b.ResetTimer()
	infos := make([]*jobs.TaskInfo, 0, b.N)
	for i := range b.N {
		info, err := e.client.EnqueueText(ctx, jobs.Payload{Guest: "wordcount", Input: urls[i]}, jobs.Retention(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		infos = append(infos, info)
	}
	for _, info := range infos {
		if _, err := e.client.Wait(ctx, info.Queue, info.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}
