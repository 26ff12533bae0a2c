package e2e_test

import (
	"bufio"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// BenchmarkLoneJob/ocr measures lone OCR jobs, one after the other on an
// otherwise idle worker (Client.Run of an inline image: enqueue, pick-up,
// guest, result, completion notice), all of one rendered line so that the
// spread is the queue's, not the images'. It reports the enqueue-to-result
// percentiles and service-ms, the mean guest run (instantiate, run, close)
// from the worker's metrics: the rest of p50 is what the queue adds.
func BenchmarkLoneJob(b *testing.B) {
	b.Run("ocr", func(b *testing.B) {
		p := newPipeline(b, 2)
		ctx := testenv.Context(b, 10*time.Minute)
		img := ocrCases(b, 1)[0].image
		run := func() time.Duration {
			start := time.Now()
			if _, err := p.client.Run(ctx, jobs.TypeImage, jobs.Payload{Guest: "ocr", Data: img}); err != nil {
				b.Fatal(err)
			}
			return time.Since(start)
		}
		for range 5 { // compile, sessions, first runs
			run()
		}
		sum0, runs0 := guestRuns(b, p)
		n := max(b.N, 40)
		lat := make([]time.Duration, 0, n)
		b.ResetTimer()
		for range n {
			lat = append(lat, run())
		}
		b.StopTimer()
		sum, runs := guestRuns(b, p)
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
		b.ReportMetric(ms(lat[len(lat)*95/100]), "p95-ms")
		b.ReportMetric((sum-sum0)*1000/(runs-runs0), "service-ms")
	})
}

// guestRuns reads the sum (seconds) and count of the worker's guest-run
// histogram from its metrics endpoint.
func guestRuns(tb testing.TB, p *pipeline) (sum, count float64) {
	tb.Helper()
	rec := httptest.NewRecorder()
	p.worker.Metrics().Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "{")
		v, err := strconv.ParseFloat(value, 64)
		switch {
		case err != nil:
		case name == "wasmjobs_guest_run_seconds_sum":
			sum += v
		case name == "wasmjobs_guest_run_seconds_count":
			count += v
		}
	}
	if count == 0 {
		tb.Fatal("no guest runs in the worker's metrics")
	}
	return sum, count
}
