package worker

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wasmjobs/wasmjobs/internal/sandbox"
)

// Metrics are a Worker's Prometheus metrics (Worker.Metrics); serve them
// with Handler.
type Metrics struct {
	reg       *prometheus.Registry
	jobs      *prometheus.CounterVec
	guestRun  *prometheus.HistogramVec
	inBytes   prometheus.Counter
	outBytes  prometheus.Counter
	inference *prometheus.HistogramVec
}

// newMetrics registers the worker's metrics in a fresh registry; add the
// compile cache counters with watchRuntime.
func newMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmjobs_jobs_total", Help: "Jobs handled, by task type and outcome (done, failed, retry, canceled).",
		}, []string{"type", "outcome"}),
		guestRun: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wasmjobs_guest_run_seconds", Help: "Guest runs: instantiate, run and close.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}, []string{"guest", "outcome"}),
		inBytes:  prometheus.NewCounter(prometheus.CounterOpts{Name: "wasmjobs_input_bytes_total", Help: "Input bytes handed to guests."}),
		outBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "wasmjobs_output_bytes_total", Help: "Output bytes written by guests."}),
		inference: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wasmjobs_inference_seconds", Help: "WASI-NN compute calls by model.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}, []string{"model"}),
	}
	m.reg.MustRegister(m.jobs, m.guestRun, m.inBytes, m.outBytes, m.inference,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watchRuntime exports rt's compile cache counters.
func (m *Metrics) watchRuntime(rt *sandbox.Runtime) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "wasmjobs_compile_cache_hits_total",
			Help: "Guest lookups answered by the in-memory compiled-module cache."}, func() float64 { return float64(rt.Stats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "wasmjobs_compile_cache_misses_total",
			Help: "Guest compiles (from wazero's disk cache or from scratch)."}, func() float64 { return float64(rt.Stats().Misses) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wasmjobs_compiled_modules",
			Help: "Compiled guests held in memory."}, func() float64 { return float64(rt.Stats().Cached) }),
	)
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// observeInference records one compute call of a model.
func (m *Metrics) observeInference(model string, d time.Duration) {
	if m != nil {
		m.inference.WithLabelValues(model).Observe(d.Seconds())
	}
}

func (m *Metrics) job(typ, outcome string) {
	if m != nil {
		m.jobs.WithLabelValues(typ, outcome).Inc()
	}
}

func (m *Metrics) run(guest, outcome string, d time.Duration, in, out int) {
	if m != nil {
		m.guestRun.WithLabelValues(guest, outcome).Observe(d.Seconds())
		m.inBytes.Add(float64(in))
		m.outBytes.Add(float64(out))
	}
}
