package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/jobs"
)

func newEnqueueCmd(g *globalFlags) *cobra.Command {
	var (
		p         jobs.Payload
		params    []string
		dataFile  string
		queue     string
		maxRetry  int
		timeout   time.Duration
		unique    time.Duration
		processIn time.Duration
		retention time.Duration
		taskID    string
		wait      time.Duration
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "enqueue (image|text)",
		Short: "Enqueue one job",
		Long: `enqueue puts one job on a queue. Give the input as an S3 object (--input s3://bucket/key)
or inline (--data-file FILE, "-" for stdin; at most 64 KiB). With --wait it waits for
the job and prints its result: the guest's output for an inline job without --output,
otherwise a JSON summary naming the output object.`,
		Example: `  wasmjobs enqueue text --guest wordcount --input s3://data/books/alice.txt
  echo -n NodeJS | wasmjobs enqueue text --guest hello --data-file - --wait 10s`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"image", "text"},
		RunE: func(cmd *cobra.Command, args []string) error {
			taskType, ok := taskTypeOf(args[0])
			if !ok {
				return fmt.Errorf("job kind %q: want image or text", args[0])
			}
			var err error
			if p.Params, err = parseParams(params); err != nil {
				return err
			}
			if dataFile != "" {
				if p.Data, err = readInline(cmd.InOrStdin(), dataFile); err != nil {
					return err
				}
			}
			opts := []jobs.Option{jobs.Queue(queue)}
			if cmd.Flags().Changed("max-retry") {
				opts = append(opts, jobs.MaxRetry(maxRetry))
			}
			if timeout > 0 {
				opts = append(opts, jobs.Timeout(timeout))
			}
			if unique > 0 {
				opts = append(opts, jobs.Unique(unique))
			}
			if processIn > 0 {
				opts = append(opts, jobs.ProcessIn(processIn))
			}
			if retention > 0 {
				opts = append(opts, jobs.Retention(retention))
			} else if wait > 0 {
				opts = append(opts, jobs.Retention(time.Hour))
			}
			if taskID != "" {
				opts = append(opts, jobs.TaskID(taskID))
			}
			// Validate before connecting, so bad input never waits on Redis.
			if _, _, err := jobs.NewTask(taskType, p, opts...); err != nil {
				return err
			}
			ropt, err := g.redisOpt()
			if err != nil {
				return err
			}
			c, err := jobs.NewClient(ropt)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			info, err := c.Enqueue(ctx, taskType, p, opts...)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case asJSON && wait <= 0:
				return printJSON(out, map[string]string{"id": info.ID, "queue": info.Queue, "state": info.State.String(), "type": info.Type})
			case wait <= 0:
				fmt.Fprintf(out, "enqueued %s id=%s queue=%s state=%s\n", info.Type, info.ID, info.Queue, info.State)
				return nil
			}
			wctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			res, err := c.Wait(wctx, info.Queue, info.ID)
			switch {
			case errors.Is(err, jobs.ErrJobFailed):
				return exitError{code: exitFailed, err: err}
			case err != nil && wctx.Err() != nil && ctx.Err() == nil:
				return exitError{code: exitTimeout, err: fmt.Errorf("job %s/%s not done within --wait %s (it keeps running; read it later with `wasmjobs job status %s %s`)", info.Queue, info.ID, wait, info.Queue, info.ID)}
			case err != nil:
				return err
			}
			if asJSON {
				return printJSON(out, map[string]any{"id": info.ID, "queue": info.Queue, "state": "completed", "type": info.Type, "result": resultValue(res)})
			}
			_, err = out.Write(res)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.Guest, "guest", "", "guest name or sha256:<hex> digest (required)")
	f.StringVar(&p.Input, "input", "", "input object s3://bucket/key")
	f.StringVar(&dataFile, "data-file", "", "inline input read from FILE (\"-\" for stdin), at most 64 KiB")
	f.StringVar(&p.Output, "output", "", "output object s3://bucket/key (default: the worker's output prefix, or the task result for inline input)")
	f.StringArrayVar(&params, "param", nil, "guest parameter key=value (repeatable)")
	f.StringVar(&p.Batch, "batch", "", "batch id to attribute the job to")
	f.StringVar(&queue, "queue", "default", "queue name")
	f.IntVar(&maxRetry, "max-retry", 25, "retries of transient failures")
	f.DurationVar(&timeout, "timeout", 0, "timeout of one attempt (default: asynq's 30 min)")
	f.DurationVar(&unique, "unique", 0, "reject duplicates of this job for this long")
	f.DurationVar(&processIn, "process-in", 0, "run the job after this delay")
	f.DurationVar(&retention, "retention", 0, "keep the completed job and its result this long")
	f.StringVar(&taskID, "task-id", "", "job id (default: a random UUID)")
	f.DurationVar(&wait, "wait", 0, "wait up to this long for the job and print its result (exit 2 if it failed, 3 if it was not done in time)")
	f.BoolVar(&asJSON, "json", false, "print the job (and with --wait its result) as JSON")
	_ = cmd.MarkFlagRequired("guest")
	return cmd
}

func readInline(stdin io.Reader, name string) ([]byte, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, jobs.MaxInlineBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > jobs.MaxInlineBytes {
		return nil, errors.New("inline input is over 64 KiB: upload it to S3 and pass --input s3://…")
	}
	return b, nil
}

// resultValue is a result for a JSON document: itself when it is JSON,
// else a string when it is UTF-8, else its bytes (base64).
func resultValue(res []byte) any {
	if json.Valid(res) {
		return json.RawMessage(res)
	}
	if utf8.Valid(res) {
		return string(res)
	}
	return res
}

// taskTypeOf maps a job kind to its task type (the function's own queue
// flag shadows the package in newEnqueueCmd).
func taskTypeOf(kind string) (string, bool) { return queue.TaskType(kind) }
