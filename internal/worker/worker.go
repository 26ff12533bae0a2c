package worker

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
)

// Config configures a Worker. Only Redis and Store are required; every
// other field has a zero-value default, named in its doc.
type Config struct {
	// Redis is where the queues are. Required.
	Redis asynq.RedisConnOpt
	// Store reads inputs, writes outputs and holds the registered guests.
	// Required.
	Store ObjectStore
	// GuestBucket holds the registered guests. Defaults to
	// s3url.DefaultGuestBucket.
	GuestBucket string

	// Sandbox configures the runtime that runs the guests. Its HostModules
	// stay the caller's to close; the WASI-NN module built from NN is added
	// to them. The zero value takes the sandbox's defaults.
	Sandbox sandbox.Config
	// NN configures the wasi_ephemeral_nn host module the worker builds and
	// owns; its OnCompute, when set, is called after the worker's metrics
	// recorded the compute. Nil means no WASI-NN module, so that guests
	// importing it fail (as on a sandbox without it).
	NN *nn.Config

	// Concurrency is the number of jobs run at once, and of guests running
	// at once. Defaults to 4 × CPUs jobs, of which at most 2 × CPUs run
	// their guests at the same time: the others meanwhile wait on Redis and
	// S3, which is where a text job spends most of its time.
	Concurrency int
	// Queues maps queue names to weights. Defaults to {"default": 1}.
	Queues map[string]int
	// ShutdownTimeout is how long Shutdown waits for jobs in flight.
	// Defaults to 30 s.
	ShutdownTimeout time.Duration
	// PollInterval is how long an idle worker waits for a wake-up before it
	// asks Redis for work anyway. Producers of this module wake idle
	// workers as they enqueue, so this only bounds the wait of tasks that
	// come without a wake-up: from a plain asynq client, or made pending by
	// the dashboard. Defaults to 1 s.
	PollInterval time.Duration

	// ReconcileInterval is how often a started worker whose BatchRecorder
	// is also a BatchReconciler looks for batch jobs that ended without a
	// recorded outcome. Defaults to 15 s.
	ReconcileInterval time.Duration

	// MaxInputBytes caps input objects. Defaults to 64 MiB.
	MaxInputBytes int64
	// MaxOutputBytes caps a guest's stdout. Defaults to 64 MiB.
	MaxOutputBytes int
	// MaxResultBytes caps what a job writes through asynq's result writer,
	// which Redis keeps for the task's retention: an inline job's output
	// over it fails permanently, naming the S3 output option. Defaults to
	// 1 MiB.
	MaxResultBytes int
	// Access limits the objects jobs may read and write. The zero value
	// allows every bucket but the guest bucket.
	Access s3url.Access
	// GuestTimeout bounds one guest run. Defaults to 60 s. A job's asynq
	// timeout or deadline, less ResultReserve, wins when it is earlier, so
	// that a guest stopped at it is archived as a timeout, not retried.
	GuestTimeout time.Duration
	// ResultReserve is the time kept back from a job's deadline for writing
	// its result, at most a quarter of the time left. Defaults to 2 s.
	ResultReserve time.Duration
	// OutputPrefix is where outputs of S3 inputs without an explicit output
	// go: "<prefix>/<input key>.<guest>.json". An empty Bucket means the
	// input's bucket. Defaults to key prefix "results".
	OutputPrefix s3url.ObjectURL

	// BatchRecorder records the outcome of jobs that belong to a batch.
	// Nil means batch jobs run like any other.
	BatchRecorder BatchRecorder
	// BatchPlanner handles batch plan tasks (queue.TypeBatch) on the
	// worker's queues. Nil leaves them unhandled: asynq retries them until
	// a worker with a planner takes them.
	BatchPlanner BatchPlanner

	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// BatchPlanner plans dataset runs: given a queue.TypeBatch task, it lists the
// batch's input and enqueues its jobs. Planning is idempotent, so a retried
// plan resumes.
type BatchPlanner interface {
	ProcessTask(ctx context.Context, t *asynq.Task) error
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.GuestBucket == "" {
		c.GuestBucket = s3url.DefaultGuestBucket
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4 * runtime.NumCPU()
	}
	if len(c.Queues) == 0 {
		c.Queues = map[string]int{"default": 1}
	}
	if c.ReconcileInterval <= 0 {
		c.ReconcileInterval = 15 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	// The job limits' defaults are the handler's (handlerConfig.withDefaults).
	return c
}

// validate reports what is missing or out of range in a defaulted c.
func (c Config) validate() error {
	if c.Redis == nil || c.Store == nil {
		return errors.New("worker: Config needs Redis and Store")
	}
	for q, w := range c.Queues {
		if q == "" || w <= 0 {
			return fmt.Errorf("worker: queue %q weight %d: want a name and a positive weight", q, w)
		}
	}
	return nil
}

// Worker pulls wasm:image and wasm:text tasks (and, with a BatchPlanner,
// batch plans) from Redis and runs each job's guest in a fresh sandbox
// instance. It owns its sandbox runtime, its WASI-NN module, its guest
// registry and its metrics; Shutdown releases them.
//
// A Worker is also an asynq.Handler, for running one task without Redis.
type Worker struct {
	cfg     Config
	metrics *Metrics
	nn      *nn.Module // nil without Config.NN
	rt      *sandbox.Runtime
	guests  *guests.Registry
	jobs    *handler
	batches BatchRecorder
	planner BatchPlanner
	mux     *asynq.ServeMux

	mu       sync.Mutex
	srv      *asynq.Server // set by Start
	rdb      redis.UniversalClient
	wakeup   *queue.Wakeup
	shutdown bool
	done     chan struct{} // closed by Shutdown
	// reconciling is the reconcile loop, which stops when stopping closes
	// (first thing in Shutdown).
	reconciling sync.WaitGroup
	stopping    chan struct{}
}

// BatchReconciler finishes batch items whose jobs ended without the handler
// recording them (asynq archives a job killed on its final attempt without
// calling the handler), so that such batches end. batch.Recorder
// implements it; a started worker runs it every ReconcileInterval on its
// queues.
type BatchReconciler interface {
	Reconcile(ctx context.Context, queues []string) (int, error)
}

var _ asynq.Handler = (*Worker)(nil)

// New builds a Worker for cfg: its metrics, WASI-NN module, sandbox runtime
// and guest registry. Start (or Run) begins processing; Shutdown releases
// everything New made.
func New(cfg Config) (*Worker, error) {
	running := cfg.Concurrency // guests at once
	if running <= 0 {
		running = 2 * runtime.NumCPU()
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	w := &Worker{cfg: cfg, metrics: newMetrics(), batches: cfg.BatchRecorder, planner: cfg.BatchPlanner, done: make(chan struct{}), stopping: make(chan struct{})}
	scfg := cfg.Sandbox
	if cfg.NN != nil {
		ncfg := *cfg.NN
		then := ncfg.OnCompute
		ncfg.OnCompute = func(model string, d time.Duration) {
			w.metrics.observeInference(model, d)
			if then != nil {
				then(model, d)
			}
		}
		mod, err := nn.New(ncfg)
		if err != nil {
			return nil, err
		}
		w.nn = mod
		scfg.HostModules = append(slices.Clone(scfg.HostModules), mod)
	}
	rt, err := sandbox.New(context.Background(), scfg)
	if err != nil {
		w.closeRuntime()
		return nil, err
	}
	w.rt = rt
	w.metrics.watchRuntime(rt)
	w.guests = guests.NewRegistry(cfg.Store, cfg.GuestBucket, rt, 0)
	w.jobs, err = newHandler(handlerConfig{
		Store:          cfg.Store,
		Runtime:        rt,
		Guests:         w.guests,
		MaxInputBytes:  cfg.MaxInputBytes,
		MaxOutputBytes: cfg.MaxOutputBytes,
		MaxResultBytes: cfg.MaxResultBytes,
		Access:         cfg.Access,
		GuestTimeout:   cfg.GuestTimeout,
		ResultReserve:  cfg.ResultReserve,
		MaxRunning:     running,
		OutputPrefix:   cfg.OutputPrefix,
		Logger:         cfg.Logger,
		Metrics:        w.metrics,
		Batches:        cfg.BatchRecorder,
	})
	if err != nil {
		w.closeRuntime()
		return nil, err
	}
	w.mux = asynq.NewServeMux()
	w.mux.Handle(queue.TypeImage, w.jobs)
	w.mux.Handle(queue.TypeText, w.jobs)
	if w.planner != nil {
		w.mux.Handle(queue.TypeBatch, w.planner)
	}
	return w, nil
}

// Guests is the worker's guest registry, on Config.GuestBucket: guests
// pushed through it run on this worker at once.
func (w *Worker) Guests() *guests.Registry { return w.guests }

// Metrics are the worker's Prometheus metrics, for serving them.
func (w *Worker) Metrics() *Metrics { return w.metrics }

// ProcessTask runs one task as the worker would, by its type.
func (w *Worker) ProcessTask(ctx context.Context, t *asynq.Task) error {
	return w.mux.ProcessTask(ctx, t)
}

// Start begins pulling tasks from the configured queues; it returns once
// the worker runs. A Worker starts once.
func (w *Worker) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.shutdown {
		return errors.New("worker: shut down")
	}
	if w.srv != nil {
		return errors.New("worker: already started")
	}
	rdb, ok := w.cfg.Redis.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return fmt.Errorf("worker: unsupported Redis connection option %T", w.cfg.Redis)
	}
	// An idle server waits in the wake-up's hook instead of asynq's poll.
	w.wakeup = queue.NewWakeup(rdb, queue.WakeupConfig{
		Queues:   slices.Collect(maps.Keys(w.cfg.Queues)),
		Fallback: w.cfg.PollInterval,
		Logger:   w.cfg.Logger,
	})
	w.wakeup.Start(ctx)
	queue.RideOutOutages(rdb)
	w.srv = asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:              w.cfg.Concurrency,
		Queues:                   w.cfg.Queues,
		ShutdownTimeout:          w.cfg.ShutdownTimeout,
		TaskCheckInterval:        queue.TaskCheckInterval,
		DelayedTaskCheckInterval: time.Second,
		RetryDelayFunc:           retryDelay,
		Logger:                   slogAdapter{w.cfg.Logger},
		LogLevel:                 asynq.WarnLevel,
	})
	w.rdb = rdb
	w.jobs.logs = rdb
	if err := w.srv.Start(w.mux); err != nil {
		w.closeRedis()
		w.srv = nil
		return fmt.Errorf("worker: %w", err)
	}
	if rec, ok := w.batches.(BatchReconciler); ok {
		w.reconciling.Add(1)
		go w.reconcile(rec)
	}
	w.reconciling.Add(1)
	go w.announce()
	return nil
}

