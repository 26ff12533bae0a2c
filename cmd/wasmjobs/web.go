package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/wasmjobs/wasmjobs/internal/web"
)

func newWebCmd(g *globalFlags) *cobra.Command {
	var (
		addr     string
		readOnly bool
		insecure bool
		hosts    []string
		promURL  string
	)
	cmd := &cobra.Command{
		Use:   "web",
		Short: "Serve the dashboard, batch pages, HTTP API, metrics and health checks",
		Long: `web serves, behind $WASMJOBS_TOKEN when it is set:
  /monitoring/   the asynq dashboard (asynqmon)
  /              batches with live progress, failures, manifest and output links
  /api/v1        POST jobs and batches, GET batches and tasks
  /metrics       Prometheus: queue sizes and batch progress
  /healthz       process up (never needs the token), /readyz Redis and S3 reachable
Without a token it only listens on loopback, unless --insecure.

Browsers must reach it under a name it knows (DNS rebinding protection): the
--addr host, localhost on a loopback or wildcard bind, any IP address, and the
names in --allowed-hosts (e.g. the public name a reverse proxy forwards with
its Host header). With a token and no --allowed-hosts any name is accepted.
Writes from browsers are accepted only from its own pages (same origin).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			svc, err := g.connect(true)
			if err != nil {
				return err
			}
			defer svc.Close()
			srv, err := web.New(web.Config{
				Addr: addr, Redis: svc.redis, Store: svc.store,
				Token: os.Getenv("WASMJOBS_TOKEN"), Insecure: insecure, ReadOnly: readOnly, AllowedHosts: hosts, PrometheusURL: promURL, Logger: slog.Default(),
			})
			if err != nil {
				return err
			}
			if err := srv.Start(ctx); err != nil {
				return err
			}
			<-ctx.Done()
			srv.Stop()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "listen address")
	f.BoolVar(&readOnly, "read-only", false, "no writes: the API's POSTs and the dashboard's actions are refused")
	f.BoolVar(&insecure, "insecure", false, "allow serving without $WASMJOBS_TOKEN beyond loopback")
	f.StringSliceVar(&hosts, "allowed-hosts", nil, "further host names browsers use to reach it, e.g. behind a reverse proxy; * allows any (comma-separated in the variable)")
	f.StringVar(&promURL, "prometheus-url", "", "a Prometheus server scraping the /metrics endpoints (http://prometheus:9090): turns on the dashboard's Metrics tab")
	setEnv(f, "addr=WASMJOBS_WEB_ADDR", "read-only", "insecure", "allowed-hosts", "prometheus-url")
	return cmd
}
