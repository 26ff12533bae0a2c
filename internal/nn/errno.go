package nn

import (
	"context"
	"errors"
)

// Errno is a WASI-NN result code as WasmEdge numbers them; 0 is success.
type Errno uint32

// WASI-NN errno values (WasmEdge's plugins/wasi_nn/wasinntypes.h).
const (
	ErrnoSuccess              Errno = 0
	ErrnoInvalidArgument      Errno = 1
	ErrnoInvalidEncoding      Errno = 2
	ErrnoMissingMemory        Errno = 3
	ErrnoBusy                 Errno = 4
	ErrnoRuntimeError         Errno = 5
	ErrnoUnsupportedOperation Errno = 6
	ErrnoTooLarge             Errno = 7
	ErrnoNotFound             Errno = 8
)

// String returns the errno's name as WasmEdge spells it in lower case.
func (e Errno) String() string {
	switch e {
	case ErrnoSuccess:
		return "success"
	case ErrnoInvalidArgument:
		return "invalid_argument"
	case ErrnoInvalidEncoding:
		return "invalid_encoding"
	case ErrnoMissingMemory:
		return "missing_memory"
	case ErrnoBusy:
		return "busy"
	case ErrnoRuntimeError:
		return "runtime_error"
	case ErrnoUnsupportedOperation:
		return "unsupported_operation"
	case ErrnoTooLarge:
		return "too_large"
	case ErrnoNotFound:
		return "not_found"
	}
	return "errno(" + itoa(uint32(e)) + ")"
}

func itoa(v uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// ErrnoOf maps an error to the errno a guest sees: nil is success, the
// package's sentinels map to their errno, anything else is a runtime error.
func ErrnoOf(err error) Errno {
	switch {
	case err == nil:
		return ErrnoSuccess
	case errors.Is(err, ErrInvalidArgument):
		return ErrnoInvalidArgument
	case errors.Is(err, ErrInvalidEncoding):
		return ErrnoInvalidEncoding
	case errors.Is(err, ErrUnsupported):
		return ErrnoUnsupportedOperation
	case errors.Is(err, ErrTooLarge):
		return ErrnoTooLarge
	case errors.Is(err, ErrNotFound):
		return ErrnoNotFound
	case errors.Is(err, ErrBusy):
		return ErrnoBusy
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ErrnoRuntimeError
	}
	return ErrnoRuntimeError
}
