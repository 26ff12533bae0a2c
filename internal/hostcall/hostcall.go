// Package hostcall holds what every host function the sandbox offers
// guests shares: how a call ends the guest once the job's context is done.
package hostcall

import (
	"context"
	"errors"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// ExitIfDone ends the guest calling a host function when ctx is done: it
// closes mod with the exit code wazero gives a closed context
// (sys.ExitCodeDeadlineExceeded, sys.ExitCodeContextCanceled) and panics
// with that exit, which ends the guest's call. A host call cut short by the
// deadline is the deadline's doing: the guest must not run on past it, or
// exit with a code of its own.
func ExitIfDone(ctx context.Context, mod api.Module) {
	var code uint32
	switch err := ctx.Err(); {
	case err == nil:
		return
	case errors.Is(err, context.DeadlineExceeded):
		code = sys.ExitCodeDeadlineExceeded
	default:
		code = sys.ExitCodeContextCanceled
	}
	_ = mod.CloseWithExitCode(context.WithoutCancel(ctx), code)
	panic(sys.NewExitError(code))
}
