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

// Exit codes beyond 0 (done) and 1 (could not do what was asked: bad
// input, Redis or S3 unreachable). `run` passes on the guest's own.
const (
	exitFailed  = 2 // the job failed for good (archived), or a batch has failed items
	exitTimeout = 3 // --wait ran out before the job or batch ended
	exitNotDone = 4 // `job result` of a job that has not ended yet
)

// exitError carries a specific exit code out of a subcommand, and the
// message to print (none when err is nil).
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit code %d", e.code)
}

func (e exitError) Unwrap() error { return e.err }

func main() {
	ctx, cancel := signalContext()
	defer cancel()
	err := newRootCmd().ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "wasmjobs:", ee.err)
		}
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
