package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

func newBatchCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "batch",
		Short: "Process a whole S3 prefix: one job per object, with progress and a manifest",
	}
	cmd.AddCommand(newBatchRunCmd(g), newBatchStatusCmd(g), newBatchListCmd(g), newBatchRetryCmd(g), newBatchCancelCmd(g), newBatchDeleteCmd(g))
	return cmd
}

func newBatchRunCmd(g *globalFlags) *cobra.Command {
	var (
		spec      batch.Spec
		kind      string
		params    []string
		maxRetry  int
		wait      bool
		chunk     int
		rateCap   float64
		retention time.Duration
		recs      batch.RecordsSpec
	)
	cmd := &cobra.Command{
		Use:   "run s3://bucket/prefix/ --guest NAME --type image|text",
		Short: "Enqueue one job per object under a prefix (resumable), optionally waiting for the end",
		Long: `run lists the prefix and enqueues one job per object. Task ids derive from the batch id,
the object key and its ETag, so running the same command again resumes: nothing is
enqueued twice and nothing is skipped. Workers keep the batch's progress in Redis; when the
last job ends, <out>/_manifest.jsonl and <out>/_summary.json are written. The batch's
record stays in Redis for --retention after it finished (batch delete removes it sooner).

With --records the objects are record files: JSON lines (--field names the field that is
each record's input), CSV (--column, by header name or index), plain lines, or tar shards
(WebDataset: members sharing a base name are one sample; --member picks its input). Each
object is read once and cut into shards at record boundaries, one job per shard; the guest
runs on every record, and each shard writes one JSON line per record, numbered across the
batch: {"index", "key", "result"} or {"index", "key", "error"}. A record that cannot be read
gets an error line; its shard goes on. With --merge the shard outputs are joined, in input
order, into <out>/merged.jsonl when the batch ends.

With --wait it shows progress (a bar on a terminal, plain lines otherwise) and exits
non-zero if any job failed.`,
		Example: `  wasmjobs batch run s3://data/books/ --guest wordcount --type text --wait
  wasmjobs batch run s3://scans/2026/ --guest ocr --type image --include '*.png' --out s3://results/scans/
  wasmjobs batch run s3://data/reviews/ --records jsonl --field text --guest langid --type text --merge --wait
  wasmjobs batch run s3://data/shards/ --records tar --member jpg --guest ocr --type image`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			spec.Input, spec.Type = args[0], kind
			var err error
			if spec.Params, err = parseParams(params); err != nil {
				return err
			}
			if cmd.Flags().Changed("max-retry") {
				spec.MaxRetry = &maxRetry
			}
			if retention < time.Second {
				return fmt.Errorf("--retention %s: at least 1s", retention)
			}
			spec.RetentionSeconds = int64(retention / time.Second)
			if recs.Format != "" {
				spec.Records = &recs
			} else if f := cmd.Flags(); f.Changed("field") || f.Changed("column") || f.Changed("member") || f.Changed("merge") || f.Changed("header") {
				return errors.New("--field, --column, --header, --member and --merge need --records")
			}
			if spec, err = spec.WithDefaults(); err != nil {
				return err
			}
			svc, err := g.connect(true)
			if err != nil {
				return err
			}
			defer svc.Close()
			c, store := svc.batches, svc.store
			if _, err := c.CreateBatch(ctx, spec); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "batch %s: %s → %s (guest %s)\n", spec.ID, spec.Input, spec.Output, spec.Guest)
			start := time.Now()
			res, err := batch.Plan(ctx, c, store, spec, batch.PlanConfig{ChunkSize: chunk, Rate: rateCap, Access: batch.Access{GuestBucket: g.guestBucket}})
			if err != nil {
				return fmt.Errorf("batch %s: %w (run the same command again to resume)", spec.ID, err)
			}
			took := time.Since(start)
			what := "objects"
			if spec.Records != nil {
				what = "shards"
			}
			fmt.Fprintf(out, "listed %d %s in %s: %d enqueued now, %d already enqueued, %d skipped (%.0f %s/s)\n",
				res.Listed, what, took.Round(time.Millisecond), res.Enqueued, res.Resumed, res.Skipped, float64(res.Listed)/took.Seconds(), what)
			if res.Finished {
				if err := batch.EnsureManifest(ctx, c, store, spec.ID, batch.Access{GuestBucket: g.guestBucket}); err != nil {
					return err
				}
			}
			if !wait {
				fmt.Fprintf(out, "follow it with: wasmjobs batch status %s\n", spec.ID)
				return nil
			}
			st, err := waitBatch(ctx, c, spec.ID, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if err := batch.EnsureManifest(ctx, c, store, spec.ID, batch.Access{GuestBucket: g.guestBucket}); err != nil {
				return err
			}
			printStatus(out, st)
			if st.Failed > 0 {
				return exitError{code: exitFailed}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.Guest, "guest", "", "guest name or sha256:<hex> (required)")
	f.StringVar(&kind, "type", "", "job type: image or text (required)")
	f.StringVar(&spec.Output, "out", "", "output prefix s3://bucket/prefix/ (default s3://<input bucket>/wasmjobs-results/<batch id>/)")
	f.StringVar(&spec.Include, "include", "", "only keys matching this glob (relative key or base name)")
	f.Int64Var(&spec.MaxSize, "max-size", 0, "skip objects larger than this many bytes (listed as skipped)")
	f.StringVar(&spec.Queue, "queue", "default", "queue for the jobs")
	f.StringVar(&spec.ID, "id", "", "batch id (default: derived from the arguments, so a rerun resumes)")
	f.StringArrayVar(&params, "param", nil, "guest parameter key=value (repeatable)")
	f.IntVar(&maxRetry, "max-retry", 25, "retries of transient failures per job")
	f.BoolVar(&wait, "wait", false, "wait for the batch to finish, showing progress")
	f.IntVar(&chunk, "chunk", 1000, "objects enqueued per pipelined round trip")
	f.Float64Var(&rateCap, "rate", 0, "cap enqueueing at this many jobs per second (0: no cap)")
	f.DurationVar(&retention, "retention", batch.DefaultRetention, "keep the batch's record in Redis this long after it finished (outputs in S3 stay)")
	f.StringVar(&recs.Format, "records", "", "split each object into records: jsonl, csv, lines or tar (one job per shard of records)")
	f.StringVar(&recs.Field, "field", "", "JSON lines: the field that is each record's input (default: the whole line)")
	f.StringVar(&recs.Column, "column", "", "CSV: the column that is each record's input, by header name or index from 0 (default: the whole row)")
	f.BoolVar(&recs.Header, "header", false, "CSV: the first row names the columns (implied by --column NAME)")
	f.StringVar(&recs.Member, "member", "", "tar: the extension of each sample's member that is its input (default: its first member)")
	f.Int64Var(&recs.ShardBytes, "shard-bytes", 0, "most bytes of records per shard (default 8 MiB)")
	f.Int64Var(&recs.ShardRecords, "shard-records", 0, "most records per shard (default 10000)")
	f.BoolVar(&recs.Merge, "merge", false, "when the batch ends, join the shard outputs in input order into <out>/merged.jsonl")
	_ = cmd.MarkFlagRequired("guest")
	_ = cmd.MarkFlagRequired("type")
	return cmd
}

// waitBatch shows progress until the batch finishes: a bar on a terminal,
// a plain line every few seconds otherwise.
func waitBatch(ctx context.Context, c *batch.Client, id string, w io.Writer) (*batch.Status, error) {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	if !tty {
		last := time.Time{}
		start := time.Now()
		return batch.Wait(ctx, c, id, 500*time.Millisecond, func(st *batch.Status) {
			if time.Since(last) < 5*time.Second && st.Finished.IsZero() {
				return
			}
			last = time.Now()
			fin := st.Done + st.Failed + st.Canceled + st.Skipped
			rate := float64(fin) / time.Since(start).Seconds()
			eta := "?"
			if rate > 0 && st.Listed {
				eta = (time.Duration(float64(st.Remaining())/rate) * time.Second).String()
			}
			recs := ""
			if st.Records > 0 {
				recs = fmt.Sprintf(" (%d/%d records)", st.RecordsDone, st.Records)
			}
			fmt.Fprintf(w, "batch %s: %d/%d done%s, %d failed, %.1f jobs/s, eta %s\n", id, st.Done, st.Total, recs, st.Failed, rate, eta)
		})
	}
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("batch "+id),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("jobs"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionFullWidth(),
	)
	defer fmt.Fprintln(w)
	return batch.Wait(ctx, c, id, 200*time.Millisecond, func(st *batch.Status) {
		if st.Listed && bar.GetMax64() != st.Total {
			bar.ChangeMax64(st.Total)
		}
		if st.Records > 0 {
			bar.Describe(fmt.Sprintf("batch %s (%d/%d records, %d failed)", id, st.RecordsDone, st.Records, st.Failed))
		} else {
			bar.Describe(fmt.Sprintf("batch %s (%d failed)", id, st.Failed))
		}
		_ = bar.Set64(st.Done + st.Failed + st.Canceled + st.Skipped)
	})
}

func printStatus(w io.Writer, st *batch.Status) {
	state := "running"
	switch {
	case !st.Finished.IsZero():
		state = "finished " + st.Finished.Format(time.RFC3339)
	case st.Cancel:
		state = "canceling"
	case !st.Listed:
		state = "listing"
	}
	fmt.Fprintf(w, "batch %s: %s\n  guest %s, %s → %s\n  total %d, enqueued %d, done %d, failed %d, canceled %d, skipped %d, %d input bytes\n",
		st.ID, state, st.Spec.Guest, st.Spec.Input, st.Spec.Output, st.Total, st.Enqueued, st.Done, st.Failed, st.Canceled, st.Skipped, st.Bytes)
	if st.Spec.Records != nil {
		fmt.Fprintf(w, "  records %d: in done shards %d (%d with an error line), in failed shards %d, canceled %d\n",
			st.Records, st.RecordsDone, st.RecordErrors, st.RecordsFailed, st.RecordsCanceled)
	}
	if st.ManifestWritten {
		fmt.Fprintf(w, "  manifest: %s\n", st.Spec.OutputObject(s3url.ManifestName))
		if st.Spec.Records != nil && st.Spec.Records.Merge {
			fmt.Fprintf(w, "  merged: %s\n", st.Spec.OutputObject(batch.MergedName))
		}
	}
}

func newBatchStatusCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show a batch's progress",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := g.connect(false)
			if err != nil {
				return err
			}
			defer svc.Close()
			c := svc.batches
			st, err := c.BatchStatus(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(st)
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the record as JSON")
	return cmd
}

func newBatchListCmd(g *globalFlags) *cobra.Command {
	var (
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List recent batches",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := g.connect(false)
			if err != nil {
				return err
			}
			defer svc.Close()
			c := svc.batches
			all, err := c.ListBatches(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), all)
			}
			for _, st := range all {
				state := "running"
				if !st.Finished.IsZero() {
					state = "finished"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%-20s %-9s %6d/%-6d failed %-5d %s %s\n", st.ID, state, st.Done, st.Total, st.Failed, st.Spec.Guest, st.Spec.Input)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "how many batches")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the records as a JSON array")
	return cmd
}

func newBatchRetryCmd(g *globalFlags) *cobra.Command {
	return batchIDCmd(g, "retry-failed ID", "Run a batch's failed objects again (and only those)",
		func(ctx context.Context, c *batch.Client, id string) (string, error) {
			n, err := c.RetryFailed(ctx, id)
			return fmt.Sprintf("batch %s: %d failed jobs queued again", id, n), err
		})
}

func newBatchDeleteCmd(g *globalFlags) *cobra.Command {
	return batchIDCmd(g, "delete ID", "Remove a finished batch's record from Redis now (its outputs and manifest in S3 stay)",
		func(ctx context.Context, c *batch.Client, id string) (string, error) {
			return fmt.Sprintf("batch %s deleted", id), c.DeleteBatch(ctx, id)
		})
}

// batchIDCmd is a command that takes a batch id, runs do on it and prints
// what do says when it succeeds.
func batchIDCmd(g *globalFlags, use, short string, do func(ctx context.Context, c *batch.Client, id string) (string, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := g.connect(false)
			if err != nil {
				return err
			}
			defer svc.Close()
			msg, err := do(cmd.Context(), svc.batches, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
}

func newBatchCancelCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Stop a batch: delete its pending jobs (running ones finish)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := g.connect(true)
			if err != nil {
				return err
			}
			defer svc.Close()
			n, _, err := batch.Cancel(cmd.Context(), svc.batches, svc.store, args[0], batch.Access{GuestBucket: g.guestBucket})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "batch %s: %d pending jobs canceled\n", args[0], n)
			return nil
		},
	}
}
