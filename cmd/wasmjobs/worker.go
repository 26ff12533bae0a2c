package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/httpguard"
	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
	"github.com/wasmjobs/wasmjobs/internal/worker"
)

// runFlags are the limits of guest runs, shared by worker, run and dev.
type runFlags struct {
	memoryMiB    uint32
	guestTimeout time.Duration
	maxInput     int64
	maxOutput    int
	nn           nnFlags
	// Set by registerWorker only; dev runs with the defaults.
	maxResult   int
	inputAllow  []string
	outputAllow []string
}

func (r *runFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.Uint32Var(&r.memoryMiB, "memory-limit", 256, "guest linear memory limit in MiB")
	f.DurationVar(&r.guestTimeout, "guest-timeout", 60*time.Second, "deadline of one guest run")
	f.Int64Var(&r.maxInput, "max-input", 64<<20, "largest input object in bytes")
	f.IntVar(&r.maxOutput, "max-output", 64<<20, "largest guest output in bytes")
	setEnv(f, "memory-limit", "guest-timeout", "max-input", "max-output")
	r.nn.register(cmd)
}

// registerWorker adds the flags that limit what producers' jobs may do.
func (r *runFlags) registerWorker(cmd *cobra.Command) {
	f := cmd.Flags()
	f.IntVar(&r.maxResult, "max-result", 1<<20, "largest result kept in Redis (inline jobs without an output), in bytes")
	f.StringSliceVar(&r.inputAllow, "input-allow", nil, "bucket or bucket/prefix jobs may read; repeatable; none means any bucket but the guest bucket (comma-separated in the variable)")
	f.StringSliceVar(&r.outputAllow, "output-allow", nil, "bucket or bucket/prefix jobs may write; repeatable; none means any bucket but the guest bucket (comma-separated in the variable)")
	setEnv(f, "max-result", "input-allow", "output-allow")
}

// access parses the allow-lists; the guest bucket is never an output.
func (r *runFlags) access(guestBucket string) (s3url.Access, error) {
	in, err := s3url.ParseAccessList(r.inputAllow)
	if err != nil {
		return s3url.Access{}, fmt.Errorf("--input-allow: %w", err)
	}
	out, err := s3url.ParseAccessList(r.outputAllow)
	if err != nil {
		return s3url.Access{}, fmt.Errorf("--output-allow: %w", err)
	}
	for _, o := range out {
		if o.Bucket == guestBucket {
			return s3url.Access{}, fmt.Errorf("--output-allow %s: jobs never write the guest bucket", o)
		}
	}
	return s3url.Access{Inputs: in, Outputs: out}, nil
}

// sandboxConfig returns the sandbox's configuration with the WASI-NN host
// module; the caller closes the module after the runtime.
func (r *runFlags) sandboxConfig(cacheDir string) (sandbox.Config, *nn.Module, error) {
	scfg, err := r.sandboxLimits(cacheDir)
	if err != nil {
		return sandbox.Config{}, nil, err
	}
	mod, err := r.nn.module()
	if err != nil {
		return sandbox.Config{}, nil, err
	}
	scfg.HostModules = []sandbox.HostModule{mod}
	return scfg, mod, nil
}

// sandboxLimits returns the sandbox's configuration without host modules.
func (r *runFlags) sandboxLimits(cacheDir string) (sandbox.Config, error) {
	if r.memoryMiB == 0 || r.memoryMiB > 4096 {
		return sandbox.Config{}, fmt.Errorf("--memory-limit %d: want 1 to 4096 MiB", r.memoryMiB)
	}
	return sandbox.Config{CacheDir: cacheDir, MemoryLimitPages: r.memoryMiB * 16}, nil
}

