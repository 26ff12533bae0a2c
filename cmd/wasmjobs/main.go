// Command wasmjobs runs image and text jobs through sandboxed WebAssembly
// guests at queue scale: producers enqueue into Redis (asynq's format),
// workers run guests on wazero and read and write S3.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// exitError carries a specific exit code out of a subcommand.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit code %d", e.code) }

func main() {
	ctx, cancel := signalContext()
	defer cancel()
	err := newRootCmd().ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, "wasmjobs:", err)
		os.Exit(1)
	}
}

// signalContext is canceled on the first SIGINT or SIGTERM, so components
// drain gracefully; a second signal exits at once.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		fmt.Fprintln(os.Stderr, "wasmjobs: stopping (signal again to force)")
		cancel()
		<-ch
		fmt.Fprintln(os.Stderr, "wasmjobs: forced exit")
		os.Exit(130)
	}()
	return ctx, cancel
}
