package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/wasmjobs/wasmjobs/internal/sandbox"
)

func newRunCmd(g *globalFlags) *cobra.Command {
	var (
		rf      runFlags
		params  []string
		records bool
	)
	cmd := &cobra.Command{
		Use:   "run GUEST.wasm [ARG]... [--param k=v]... [--model name=path | --nn-preload name:ONNX:CPU:path]... < input",
		Short: "Run a guest locally on stdin, like a worker would",
		Long: `run executes a guest once in the same sandbox and limits a worker uses: stdin is
the input, --param values become argv and WASMJOBS_PARAMS, further arguments
follow them in argv (as WasmEdge passes them; "--" before any that start with a
dash), the guest's stdout is printed, its stderr passed through. The exit code is the guest's own (or 1 for a
trap, timeout or limit). Models registered with --model are what the guest's
WASI-NN load_by_name finds, as on a worker.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			ps, err := parseParams(params)
			if err != nil {
				return err
			}
			wasm, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			input, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), rf.maxInput+1))
			if err != nil {
				return fmt.Errorf("read stdin: %w", err)
			}
			if int64(len(input)) > rf.maxInput {
				return fmt.Errorf("input is over --max-input (%d bytes)", rf.maxInput)
			}
			scfg, nnMod, err := rf.sandboxConfig(g.cacheDir)
			if err != nil {
				return err
			}
			defer nnMod.Close()
			rt, err := sandbox.New(ctx, scfg)
			if err != nil {
				return err
			}
			defer rt.Close(context.Background())
			mod, err := rt.Compile(ctx, wasm, "")
			if err != nil {
				return err
			}
			if records && !mod.RecordsABI {
				return errors.New("--records: the guest does not declare the records ABI (custom section wasmjobs:abi)")
			}
			res, err := rt.Run(ctx, mod, sandbox.RunOptions{
				Records:    records,
				Stdin:      input,
				Params:     ps,
				Name:       args[0],
				Args:       args[1:],
				Timeout:    rf.guestTimeout,
				MaxOutput:  rf.maxOutput,
				StderrTail: 64 << 10,
			})
			var ge *sandbox.GuestError
			if errors.As(err, &ge) {
				if ge.Stderr != "" {
					fmt.Fprintln(cmd.ErrOrStderr(), ge.Stderr)
				}
				if errors.Is(err, sandbox.ErrExit) {
					// The reason on one line; the shell sees the low 8 bits
					// of the code, never 0 for a failure.
					ge.Stderr = ""
					fmt.Fprintln(cmd.ErrOrStderr(), "wasmjobs:", ge)
					code := int(ge.ExitCode & 0xff)
					if code == 0 {
						code = 1
					}
					return exitError{code: code}
				}
				ge.Stderr = ""
				return ge
			}
			if err != nil {
				return err
			}
			if res.Stderr != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), res.Stderr)
			}
			_, err = cmd.OutOrStdout().Write(res.Stdout)
			return err
		},
	}
	rf.register(cmd)
	cmd.Flags().StringArrayVar(&params, "param", nil, "guest parameter key=value (repeatable)")
	cmd.Flags().BoolVar(&records, "records", false, "run the guest in the records ABI, as on a shard of a record batch: stdin one JSON value per line, stdout one JSON line per record")
	return cmd
}
