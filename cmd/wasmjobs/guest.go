package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/queue"
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
		noCheck bool
		fleet   nnFlags
	)
	push := &cobra.Command{
		Use:   "push (FILE.wasm --name NAME | --builtin)",
		Short: "Validate a guest and register it under a name in the guest bucket",
		Long: `push checks that FILE.wasm is a WASI command module that imports only what the
sandbox provides, then stores it in the guest bucket under NAME and under its sha256
digest. Workers pick up a new version of a name within a few seconds.
With --builtin it registers the guests shipped inside this binary (hello, wordcount,
ocr, langid) under their names.

A guest that declares the models it loads (its custom section wasmjobs:models, written
by the guest crate's models! macro) is refused when the workers lack one of them: the
models the workers register are read from --models-config, --model and --nn-preload
when given (the workers' own configuration), and otherwise from the workers running
now, which announce theirs in Redis.`,
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
			check := &modelCheck{g: g, flags: &fleet, skip: noCheck, warn: cmd.ErrOrStderr()}
			defer check.close()
			names := slices.Sorted(maps.Keys(toPush))
			// Every guest is checked before any is registered.
			for _, n := range names {
				mod, err := rt.Compile(ctx, toPush[n], "")
				if err != nil {
					return fmt.Errorf("guest %s rejected: %w", n, err)
				}
				if err := check.guest(ctx, n, mod.Models); err != nil {
					return err
				}
			}
			for _, n := range names {
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
	push.Flags().BoolVar(&noCheck, "no-model-check", false, "register a guest even when the workers lack models it declares")
	fleet.registerModels(push.Flags())
	cmd.AddCommand(push, newGuestListCmd(g), newGuestRmCmd(g))
	return cmd
}

// modelCheck checks guests' declared models against the workers' models:
// those the model flags register when any is given, or else those the
// running workers announce (queue.LiveWorkers), read once.
type modelCheck struct {
	g     *globalFlags
	flags *nnFlags
	skip  bool
	warn  io.Writer

	rdb     redis.UniversalClient
	have    map[string]bool // from the flags; nil when none is given
	workers []queue.WorkerInfo
	read    bool
}

func (c *modelCheck) close() {
	if c.rdb != nil {
		_ = c.rdb.Close()
	}
}

// guest returns an error naming the models of needs that the workers lack.
func (c *modelCheck) guest(ctx context.Context, name string, needs []string) error {
	if len(needs) == 0 {
		return nil
	}
	if c.skip {
		fmt.Fprintf(c.warn, "guest %s needs models %s: not checked (--no-model-check)\n", name, strings.Join(needs, ", "))
		return nil
	}
	if err := c.load(ctx); err != nil {
		return err
	}
	if c.have != nil {
		missing := slices.DeleteFunc(slices.Clone(needs), func(m string) bool { return c.have[m] })
		if len(missing) > 0 {
			return fmt.Errorf("guest %s needs models the workers' configuration does not register: %s (it registers: %s); register them with --model or --models-config, or push with --no-model-check",
				name, strings.Join(missing, ", "), strings.Join(slices.Sorted(maps.Keys(c.have)), ", "))
		}
		return nil
	}
	if len(c.workers) == 0 {
		return fmt.Errorf("guest %s needs models %s, and no worker is running to check them against: start the workers first, give their models (--models-config FILE, --model NAME=PATH), or push with --no-model-check",
			name, strings.Join(needs, ", "))
	}
	var nowhere []string
	for _, m := range needs {
		var lacking []string
		for _, w := range c.workers {
			if !slices.Contains(w.Models, m) {
				lacking = append(lacking, w.ID)
			}
		}
		switch len(lacking) {
		case 0:
		case len(c.workers):
			nowhere = append(nowhere, m)
		default:
			fmt.Fprintf(c.warn, "guest %s: model %s is missing on %d of %d workers (%s); its jobs fail there\n",
				name, m, len(lacking), len(c.workers), strings.Join(lacking, ", "))
		}
	}
	if len(nowhere) > 0 {
		return fmt.Errorf("guest %s needs models none of the %d running workers has: %s; register them on the workers (--model, --models-config) or push with --no-model-check",
			name, len(c.workers), strings.Join(nowhere, ", "))
	}
	return nil
}

// load reads the models to check against, once.
func (c *modelCheck) load(ctx context.Context) error {
	if c.read {
		return nil
	}
	c.read = true
	if len(c.flags.models) > 0 || len(c.flags.preload) > 0 || c.flags.modelsConfig != "" {
		m, err := c.flags.modelMap()
		if err != nil {
			return err
		}
		c.have = map[string]bool{}
		for n := range m {
			c.have[n] = true
		}
		return nil
	}
	ropt, err := c.g.redisOpt()
	if err != nil {
		return err
	}
	rdb, ok := ropt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return fmt.Errorf("unsupported Redis connection option %T", ropt)
	}
	c.rdb = rdb
	if c.workers, err = queue.LiveWorkers(ctx, rdb); err != nil {
		return fmt.Errorf("check the models guests need: %w", err)
	}
	return nil
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
				models := ""
				if len(gi.Models) > 0 {
					models = "  models " + strings.Join(gi.Models, ",")
				}
				fmt.Fprintf(out, "%-20s %s %9d bytes  %s%s\n", gi.Name, gi.Digest, gi.Bytes, gi.Modified.UTC().Format(time.RFC3339), models)
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
