package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
)

func newGuestCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "guest",
		Short: "Manage registered guests",
	}
	var (
		name    string
		builtin bool
	)
	push := &cobra.Command{
		Use:   "push (FILE.wasm --name NAME | --builtin)",
		Short: "Validate a guest and register it under a name in the guest bucket",
		Long: `push checks that FILE.wasm is a WASI command module that imports only what the
sandbox provides, then stores it in the guest bucket under NAME and under its sha256
digest. Workers pick up a new version of a name within a few seconds.
With --builtin it registers the guests shipped inside this binary (hello, wordcount,
ocr, langid) under their names.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if builtin {
				return cobra.NoArgs(cmd, args)
			}
			if name == "" {
				return fmt.Errorf("--name is required with a file")
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			toPush := map[string][]byte{}
			if builtin {
				toPush = guests.Builtin()
			} else {
				wasm, err := os.ReadFile(args[0])
				if err != nil {
					return err
				}
				toPush[name] = wasm
			}
			store, err := g.store()
			if err != nil {
				return err
			}
			// Validate against the imports a worker provides, WASI-NN included
			// (no models are needed to check imports).
			nnMod, err := nn.New(nn.Config{})
			if err != nil {
				return err
			}
			defer nnMod.Close()
			rt, err := sandbox.New(ctx, sandbox.Config{HostModules: []sandbox.HostModule{nnMod}})
			if err != nil {
				return err
			}
			defer rt.Close(context.Background())
			if err := store.EnsureBucket(ctx, g.guestBucket); err != nil {
				return err
			}
			reg := guests.NewRegistry(store, g.guestBucket, rt, 0)
			for _, n := range slices.Sorted(maps.Keys(toPush)) {
				digest, err := reg.Push(ctx, n, toPush[n])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "pushed %s %s (%d bytes) to s3://%s\n", n, digest, len(toPush[n]), g.guestBucket)
			}
			return nil
		},
	}
	push.Flags().StringVar(&name, "name", "", "guest name (required with a file)")
	push.Flags().BoolVar(&builtin, "builtin", false, "register the guests shipped in this binary")
	cmd.AddCommand(push, newGuestListCmd(g), newGuestRmCmd(g))
	return cmd
}

func newGuestListCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the registered guest names with their digests",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := g.store()
			if err != nil {
				return err
			}
			all, err := guests.List(cmd.Context(), store, g.guestBucket)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if all == nil {
					all = []guests.Info{}
				}
				return printJSON(out, all)
			}
			for _, gi := range all {
				fmt.Fprintf(out, "%-20s %s %9d bytes  %s\n", gi.Name, gi.Digest, gi.Bytes, gi.Modified.UTC().Format(time.RFC3339))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the guests as a JSON array")
	return cmd
}

func newGuestRmCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Unregister a guest name (its module stays stored by digest for jobs that name the digest)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := g.store()
			if err != nil {
				return err
			}
			if err := guests.Remove(cmd.Context(), store, g.guestBucket, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "guest %s removed from s3://%s\n", args[0], g.guestBucket)
			return nil
		},
	}
}
