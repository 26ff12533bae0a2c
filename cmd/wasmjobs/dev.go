package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/spf13/cobra"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/web"
	"github.com/wasmjobs/wasmjobs/internal/worker"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// sampleBucket holds the dataset `wasmjobs dev` processes.
const sampleBucket = "samples"

func newDevCmd(g *globalFlags) *cobra.Command {
	var (
		rf      runFlags
		serve   bool
		webAddr string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process on an in-process Redis and S3, with a sample dataset",
		Long: `dev starts an in-process Redis (miniredis) and an in-process S3 (gofakes3), registers
the shipped guests, seeds a small sample dataset, runs a worker and processes every
sample end to end — a batch over the text dataset, inline text jobs and, with the
models present, OCR image jobs — printing each result with its key. With --serve it keeps running
until interrupted, so you can enqueue more jobs against the printed endpoints.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), cmd.OutOrStdout(), g, &rf, serve, webAddr)
		},
	}
	rf.register(cmd)
	cmd.Flags().BoolVar(&serve, "serve", false, "keep running after the samples until Ctrl-C")
	cmd.Flags().StringVar(&webAddr, "web-addr", "127.0.0.1:8080", "dashboard address (loopback, no token); empty to skip it")
	return cmd
}

func runDev(ctx context.Context, out io.Writer, g *globalFlags, rf *runFlags, serve bool, webAddr string) error {
	// The shipped models, where `make models` put them; without them the
	// inference guests are left out and hello and wordcount still run.
	rf.nn.defaults = shippedModelPaths("models")
	withModels := len(rf.nn.defaults) > 0
	if !withModels {
		fmt.Fprintln(out, "no models/ directory: skipping the ocr and langid samples (run `make models`)")
	}
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return fmt.Errorf("in-process Redis: %w", err)
	}
	defer mr.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("in-process S3: %w", err)
	}
	s3srv := &http.Server{Handler: gofakes3.New(s3mem.New()).Server(), ReadHeaderTimeout: 10 * time.Second}
	go s3srv.Serve(ln)
	defer s3srv.Close()

	g.redisURL = "redis://" + mr.Addr()
	g.s3 = blob.Config{Endpoint: ln.Addr().String(), AccessKey: "dev", SecretKey: "devsecret", UnsignedStreams: true}
	fmt.Fprintf(out, "in-process Redis at %s, in-process S3 at http://%s\n", g.redisURL, g.s3.Endpoint)

	svc, err := g.connect(true)
	if err != nil {
		return err
	}
	defer svc.Close()
	ropt, store := svc.redis, svc.store
	client, err := jobs.NewClient(ropt)
	if err != nil {
		return err
	}
	defer client.Close()
	for _, b := range []string{g.guestBucket, sampleBucket} {
		if err := store.EnsureBucket(ctx, b); err != nil {
			return err
		}
	}
	wcfg, err := rf.workerConfig(g, svc, "results")
	if err != nil {
		return err
	}
	wcfg.Concurrency = 4
	w, err := worker.New(wcfg)
	if err != nil {
		return err
	}
	defer w.Shutdown()
	builtin := guests.Builtin()
	for _, name := range slices.Sorted(maps.Keys(builtin)) {
		digest, err := w.Guests().Push(ctx, name, builtin[name])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "registered guest %-10s %s\n", name, digest)
	}
	_, hasOCR := builtin["ocr"]
	_, hasLangid := builtin["langid"]
	hasOCR, hasLangid = hasOCR && withModels, hasLangid && withModels
	keys := slices.Sorted(maps.Keys(sampleTexts))
	for _, k := range keys {
		if err := store.Put(ctx, s3url.ObjectURL{Bucket: sampleBucket, Key: k}, []byte(sampleTexts[k]), "text/plain; charset=utf-8", nil); err != nil {
			return err
		}
	}
	if hasOCR {
		for k, lines := range sampleImages {
			img, err := renderLines(lines, 40)
			if err != nil {
				return err
			}
			if err := store.Put(ctx, s3url.ObjectURL{Bucket: sampleBucket, Key: k}, img, "image/png", nil); err != nil {
				return err
			}
		}
	}
	reviews, shard, err := sampleRecords(hasOCR)
	if err != nil {
		return err
	}
	if err := store.Put(ctx, s3url.ObjectURL{Bucket: sampleBucket, Key: "records/reviews/reviews.jsonl"}, reviews, "application/x-ndjson", nil); err != nil {
		return err
	}
	if err := store.Put(ctx, s3url.ObjectURL{Bucket: sampleBucket, Key: "records/shards/shard-000000.tar"}, shard, "application/x-tar", nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "seeded the sample dataset in s3://%s/\n", sampleBucket)

	if err := w.Start(ctx); err != nil {
		return err
	}
	dashboard := ""
	if webAddr != "" {
		ws, err := web.New(web.Config{Addr: webAddr, Redis: ropt, Store: store})
		if err == nil {
			err = ws.Start(ctx)
		}
		if err != nil {
			fmt.Fprintf(out, "dashboard not started: %v\n", err)
		} else {
			defer ws.Stop()
			dashboard = "http://" + webAddr
		}
	}

	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	failed := 0

	// runBatch plans a sample batch here, as `batch run` does, and waits
	// for it and its manifest.
	runBatch := func(spec batch.Spec) (batch.Spec, *batch.Status, error) {
		spec, err := spec.WithDefaults()
		if err != nil {
			return spec, nil, err
		}
		if _, err := svc.batches.CreateBatch(ctx, spec); err != nil {
			return spec, nil, err
		}
		access := batch.Access{GuestBucket: g.guestBucket}
		if _, err := batch.Plan(ctx, svc.batches, store, spec, batch.PlanConfig{Access: access}); err != nil {
			return spec, nil, err
		}
		st, err := batch.Wait(waitCtx, svc.batches, spec.ID, 50*time.Millisecond, nil)
		if err != nil {
			return spec, nil, err
		}
		return spec, st, batch.EnsureManifest(ctx, svc.batches, store, spec.ID, access)
	}

	// 1. The main job: a batch over the text dataset.
	spec, bst, err := runBatch(batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + sampleBucket + "/texts/", ID: "sample-texts"})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nbatch %s: %d objects, %d done, %d failed; manifest %s\n", spec.ID, bst.Total, bst.Done, bst.Failed, spec.OutputObject(s3url.ManifestName))
	failed += int(bst.Failed)
	for it, err := range svc.batches.BatchItems(ctx, spec.ID) {
		if err != nil {
			return err
		}
		u, _ := s3url.ParseObjectURL(it.Output)
		body, _, err := store.Get(ctx, u, 1<<20)
		if err != nil {
			fmt.Fprintf(out, "  %s: %s %s\n", it.Key, it.Status, it.Error)
			continue
		}
		fmt.Fprintf(out, "  s3://%s/%s\n    → %s\n    %s\n", sampleBucket, it.Key, it.Output, body)
	}

	// 2. Inline jobs: results come back through Redis, no S3 involved.
	type pending struct {
		label string
		info  *jobs.TaskInfo
	}
	var inline []pending
	for _, name := range sampleNames {
		info, err := client.EnqueueText(ctx, jobs.Payload{Guest: "hello", Data: []byte(name)})
		if err != nil {
			return err
		}
		inline = append(inline, pending{fmt.Sprintf("hello %q", name), info})
	}
	if hasLangid {
		for _, s := range sampleSentences {
			info, err := client.EnqueueText(ctx, jobs.Payload{Guest: "langid", Data: []byte(s)})
			if err != nil {
				return err
			}
			inline = append(inline, pending{fmt.Sprintf("langid %q", s), info})
		}
	}
	// 3. Image jobs: OCR through WASI-NN and ONNX Runtime.
	if hasOCR {
		for _, k := range slices.Sorted(maps.Keys(sampleImages)) {
			info, err := client.EnqueueImage(ctx, jobs.Payload{Guest: "ocr", Input: s3url.ObjectURL{Bucket: sampleBucket, Key: k}.String()},
				jobs.Retention(time.Hour))
			if err != nil {
				return err
			}
			inline = append(inline, pending{"ocr s3://" + sampleBucket + "/" + k, info})
		}
	}
	fmt.Fprintln(out)
	for _, p := range inline {
		res, err := client.Wait(waitCtx, p.info.Queue, p.info.ID)
		if err != nil {
			failed++
			fmt.Fprintf(out, "FAILED %s: %v\n", p.label, err)
			continue
		}
		if p.info.Type == jobs.TypeImage {
			var sum worker.Summary
			if err := json.Unmarshal(res, &sum); err == nil {
				if u, err := s3url.ParseObjectURL(sum.Output); err == nil {
					if body, _, err := store.Get(ctx, u, 1<<20); err == nil {
						res = body
					}
				}
				fmt.Fprintf(out, "%s\n  → %s\n  %s\n", p.label, sum.Output, res)
				continue
			}
		}
		fmt.Fprintf(out, "%s\n  → %s\n", p.label, res)
	}
	// 4. Record batches: a JSON lines file and a tar shard, split into
	// shards of records, their outputs merged in record order.
	recGuest, imgGuest := "wordcount", "wordcount"
	if hasLangid {
		recGuest = "langid"
	}
	if hasOCR {
		imgGuest = "ocr"
	}
	for _, rb := range []struct {
		id, prefix, guest, typ string
		recs                   batch.RecordsSpec
	}{
		{"sample-reviews", "records/reviews/", recGuest, "text", batch.RecordsSpec{Format: "jsonl", Field: "text", ShardRecords: 8, Merge: true}},
		{"sample-shards", "records/shards/", imgGuest, "image", batch.RecordsSpec{Format: "tar", ShardRecords: 2, Merge: true}},
	} {
		recs := rb.recs
		spec, st, err := runBatch(batch.Spec{Guest: rb.guest, Type: rb.typ, Input: "s3://" + sampleBucket + "/" + rb.prefix, ID: rb.id, Records: &recs})
		if err != nil {
			return err
		}
		failed += int(st.Failed)
		merged := spec.OutputObject(batch.MergedName)
		fmt.Fprintf(out, "\nrecord batch %s (%s, guest %s): %d records in %d shards, %d with an error line\n  merged, in record order: %s\n",
			spec.ID, recs.Format, rb.guest, st.Records, st.Total, st.RecordErrors, merged)
		if body, _, err := store.Get(ctx, merged, 1<<20); err == nil {
			lines := strings.SplitN(string(body), "\n", 4)
			for _, l := range lines[:min(3, len(lines))] {
				fmt.Fprintf(out, "    %.160s\n", l)
			}
		}
	}

	if failed > 0 {
		return fmt.Errorf("%d sample jobs failed", failed)
	}
	fmt.Fprintf(out, "\nall sample jobs done.\n")
	if !serve {
		fmt.Fprintln(out, "To keep the in-process Redis and S3, the worker and the dashboard (batches, queues, metrics) running")
		fmt.Fprintln(out, "and enqueue your own jobs: go run ./cmd/wasmjobs dev --serve   (then open http://127.0.0.1:8080/)")
		return nil
	}
	if dashboard != "" {
		fmt.Fprintf(out, "\ndashboard: %s/ (batches)  %s/monitoring/ (queues)  %s/metrics\n", dashboard, dashboard, dashboard)
	}
	fmt.Fprintf(out, "serving until Ctrl-C. Try:\n  echo -n you | wasmjobs enqueue text --redis %s --guest hello --data-file - --wait 5s\n", g.redisURL)
	<-ctx.Done()
	return nil
}
