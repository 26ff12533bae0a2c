package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"github.com/wasmjobs/wasmjobs/web"
)

func newWebCmd(g *globalFlags) *cobra.Command {
	var (
		addr     string
		readOnly bool
		insecure bool
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
Without a token it only listens on loopback, unless --insecure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			svc, err := g.connect(true)
			if err != nil {
				return err
			}
			defer svc.client.Close()
			srv, err := web.New(web.Config{
				Addr: addr, Redis: svc.redis, Client: svc.client, Store: svc.store,
				Token: os.Getenv("WASMJOBS_TOKEN"), Insecure: insecure, ReadOnly: readOnly, Logger: slog.Default(),
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
	f.StringVar(&addr, "addr", envOr("WASMJOBS_WEB_ADDR", "127.0.0.1:8080"), "listen address [$WASMJOBS_WEB_ADDR]")
	f.BoolVar(&readOnly, "read-only", false, "no writes: the API's POSTs and the dashboard's actions are refused")
	f.BoolVar(&insecure, "insecure", false, "allow serving without $WASMJOBS_TOKEN beyond loopback")
	return cmd
}