// workerConfig maps the flags onto a worker on svc's Redis and S3 that runs
// jobs, records batch outcomes and plans batches; the caller sets how it
// pulls (concurrency, queues, timeouts).
func (r *runFlags) workerConfig(g *globalFlags, svc *services, outputPrefix string) (worker.Config, error) {
	var prefix s3url.ObjectURL
	var err error
	if outputPrefix != "" {
		if strings.HasPrefix(outputPrefix, "s3://") {
			if prefix, err = s3url.ParsePrefixURL(outputPrefix); err != nil {
				return worker.Config{}, fmt.Errorf("--output-prefix: %w", err)
			}
		} else {
			prefix.Key = outputPrefix
		}
	}
	access, err := r.access(g.guestBucket)
	if err != nil {
		return worker.Config{}, err
	}
	scfg, err := r.sandboxLimits(g.cacheDir)
	if err != nil {
		return worker.Config{}, err
	}
	ncfg, err := r.nn.config()
	if err != nil {
		return worker.Config{}, err
	}
	guestBucket := cmp.Or(g.guestBucket, s3url.DefaultGuestBucket)
	// Batches obey the same lists as their jobs: a plan on a prefix jobs
	// may not read, or a manifest where they may not write, is refused.
	batchAccess := batch.Access{Access: access, GuestBucket: guestBucket}
	return worker.Config{
		Redis:          svc.redis,
		Store:          svc.store,
		GuestBucket:    guestBucket,
		Sandbox:        scfg,
		NN:             &ncfg,
		MaxInputBytes:  r.maxInput,
		MaxOutputBytes: r.maxOutput,
		MaxResultBytes: r.maxResult,
		Access:         access,
		GuestTimeout:   r.guestTimeout,
		OutputPrefix:   prefix,
		BatchRecorder:  &batch.Recorder{Client: svc.batches, Store: svc.store, Logger: slog.Default(), Access: batchAccess},
		BatchPlanner:   &batch.PlanHandler{Client: svc.batches, Store: svc.store, Config: batch.PlanConfig{Access: batchAccess}},
	}, nil
}

func newWorkerCmd(g *globalFlags) *cobra.Command {
	var (
		rf           runFlags
		concurrency  int
		queues       string
		shutdown     time.Duration
		poll         time.Duration
		outputPrefix string
		metricsAddr  string
		insecure     bool
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
			svc, err := g.connect(true)
			if err != nil {
				return err
			}
			defer svc.Close()
			wcfg, err := rf.workerConfig(g, svc, outputPrefix)
			if err != nil {
				return err
			}
			wcfg.Concurrency, wcfg.Queues, wcfg.ShutdownTimeout, wcfg.PollInterval = concurrency, qs, shutdown, poll
			w, err := worker.New(wcfg)
			if err != nil {
				return err
			}
			defer w.Shutdown()
			if metricsAddr != "" {
				stop, err := serveOps(ctx, metricsAddr, os.Getenv("WASMJOBS_TOKEN"), insecure, w.Metrics().Handler(), httpguard.Timeouts{})
				if err != nil {
					return err
				}
				defer stop()
			}
			if err := w.Start(ctx); err != nil {
				return err
			}
			slog.Info("worker started", "redis", redactURL(g.redisURL), "s3", g.s3.Endpoint, "queues", qs, "concurrency", concurrency, "cache_dir", g.cacheDir)
			<-ctx.Done()
			slog.Info("worker stopping: finishing jobs in flight", "timeout", shutdown)
			w.Shutdown()
			slog.Info("worker stopped")
			return nil
		},
	}
	rf.register(cmd)
	rf.registerWorker(cmd)
	f := cmd.Flags()
	f.IntVar(&concurrency, "concurrency", 0, "jobs run at once, and guests at once (default 4 × CPUs jobs, at most 2 × CPUs of them running guests)")
	f.StringVar(&queues, "queues", "default=1", "queues to pull from as name=weight,…")
	f.DurationVar(&shutdown, "shutdown-timeout", 30*time.Second, "how long a stop waits for jobs in flight")
	f.DurationVar(&poll, "poll-interval", time.Second, "how long an idle worker waits for a wake-up before it asks Redis for work anyway")
	f.StringVar(&outputPrefix, "output-prefix", "results", "default output location of S3 inputs: a key prefix in the input's bucket, or s3://bucket/prefix")
	f.StringVar(&metricsAddr, "metrics-addr", "", "serve /metrics and /healthz on this address (e.g. :9090); /metrics needs $WASMJOBS_TOKEN when set")
	f.BoolVar(&insecure, "insecure", false, "allow --metrics-addr beyond loopback without $WASMJOBS_TOKEN")
	setEnv(f, "concurrency", "queues", "shutdown-timeout", "poll-interval", "output-prefix", "metrics-addr", "insecure")
	return cmd
}

// serveOps serves a worker's /metrics (behind the token when one is set)
// and /healthz. Without a token it binds only to loopback unless insecure.
// It applies the guards every wasmjobs endpoint does (Host check,
// same-origin writes, body limit) and timeouts (zero fields take the
// defaults).
func serveOps(ctx context.Context, addr, token string, insecure bool, metrics http.Handler, timeouts httpguard.Timeouts) (stop func(), err error) {
	if err := httpguard.CheckBind(addr, token, insecure); err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.Handle("GET /metrics", httpguard.RequireToken(token, metrics))
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	srv := httpguard.NewServer(httpguard.Wrap(httpguard.Config{Addr: addr, Token: token}, mux), timeouts)
	go func() { _ = srv.Serve(ln) }()
	slog.Info("worker metrics listening", "addr", ln.Addr().String(), "auth", token != "")
	return func() { _ = srv.Close() }, nil
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
