package web

import (
	"context"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmjobs/wasmjobs/internal/batch"
)

// queueCollector exports asynq's queue sizes, read from Redis at scrape
// time (the Inspector's view, as asynqmon shows it).
type queueCollector struct {
	insp                                              *asynq.Inspector
	size, latency, processed, failed, paused, byState *prometheus.Desc
}

var _ prometheus.Collector = (*queueCollector)(nil)

func newQueueCollector(insp *asynq.Inspector) *queueCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("asynq_"+name, help, labels, nil)
	}
	return &queueCollector{
		insp:      insp,
		size:      d("queue_size", "Number of tasks in a queue.", "queue"),
		byState:   d("tasks_enqueued_total", "Number of tasks in a queue by state.", "queue", "state"),
		latency:   d("queue_latency_seconds", "Time the oldest pending task has waited.", "queue"),
		processed: d("tasks_processed_today", "Tasks processed today (UTC), done or failed.", "queue"),
		failed:    d("tasks_failed_today", "Tasks failed today (UTC).", "queue"),
		paused:    d("queue_paused", "1 when the queue is paused.", "queue"),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.size, c.byState, c.latency, c.processed, c.failed, c.paused} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	queues, err := c.insp.Queues()
	if err != nil {
		return
	}
	for _, q := range queues {
		info, err := c.insp.GetQueueInfo(q)
		if err != nil {
			continue
		}
		g := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{q}, labels...)...)
		}
		g(c.size, float64(info.Size))
		for state, n := range map[string]int{"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
			"retry": info.Retry, "archived": info.Archived, "completed": info.Completed, "aggregating": info.Aggregating} {
			g(c.byState, float64(n), state)
		}
		g(c.latency, info.Latency.Seconds())
		g(c.processed, float64(info.Processed))
		g(c.failed, float64(info.Failed))
		paused := 0.0
		if info.Paused {
			paused = 1
		}
		g(c.paused, paused)
	}
}

// batchCollector exports the progress of recent batches.
type batchCollector struct {
	client *batch.Client
	items  *prometheus.Desc
}

func newBatchCollector(c *batch.Client) *batchCollector {
	return &batchCollector{client: c, items: prometheus.NewDesc("wasmjobs_batch_items",
		"Items of recent batches by state.", []string{"batch", "state"}, nil)}
}

func (c *batchCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.items }

func (c *batchCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	all, err := c.client.ListBatches(ctx, 20)
	if err != nil {
		return
	}
	for _, b := range all {
		for state, n := range map[string]int64{"total": b.Total, "done": b.Done, "failed": b.Failed, "canceled": b.Canceled, "skipped": b.Skipped} {
			ch <- prometheus.MustNewConstMetric(c.items, prometheus.GaugeValue, float64(n), b.ID, state)
		}
	}
}