// announce keeps the worker's entry in the fleet (queue.FleetKey): its
// queues and models, which `wasmjobs guest push` checks a guest's declared
// models against. It withdraws the entry when the worker stops.
func (w *Worker) announce() {
	defer w.reconciling.Done()
	host, _ := os.Hostname()
	info := queue.WorkerInfo{
		ID:     fmt.Sprintf("%s:%d:%s", host, os.Getpid(), crand.Text()[:8]),
		Host:   host,
		Queues: slices.Sorted(maps.Keys(w.cfg.Queues)),
		Models: []string{},
	}
	if w.nn != nil {
		info.Models = w.nn.Models()
	}
	t := time.NewTicker(queue.FleetRenew)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := queue.Announce(ctx, w.rdb, info); err != nil {
			w.cfg.Logger.Debug("worker: fleet entry not renewed", "err", err)
		}
		cancel()
		select {
		case <-w.stopping:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = queue.Withdraw(ctx, w.rdb, info.ID)
			cancel()
			return
		case <-t.C:
		}
	}
}

// retryDelay is how long a failed job waits before its retry n (from 0).
// A job whose worker died (its lease expired) runs again at once: its
// recovery already waited out the lease and asynq's recoverer (30 s of
// lease, 30 s of allowed clock skew, then the recoverer's next run, once a
// minute). Other failures are transient by now (a guest's own errors do
// not retry): Redis or S3 away for a moment. They back off from 1 s,
// doubling, with jitter, and never longer than asynq's own backoff (n⁴ +
// 15 s and up): past the first dozen retries the two are the same, and 25
// retries still span about three weeks; but a 10 s outage costs its jobs
// seconds, not asynq's first 15 to 45 s.
func retryDelay(n int, err error, t *asynq.Task) time.Duration {
	if errors.Is(err, asynq.ErrLeaseExpired) {
		return 0
	}
	d := time.Second << min(n, 30)
	d = d/2 + rand.N(d) // 0.5 to 1.5 × d
	return min(d, asynq.DefaultRetryDelayFunc(n, err, t))
}

