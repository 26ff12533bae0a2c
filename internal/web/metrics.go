package web

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmjobs/wasmjobs/internal/batch"
)

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
