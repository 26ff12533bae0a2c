package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/wasmjobs/wasmjobs/blob"
	"github.com/wasmjobs/wasmjobs/jobs"
	"github.com/wasmjobs/wasmjobs/worker"
	"github.com/wasmjobs/wasmjobs/worker/nn"
	"github.com/wasmjobs/wasmjobs/worker/sandbox"
)

// runFlags are the limits of guest runs, shared by worker, run and dev.
type runFlags struct {
	memoryMiB    uint32
	guestTimeout time.Duration
	maxInput     int64
	maxOutput    int
	nn           nnFlags
}

func (r *runFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.Uint32Var(&r.memoryMiB, "memory-limit", 256, "guest linear memory limit in MiB")
	f.DurationVar(&r.guestTimeout, "guest-timeout", 60*time.Second, "deadline of one guest run")
	f.Int64Var(&r.maxInput, "max-input", 64<<20, "largest input object in bytes")
	f.IntVar(&r.maxOutput, "max-output", 64<<20, "largest guest output in bytes")
	r.nn.register(cmd)
}

// sandboxConfig returns the sandbox's configuration with the WASI-NN host
// module; the caller closes the module after the runtime.
func (r *runFlags) sandboxConfig(ctx context.Context, cacheDir string) (sandbox.Config, *nn.Module, error) {
	if r.memoryMiB == 0 || r.memoryMiB > 4096 {
		return sandbox.Config{}, nil, fmt.Errorf("--memory-limit %d: want 1 to 4096 MiB", r.memoryMiB)
	}
	mod, err := r.nn.module(ctx)
	if err != nil {
		return sandbox.Config{}, nil, err
	}
	return sandbox.Config{CacheDir: cacheDir, MemoryLimitPages: r.memoryMiB * 16, HostModules: []sandbox.HostModule{mod}}, mod, nil
}

// stack is a worker's runtime, registry and handler.
type stack struct {
	rt      *sandbox.Runtime
	nn      *nn.Module
	guests  *worker.Registry
	handler *worker.Handler
}

func newStack(ctx context.Context, g *globalFlags, r *runFlags, store *blob.Store, outputPrefix string) (*stack, error) {
	scfg, nnMod, err := r.sandboxConfig(ctx, g.cacheDir)
	if err != nil {
		return nil, err
	}
	var prefix jobs.ObjectURL
	if outputPrefix != "" {
		if strings.HasPrefix(outputPrefix, "s3://") {
			if prefix, err = jobs.ParsePrefixURL(outputPrefix); err != nil {
				return nil, fmt.Errorf("--output-prefix: %w", err)
			}
		} else {
			prefix.Key = outputPrefix
		}
	}
	rt, err := sandbox.New(ctx, scfg)
	if err != nil {
		nnMod.Close()
		return nil, err
	}
	guests := worker.NewRegistry(store, g.guestBucket, rt, 0)
	h, err := worker.NewHandler(worker.HandlerConfig{
		Store:          store,
		Runtime:        rt,
		Guests:         guests,
		MaxInputBytes:  r.maxInput,
		MaxOutputBytes: r.maxOutput,
		GuestTimeout:   r.guestTimeout,
		OutputPrefix:   prefix,
	})
	if err != nil {
		_ = rt.Close(ctx)
		nnMod.Close()
		return nil, err
	}
	return &stack{rt: rt, nn: nnMod, guests: guests, handler: h}, nil
}

// close stops the runtime, then releases the models.
func (s *stack) close() {
	_ = s.rt.Close(context.Background())
	_ = s.nn.Close()
}

func newWorkerCmd(g *globalFlags) *cobra.Command {
	var (
		rf           runFlags
		concurrency  int
		queues       string
		shutdown     time.Duration
		poll         time.Duration
		outputPrefix string
	)
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Pull jobs from Redis and run them through their guests",
		Long: `worker pulls wasm:image and wasm:text jobs from the given queues, runs each
through its guest in a fresh sandbox and writes the output to S3 (or, for inline
jobs without an output, as the task's result). SIGINT/SIGTERM stops fetching and
lets jobs in flight finish within --shutdown-timeout; a second signal exits at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			qs, err := parseQueues(queues)
			if err != nil {
				return err
			}
			ropt, err := g.redisOpt()
			if err != nil {
				return err
			}
			store, err := g.store()
			if err != nil {
				return err
			}
			st, err := newStack(ctx, g, &rf, store, outputPrefix)
			if err != nil {
				return err
			}
			defer st.close()
			srv, err := worker.NewServer(worker.ServerConfig{
				Redis:           ropt,
				Handler:         st.handler,
				Concurrency:     concurrency,
				Queues:          qs,
				ShutdownTimeout: shutdown,
				PollInterval:    poll,
			})
			if err != nil {
				return err
			}
			if err := srv.Start(ctx); err != nil {
				return err
			}
			slog.Info("worker started", "redis", redactURL(g.redisURL), "s3", g.s3.Endpoint, "queues", qs, "concurrency", concurrency, "cache_dir", g.cacheDir)
			<-ctx.Done()
			slog.Info("worker stopping: finishing jobs in flight", "timeout", shutdown)
			srv.Stop()
			slog.Info("worker stopped")
			return nil
		},
	}
	rf.register(cmd)
	f := cmd.Flags()
	f.IntVar(&concurrency, "concurrency", 0, "jobs run at once (default 2 × CPUs)")
	f.StringVar(&queues, "queues", "default=1", "queues to pull from as name=weight,…")
	f.DurationVar(&shutdown, "shutdown-timeout", 30*time.Second, "how long a stop waits for jobs in flight")
	f.DurationVar(&poll, "poll-interval", 200*time.Millisecond, "how often an idle worker asks Redis for work")
	f.StringVar(&outputPrefix, "output-prefix", "results", "default output location of S3 inputs: a key prefix in the input's bucket, or s3://bucket/prefix")
	return cmd
}

// parseQueues parses "name=weight,…"; a name without weight weighs 1.
func parseQueues(s string) (map[string]int, error) {
	qs := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		weight := 1
		if ok {
			n, err := strconv.Atoi(w)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("--queues %q: weight of %q must be a positive integer", s, name)
			}
			weight = n
		}
		if name == "" {
			return nil, fmt.Errorf("--queues %q: empty queue name", s)
		}
		qs[name] = weight
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("--queues %q: no queue given", s)
	}
	return qs, nil
}