// reconcile runs rec on the worker's queues every ReconcileInterval until
// Shutdown.
func (w *Worker) reconcile(rec BatchReconciler) {
	defer w.reconciling.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-w.stopping
		cancel()
	}()
	queues := slices.Sorted(maps.Keys(w.cfg.Queues))
	t := time.NewTicker(w.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := rec.Reconcile(ctx, queues); err != nil && ctx.Err() == nil {
			w.cfg.Logger.Warn("worker: reconcile batches", "err", err)
		}
	}
}

// Run starts the worker and processes tasks until ctx is done (or Shutdown
// is called), then shuts down: jobs in flight get ShutdownTimeout to
// finish, and what is left goes back to the queue.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-w.done:
	}
	w.Shutdown()
	return nil
}

// Shutdown stops fetching tasks and waits, up to ShutdownTimeout, for jobs
// in flight (unfinished ones go back to the queue); then it closes the
// batch recorder and planner where they are io.Closers, the sandbox runtime
// and the WASI-NN module, in that order. Safe to call twice, and on a
// Worker never started.
func (w *Worker) Shutdown() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.shutdown {
		return
	}
	w.shutdown = true
	defer close(w.done)
	close(w.stopping)
	// Jobs still running use the batch recorder and the runtime, and
	// guests in the runtime use the WASI-NN module.
	if w.srv != nil {
		w.wakeup.StopWaiting() // or the server's shutdown waits out the wait
		w.srv.Shutdown()
		w.reconciling.Wait()
		w.closeRedis()
	}
	w.closeBatches()
	w.closeRuntime()
}

// closeRedis publishes the last notifications and closes the server's
// Redis connections.
func (w *Worker) closeRedis() {
	w.wakeup.Close()
	_ = w.rdb.Close()
}

// closeBatches closes the batch recorder and planner that are io.Closers,
// each once.
func (w *Worker) closeBatches() {
	rc, _ := w.batches.(io.Closer)
	pc, _ := w.planner.(io.Closer)
	// One value may be both (compared only when comparable, as pointers are).
	if pc != nil && rc != nil && reflect.TypeOf(pc).Comparable() && pc == rc {
		pc = nil
	}
	for _, c := range []io.Closer{rc, pc} {
		if c == nil {
			continue
		}
		if err := c.Close(); err != nil {
			w.cfg.Logger.Warn("worker: close batch handling", "err", err)
		}
	}
}

// closeRuntime closes the sandbox runtime, then the WASI-NN module its
// guests used.
func (w *Worker) closeRuntime() {
	if w.rt != nil {
		_ = w.rt.Close(context.Background())
	}
	if w.nn != nil {
		_ = w.nn.Close()
	}
}
