package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/wasmjobs/wasmjobs/blob"
	"github.com/wasmjobs/wasmjobs/guest"
	"github.com/wasmjobs/wasmjobs/jobs"
	"github.com/wasmjobs/wasmjobs/worker"
)

// sampleBucket holds the dataset `wasmjobs dev` processes.
const sampleBucket = "samples"

// sampleTexts is the small dataset of `wasmjobs dev`.
var sampleTexts = map[string]string{
	"texts/queue.txt":   "A queue turns a burst of work into a steady stream.\nWorkers take one job at a time, and the queue remembers the rest.\n",
	"texts/sandbox.txt": "Untrusted bytes are parsed inside the sandbox, never by the host.\nA guest that loops forever is stopped at its deadline.\n",
	"texts/cache.txt":   "Compile once, run many times: the compiled guest is cached in memory and on disk, so a restarted worker starts its first job in milliseconds.",
	"texts/greek.txt":   "Η ουρά κρατά τη δουλειά μέχρι να έρθει η σειρά της.\n",
	"texts/poem.txt":    "small jobs, small guests,\nmany at once, none at rest;\nthe queue hums along.\n",
}

// sampleNames are greeted by inline hello jobs, whose results come back
// through the task result rather than S3.
var sampleNames = []string{"Ada", "Grace", "NodeJS"}

func newDevCmd(g *globalFlags) *cobra.Command {
	var (
		rf    runFlags
		serve bool
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process on an in-process Redis and S3, with a sample dataset",
		Long: `dev starts an in-process Redis (miniredis) and an in-process S3 (gofakes3), registers
the shipped guests, seeds a small sample dataset, runs a worker and processes every
sample end to end, printing each result with its key. With --serve it keeps running
until interrupted, so you can enqueue more jobs against the printed endpoints.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), cmd.OutOrStdout(), g, &rf, serve)
		},
	}
	rf.register(cmd)
	cmd.Flags().BoolVar(&serve, "serve", false, "keep running after the samples until Ctrl-C")
	return cmd
}

func runDev(ctx context.Context, out io.Writer, g *globalFlags, rf *runFlags, serve bool) error {
	// The shipped models, where `make models` put them; without them the
	// inference guests fail but hello and wordcount still run.
	rf.nn.defaults = shippedModelPaths("models")
	if len(rf.nn.defaults) == 0 {
		fmt.Fprintln(out, "no models/ directory: inference guests (ocr, langid) will not find their models; run `make models`")
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
	g.s3 = blob.Config{Endpoint: ln.Addr().String(), AccessKey: "dev", SecretKey: "devsecret"}
	fmt.Fprintf(out, "in-process Redis at %s, in-process S3 at http://%s\n", g.redisURL, g.s3.Endpoint)

	store, err := g.store()
	if err != nil {
		return err
	}
	for _, b := range []string{g.guestBucket, sampleBucket} {
		if err := store.EnsureBucket(ctx, b); err != nil {
			return err
		}
	}
	st, err := newStack(ctx, g, rf, store, "results", nil)
	if err != nil {
		return err
	}
	defer st.close()
	for _, name := range slices.Sorted(maps.Keys(guest.Builtin())) {
		digest, err := st.guests.Push(ctx, name, guest.Builtin()[name])
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "registered guest %-10s %s\n", name, digest)
	}
	keys := slices.Sorted(maps.Keys(sampleTexts))
	for _, k := range keys {
		u := jobs.ObjectURL{Bucket: sampleBucket, Key: k}
		if err := store.Put(ctx, u, []byte(sampleTexts[k]), "text/plain; charset=utf-8", nil); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "seeded %d sample objects under s3://%s/texts/\n", len(keys), sampleBucket)

	ropt, err := g.redisOpt()
	if err != nil {
		return err
	}
	srv, err := worker.NewServer(worker.ServerConfig{Redis: ropt, Handler: st.handler, Concurrency: 4, PollInterval: 50 * time.Millisecond,
		Logger: slog.Default()})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Stop()

	client, err := jobs.NewClient(ropt)
	if err != nil {
		return err
	}
	defer client.Close()
	type pending struct {
		label string
		info  *jobs.TaskInfo
	}
	var all []pending
	for _, k := range keys {
		info, err := client.EnqueueText(ctx, jobs.Payload{Guest: "wordcount", Input: jobs.ObjectURL{Bucket: sampleBucket, Key: k}.String()},
			jobs.Retention(time.Hour))
		if err != nil {
			return err
		}
		all = append(all, pending{"wordcount s3://" + sampleBucket + "/" + k, info})
	}
	for _, name := range sampleNames {
		info, err := client.EnqueueText(ctx, jobs.Payload{Guest: "hello", Data: []byte(name)})
		if err != nil {
			return err
		}
		all = append(all, pending{fmt.Sprintf("hello %q (inline)", name), info})
	}
	fmt.Fprintf(out, "enqueued %d jobs; waiting for the worker\n\n", len(all))

	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	failed := 0
	for _, p := range all {
		res, err := client.Wait(waitCtx, p.info.Queue, p.info.ID)
		if err != nil {
			failed++
			fmt.Fprintf(out, "FAILED %s: %v\n", p.label, err)
			continue
		}
		var sum worker.Summary
		if p.info.Type == jobs.TypeText && strings.HasPrefix(p.label, "wordcount") {
			if err := json.Unmarshal(res, &sum); err != nil {
				return err
			}
			u, _ := jobs.ParseObjectURL(sum.Output)
			body, _, err := store.Get(ctx, u, 1<<20)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s\n  → %s\n  %s\n", p.label, sum.Output, body)
			continue
		}
		fmt.Fprintf(out, "%s\n  → %s\n", p.label, res)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d sample jobs failed", failed, len(all))
	}
	fmt.Fprintf(out, "\nall %d sample jobs done.\n", len(all))
	if !serve {
		fmt.Fprintln(out, "Run `wasmjobs dev --serve` to keep these services up and enqueue your own jobs.")
		return nil
	}
	fmt.Fprintf(out, "\nserving until Ctrl-C. Try:\n  echo -n you | wasmjobs enqueue text --redis %s --guest hello --data-file - --wait 5s\n", g.redisURL)
	<-ctx.Done()
	return nil
}
