package worker_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/internal/worker"
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

// BenchmarkLoneJob measures the latency of a lone job: one job at a time
// is enqueued and its result read back (jobs.Client.Run) while the worker
// is otherwise idle, with the worker's default poll interval; /hello is an
// inline hello job. It reports the enqueue-to-result percentiles and
// service-ms, the mean guest run (instantiate, run, close) from the worker's
// metrics: what is left is queueing, Redis and notification overhead.
func BenchmarkLoneJob(b *testing.B) {
	e := newEnv(b, envConfig{concurrency: 8, worker: worker.Config{PollInterval: worker.Config{}.WithDefaults().PollInterval}})
	ctx := testenv.Context(b, 10*time.Minute)
	b.Run("hello", func(b *testing.B) {
		run := func(i int) time.Duration {
			start := time.Now()
			if _, err := e.client.Run(ctx, jobs.TypeText, jobs.Payload{Guest: "hello", Data: fmt.Appendf(nil, "n%d", i)}); err != nil {
				b.Fatal(err)
			}
			return time.Since(start)
		}
		run(-1) // compile the guest and load the scripts outside the measurement
		sum0, runs0 := e.metrics.GuestRunTotals()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			lat = append(lat, run(i))
		}
		b.StopTimer()
		sum, runs := e.metrics.GuestRunTotals()
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
		b.ReportMetric(ms(lat[(len(lat)*95)/100]), "p95-ms")
		if runs > runs0 {
			b.ReportMetric((sum-sum0)*1000/float64(runs-runs0), "service-ms")
		}
	})
}
