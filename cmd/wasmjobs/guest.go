package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/wasmjobs/wasmjobs/worker"
	"github.com/wasmjobs/wasmjobs/worker/sandbox"
)

func newGuestCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "guest",
		Short: "Manage registered guests",
	}
	var name string
	push := &cobra.Command{
		Use:   "push FILE.wasm --name NAME",
		Short: "Validate a guest and register it under a name in the guest bucket",
		Long: `push checks that FILE.wasm is a WASI command module that imports only what the
sandbox provides, then stores it in the guest bucket under NAME and under its sha256
digest. Workers pick up a new version of a name within a few seconds.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			wasm, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			store, err := g.store()
			if err != nil {
				return err
			}
			rt, err := sandbox.New(ctx, sandbox.Config{})
			if err != nil {
				return err
			}
			defer rt.Close(context.Background())
			if err := store.EnsureBucket(ctx, g.guestBucket); err != nil {
				return err
			}
			digest, err := worker.NewRegistry(store, g.guestBucket, rt, 0).Push(ctx, name, wasm)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pushed %s %s (%d bytes) to s3://%s\n", name, digest, len(wasm), g.guestBucket)
			return nil
		},
	}
	push.Flags().StringVar(&name, "name", "", "guest name (required)")
	_ = push.MarkFlagRequired("name")
	cmd.AddCommand(push)
	return cmd
}
