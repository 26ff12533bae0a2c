package sandbox

import (
	"errors"
	"fmt"
)

// Guest failure kinds. A *GuestError wraps exactly one of them; all of them
// are permanent: a guest is deterministic on its input.
var (
	// ErrInvalidModule: the bytes are not a usable WASI command module.
	ErrInvalidModule = errors.New("invalid guest module")
	// ErrImportNotAllowed: the module imports something the sandbox does not provide.
	ErrImportNotAllowed = errors.New("guest import not allowed")
	// ErrDigestMismatch: the module bytes do not hash to the expected digest.
	ErrDigestMismatch = errors.New("guest digest mismatch")
	// ErrExit: the guest exited with a non-zero code.
	ErrExit = errors.New("guest exited with an error")
	// ErrTrap: the guest trapped (panic, unreachable, out-of-bounds access).
	ErrTrap = errors.New("guest trapped")
	// ErrTimeout: the guest ran past its deadline and was stopped.
	ErrTimeout = errors.New("guest ran past its deadline")
	// ErrMemoryLimit: the guest needed more memory than its limit.
	ErrMemoryLimit = errors.New("guest exceeded its memory limit")
	// ErrOutputTooLarge: the guest wrote more to stdout than allowed.
	ErrOutputTooLarge = errors.New("guest output exceeds its limit")
)

// GuestError reports how a guest failed. Kind is one of the Err* values of
// this package; errors.Is matches it.
type GuestError struct {
	// Kind is the cause: ErrExit, ErrTrap, ErrTimeout and the others.
	Kind error
	// ExitCode is the guest's exit code for ErrExit.
	ExitCode uint32
	// Detail says more in words (the trap, the limit).
	Detail string
	// Stderr is the tail of what the guest wrote to stderr.
	Stderr string
	// Err is the underlying runtime error, if any.
	Err error
}

// Error says the kind, the exit code for ErrExit, the detail and the stderr
// tail, each where there is one.
func (e *GuestError) Error() string {
	msg := e.Kind.Error()
	if e.Kind == ErrExit {
		msg = fmt.Sprintf("%s (exit code %d)", msg, e.ExitCode)
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Stderr != "" {
		msg += "; stderr: " + e.Stderr
	}
	return msg
}

// Unwrap returns the kind and the underlying error.
func (e *GuestError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}
