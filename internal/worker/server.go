package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/jobs"
)

// ServerConfig configures a Server.
type ServerConfig struct {
	// Redis is where the queues are. Required.
	Redis asynq.RedisConnOpt
	// Handler processes the tasks. Required.
	Handler *Handler
	// Concurrency is the number of jobs run at once. Defaults to 2 × CPUs.
	Concurrency int
	// Queues maps queue names to weights. Defaults to {"default": 1}.
	Queues map[string]int
	// ShutdownTimeout is how long Stop waits for jobs in flight. Defaults to 30 s.
	ShutdownTimeout time.Duration
	// PollInterval is how long an idle worker waits before asking Redis for
	// work again. Defaults to 200 ms.
	PollInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Extra handles more task types (such as batch plans) on the same server.
	Extra map[string]asynq.Handler
}

// Server pulls tasks from Redis and runs them with a Handler.
type Server struct {
	srv  *asynq.Server
	mux  *asynq.ServeMux
	stop sync.Once
}

// NewServer returns a Server for cfg; Start begins processing.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Redis == nil || cfg.Handler == nil {
		return nil, errors.New("worker: ServerConfig needs Redis and Handler")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2 * runtime.NumCPU()
	}
	if len(cfg.Queues) == 0 {
		cfg.Queues = map[string]int{"default": 1}
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for q, w := range cfg.Queues {
		if q == "" || w <= 0 {
			return nil, fmt.Errorf("worker: queue %q weight %d: want a name and a positive weight", q, w)
		}
	}
	cfg.Handler.limitRunning(cfg.Concurrency)
	srv := asynq.NewServer(cfg.Redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   cfg.Queues,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		TaskCheckInterval:        cfg.PollInterval,
		DelayedTaskCheckInterval: time.Second,
		Logger:                   slogAdapter{cfg.Logger},
		LogLevel:                 asynq.WarnLevel,
	})
	mux := asynq.NewServeMux()
	mux.Handle(jobs.TypeImage, cfg.Handler)
	mux.Handle(jobs.TypeText, cfg.Handler)
	for typ, h := range cfg.Extra {
		mux.Handle(typ, h)
	}
	return &Server{srv: srv, mux: mux}, nil
}

// Start begins pulling tasks. It returns once the server runs.
func (s *Server) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.srv.Start(s.mux); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	return nil
}

// Stop stops fetching new tasks and waits, up to the shutdown timeout, for
// jobs in flight; unfinished ones go back to the queue. Safe to call twice.
func (s *Server) Stop() {
	s.stop.Do(s.srv.Shutdown)
}

// slogAdapter lets asynq log through slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...), "component", "asynq") }
func (a slogAdapter) Info(args ...any)  { a.l.Info(fmt.Sprint(args...), "component", "asynq") }
func (a slogAdapter) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...), "component", "asynq") }
func (a slogAdapter) Error(args ...any) { a.l.Error(fmt.Sprint(args...), "component", "asynq") }

// Fatal logs and exits, as asynq's Logger contract requires.
func (a slogAdapter) Fatal(args ...any) {
	a.l.Error(fmt.Sprint(args...), "component", "asynq", "fatal", true)
	os.Exit(1)
}

var _ asynq.Logger = slogAdapter{}
