package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/httpguard"
	"github.com/wasmjobs/wasmjobs/internal/queue"
)

//go:embed templates static
var assets embed.FS

// Config configures a Server.
type Config struct {
	// Addr is the listen address. Defaults to "127.0.0.1:8080".
	Addr string
	// Redis is where the queues are. Required.
	Redis asynq.RedisConnOpt
	// Store is used for presigned links and the readiness check. Required.
	Store *blob.Store
	// PrometheusURL is a Prometheus server scraping the workers' and this
	// server's /metrics (http://prometheus:9090): asynqmon's Metrics tab
	// charts queue sizes, latency and throughput from it. Empty leaves
	// the tab off.
	PrometheusURL string
	// Token protects every route but /healthz (and /readyz answers
	// without it with its status code only). Empty means no auth, which is
	// allowed only on loopback unless Insecure is set.
	Token string
	// Insecure allows serving without a token on any address.
	Insecure bool
	// ReadOnly disables every write: the API's POSTs and asynqmon's actions.
	ReadOnly bool
	// AllowedHosts are the host names, beyond Addr's and (on a loopback or
	// wildcard bind) localhost, that browsers use to reach the server, such
	// as the public name behind a reverse proxy. See httpguard.Config.
	AllowedHosts []string
	// Timeouts bound slow and idle clients; zero fields take the defaults.
	Timeouts httpguard.Timeouts
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Server is the wasmjobs web server.
type Server struct {
	cfg     Config
	auth    *auth
	handler http.Handler
	mon     *asynqmon.HTTPHandler
	insp    *asynq.Inspector
	// queue enqueues jobs; batches starts and reads batches. Both share
	// one Redis connection, closed by Stop.
	queue   *queue.Client
	batches *batch.Client

	srv      *http.Server
	stopOnce sync.Once
}

// New builds the server and its routes; Start listens.
func New(cfg Config) (*Server, error) {
	if cfg.Redis == nil || cfg.Store == nil {
		return nil, errors.New("web: Config needs Redis and Store")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := httpguard.CheckBind(cfg.Addr, cfg.Token, cfg.Insecure); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	rc, ok := cfg.Redis.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("web: unsupported Redis connection option %T", cfg.Redis)
	}
	q := queue.NewClient(rc)
	s := &Server{cfg: cfg, auth: newAuth(cfg.Token), insp: q.Inspector(), queue: q, batches: batch.New(q)}
	s.mon = asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: cfg.Redis, ReadOnly: cfg.ReadOnly, PrometheusAddress: cfg.PrometheusURL})

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		metrics.NewQueueMetricsCollector(s.insp), newBatchCollector(s.batches))

	static, _ := fs.Sub(assets, "static")
	mux := http.NewServeMux()
	protected := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// A readiness probe carries no token: without one /readyz answers with
	// its status code and nothing else; the checks' details need the token.
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /login", s.auth.login)
	mux.HandleFunc("POST /login", s.auth.login)
	mux.HandleFunc("POST /logout", s.auth.logout)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.Handle("/", s.auth.require(protected))

	protected.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	protected.Handle("/monitoring/", s.mon)
	protected.Handle("/monitoring", http.RedirectHandler("/monitoring/", http.StatusMovedPermanently))
	s.apiRoutes(protected)
	s.pageRoutes(protected)
	s.handler = securityHeaders(httpguard.Wrap(httpguard.Config{Addr: cfg.Addr, AllowedHosts: cfg.AllowedHosts, Token: cfg.Token}, mux))
	return s, nil
}

// Handler returns the server's root handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens and serves in the background.
func (s *Server) Start(ctx context.Context) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	s.srv = httpguard.NewServer(s.handler, s.cfg.Timeouts)
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logger.Error("web server stopped", "err", err)
		}
	}()
	s.cfg.Logger.Info("web server listening", "addr", ln.Addr().String(), "auth", s.auth != nil, "read_only", s.cfg.ReadOnly)
	return nil
}

// Stop shuts the server down gracefully; safe to call twice.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.srv.Shutdown(ctx)
		}
		_ = s.mon.Close()
		_ = s.queue.Redis().Close()
	})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{"redis": "ok", "s3": "ok"}
	code := http.StatusOK
	if err := s.queue.Redis().Ping(ctx).Err(); err != nil {
		checks["redis"], code = err.Error(), http.StatusServiceUnavailable
	}
	if err := s.cfg.Store.Ping(ctx); err != nil {
		checks["s3"], code = err.Error(), http.StatusServiceUnavailable
	}
	if s.auth != nil && !s.auth.allowed(r) {
		status := map[int]string{http.StatusOK: "ready", http.StatusServiceUnavailable: "not ready"}[code]
		writeJSON(w, code, map[string]string{"status": status})
		return
	}
	writeJSON(w, code, checks)
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// writeError writes the JSON error body all wasmjobs endpoints share.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	httpguard.WriteError(w, status, code, msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
