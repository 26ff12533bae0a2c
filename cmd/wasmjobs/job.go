package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmjobs/wasmjobs/jobs"
)

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

func newJobCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Read or control one job by its queue and id",
		Long: `job reads one job's state or result later, or controls it: the queue and id are what
enqueue printed (or a batch's manifest names as task_id). Exit codes: 0 done; 1 the
job is unknown or Redis is unreachable; 2 the job failed (result); 4 it has not
ended yet (result).`,
	}
	cmd.AddCommand(
		newJobStatusCmd(g),
		jobActionCmd(g, "log QUEUE ID", "Print what a completed job's guest wrote to stderr (its last 2 KiB; a failure's is in its reason)",
			func(ctx context.Context, c *jobs.Client, cmd *cobra.Command, q, id string) error {
				st, err := c.State(ctx, q, id)
				if err != nil {
					return err
				}
				if st.State != "completed" {
					return exitError{code: exitNotDone, err: fmt.Errorf("job %s/%s is %s: a log is kept when a job completes (job status shows a failure's reason)", q, id, st.State)}
				}
				if st.Log != "" {
					fmt.Fprintln(cmd.OutOrStdout(), st.Log)
				}
				return nil
			}),
		jobActionCmd(g, "result QUEUE ID", "Print a completed job's result (the guest's output, or the JSON summary naming its output object)",
			func(ctx context.Context, c *jobs.Client, cmd *cobra.Command, q, id string) error {
				res, err := c.Result(ctx, q, id)
				switch {
				case errors.Is(err, jobs.ErrJobFailed):
					return exitError{code: exitFailed, err: err}
				case errors.Is(err, jobs.ErrNotDone):
					return exitError{code: exitNotDone, err: err}
				case err != nil:
					return err
				}
				_, err = cmd.OutOrStdout().Write(res)
				return err
			}),
		jobActionCmd(g, "cancel QUEUE ID", "Stop a job for good: a waiting one at once, a running one through its worker; it stays readable, archived",
			func(ctx context.Context, c *jobs.Client, cmd *cobra.Command, q, id string) error {
				if err := c.Cancel(ctx, q, id); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "job %s/%s canceled\n", q, id)
				return nil
			}),
		jobActionCmd(g, "retry QUEUE ID", "Run a failed, canceled, retrying or scheduled job now",
			func(ctx context.Context, c *jobs.Client, cmd *cobra.Command, q, id string) error {
				if err := c.Retry(ctx, q, id); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "job %s/%s queued to run now\n", q, id)
				return nil
			}),
		jobActionCmd(g, "rm QUEUE ID", "Delete a job that is not running, and its result",
			func(ctx context.Context, c *jobs.Client, cmd *cobra.Command, q, id string) error {
				if err := c.Remove(ctx, q, id); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "job %s/%s removed\n", q, id)
				return nil
			}),
	)
	return cmd
}

// jobActionCmd is a job subcommand taking QUEUE ID that runs do with a
// client.
func jobActionCmd(g *globalFlags, use, short string, do func(ctx context.Context, c *jobs.Client, cmd *cobra.Command, queue, id string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.jobsClient()
			if err != nil {
				return err
			}
			defer c.Close()
			return do(cmd.Context(), c, cmd, args[0], args[1])
		},
	}
}

func newJobStatusCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := jobActionCmd(g, "status QUEUE ID", "Print a job's state, attempts and last failure",
		func(ctx context.Context, c *jobs.Client, cmd *cobra.Command, q, id string) error {
			st, err := c.State(ctx, q, id)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, st)
			}
			fmt.Fprintf(out, "job %s/%s (%s): %s, %d of %d retries used", st.Queue, st.ID, st.Type, st.State, st.Retried, st.MaxRetry)
			if !st.CompletedAt.IsZero() {
				fmt.Fprintf(out, ", completed %s (result %d bytes)", st.CompletedAt.UTC().Format(time.RFC3339), st.ResultBytes)
			}
			if st.LastError != "" {
				fmt.Fprintf(out, "\nlast failure (%s): %s", st.LastFailedAt.UTC().Format(time.RFC3339), st.LastError)
			}
			if st.Log != "" {
				fmt.Fprintf(out, "\nlog (the guest's stderr, last 2 KiB):\n%s", st.Log)
			}
			fmt.Fprintln(out)
			return nil
		})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the state as JSON")
	return cmd
}

// jobsClient connects a jobs.Client to the configured Redis.
func (g *globalFlags) jobsClient() (*jobs.Client, error) {
	ropt, err := g.redisOpt()
	if err != nil {
		return nil, err
	}
	return jobs.NewClient(ropt)
}
