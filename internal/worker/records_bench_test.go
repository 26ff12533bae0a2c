package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/nn/fasttext"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/internal/testworker"
	"github.com/wasmjobs/wasmjobs/internal/worker"
)

// recordBatchRecords is the size of BenchmarkRecordBatch's JSON lines file.
const recordBatchRecords = 1_000_000

// BenchmarkRecordBatch runs langid over one JSON lines object of
// recordBatchRecords records (benchRecords, in field "text"), two ways:
//
//   - fasttext is the floor: the fastText backend called from Go, no
//     guest, no queue, on as many goroutines as the worker's default
//     concurrency, each with its own execution context, predicting every
//     record once (k = 3, as the guest asks);
//   - langid-shards is a record batch as `wasmjobs batch run --records
//     jsonl --field text --merge` runs it: the object in MinIO, the batch
//     started, a worker built as the wasmjobs command builds it (its
//     default concurrency and shard sizes) planning it into shards and
//     running each shard in one langid instance (the records ABI), one
//     output per shard, merged into one object; timed from the start until
//     the manifest and the merged output are written.
//
// Both report records/s and the CPU time of this process per record
// (Getrusage: for langid-shards the worker and the planner, not Redis or
// MinIO); langid-shards also of-fasttext, its records/s over the floor's,
// and how many shards the plan made. BenchmarkTextJobs/wasmjobs-langid is the same records,
// the first textJobs of them, as one inline job each.
func BenchmarkRecordBatch(b *testing.B) {
	texts := benchRecords(b, recordBatchRecords)
	concurrency := worker.Config{}.WithDefaults().Concurrency
	var rates [2]float64
	b.Run("fasttext", func(b *testing.B) {
		g, err := fasttext.New().LoadFile(context.Background(), filepath.Join(testenv.ModelsDir(b), "lid.176.ftz"))
		if err != nil {
			b.Fatal(err)
		}
		defer g.Close()
		var total, cpu time.Duration
		for range b.N {
			began, cpu0 := time.Now(), processCPU(b)
			predictAll(b, g, texts, concurrency)
			total += time.Since(began)
			cpu += processCPU(b) - cpu0
		}
		rates[0] = float64(b.N*len(texts)) / total.Seconds()
		b.ReportMetric(rates[0], "records/s")
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*len(texts)), "cpu-µs/record")
	})
	b.Run("langid-shards", func(b *testing.B) {
		defer reportRatio(b, rates[:], "of-fasttext")
		store, bucket := testenv.Store(b)
		ctx := testenv.Context(b, 10*time.Minute)
		if err := store.Put(ctx, s3url.ObjectURL{Bucket: bucket, Key: "records/texts.jsonl"}, jsonLines(texts), "application/x-ndjson", nil); err != nil {
			b.Fatal(err)
		}
		var total, cpu time.Duration
		var shards int64
		for i := range b.N {
			b.StopTimer()
			opt := testenv.Redis(b)
			w := newProductionWorker(b, opt, store)
			if err := w.Start(testenv.Context(b, time.Minute)); err != nil {
				b.Fatal(err)
			}
			c, err := batch.NewClient(opt)
			if err != nil {
				b.Fatal(err)
			}
			spec := batch.Spec{
				ID: "records-bench", Guest: "langid", Type: "text",
				Input:   "s3://" + bucket + "/records/",
				Output:  fmt.Sprintf("s3://%s/records-out-%d/", bucket, i),
				Records: &batch.RecordsSpec{Format: "jsonl", Field: "text", Merge: true},
			}
			b.StartTimer()
			began, cpu0 := time.Now(), processCPU(b)
			st := testworker.RunBatch(b, ctx, c, spec)
			total += time.Since(began)
			cpu += processCPU(b) - cpu0
			b.StopTimer()
			if st.Records != int64(len(texts)) || st.RecordsDone != st.Records || st.RecordErrors != 0 || st.Failed != 0 {
				b.Fatalf("batch: %d records, %d done, %d errors; %d of %d shards failed (%s)",
					st.Records, st.RecordsDone, st.RecordErrors, st.Failed, st.Total, st.Error)
			}
			shards += st.Total
			c.Close()
			w.Shutdown()
		}
		rates[1] = float64(b.N*len(texts)) / total.Seconds()
		b.ReportMetric(rates[1], "records/s")
		b.ReportMetric(float64(shards)/float64(b.N), "shards")
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*len(texts)), "worker-cpu-µs/record")
	})
}

// predictAll runs the fastText graph on every text from n goroutines, each
// with its own execution context, as the langid guest calls it.
func predictAll(b *testing.B, g nn.Graph, texts [][]byte, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	k := nn.Tensor{Type: nn.I32, Dims: []uint32{1}, Data: []byte{3, 0, 0, 0}}
	ctx := context.Background()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ec, err := g.NewContext()
			if err != nil {
				errs <- err
				return
			}
			defer ec.Close()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(texts) {
					return
				}
				err := ec.SetInput(0, nn.Tensor{Type: nn.U8, Dims: []uint32{uint32(len(texts[i]))}, Data: texts[i]})
				if err == nil {
					err = ec.SetInput(1, k)
				}
				if err == nil {
					err = ec.Compute(ctx)
				}
				if err == nil {
					_, err = ec.Output(0)
				}
				if err == nil {
					_, err = ec.Output(1)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// benchRecords is n texts made from the fastText tests' sentences: the
// sentences themselves, then each again with its words rotated by one
// more place per round, so that records repeat only after every rotation
// of every sentence (and each keeps its language's words).
func benchRecords(b *testing.B, n int) [][]byte {
	sentences := benchSentences(b)
	words := make([][]string, len(sentences))
	for i, s := range sentences {
		words[i] = strings.Fields(string(s))
	}
	out := make([][]byte, n)
	for j := range out {
		w := words[j%len(words)]
		r := (j / len(words)) % max(len(w), 1)
		out[j] = []byte(strings.Join(append(append([]string(nil), w[r:]...), w[:r]...), " "))
	}
	return out
}

// jsonLines is texts as JSON lines, each {"text": ...}.
func jsonLines(texts [][]byte) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, t := range texts {
		_ = enc.Encode(struct {
			Text string `json:"text"`
		}{string(t)})
	}
	return buf.Bytes()
}
