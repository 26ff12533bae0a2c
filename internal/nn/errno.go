package nn

import (
	"context"
	"errors"
)

// errno is a WASI-NN result code as WasmEdge numbers them; 0 is success.
type errno uint32

// WASI-NN errno values (WasmEdge's plugins/wasi_nn/wasinntypes.h).
const (
	errnoSuccess              errno = 0
	errnoInvalidArgument      errno = 1
	errnoInvalidEncoding      errno = 2
	errnoMissingMemory        errno = 3
	errnoBusy                 errno = 4
	errnoRuntimeError         errno = 5
	errnoUnsupportedOperation errno = 6
	errnoTooLarge             errno = 7
	errnoNotFound             errno = 8
)

// String returns the errno's name as WasmEdge spells it in lower case.
func (e errno) String() string {
	switch e {
	case errnoSuccess:
		return "success"
	case errnoInvalidArgument:
		return "invalid_argument"
	case errnoInvalidEncoding:
		return "invalid_encoding"
	case errnoMissingMemory:
		return "missing_memory"
	case errnoBusy:
		return "busy"
	case errnoRuntimeError:
		return "runtime_error"
	case errnoUnsupportedOperation:
		return "unsupported_operation"
	case errnoTooLarge:
		return "too_large"
	case errnoNotFound:
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

// errnoOf maps an error to the errno a guest sees: nil is success, the
// package's sentinels map to their errno, anything else is a runtime error.
func errnoOf(err error) errno {
	switch {
	case err == nil:
		return errnoSuccess
	case errors.Is(err, ErrInvalidArgument):
		return errnoInvalidArgument
	case errors.Is(err, ErrInvalidEncoding):
		return errnoInvalidEncoding
	case errors.Is(err, ErrUnsupported):
		return errnoUnsupportedOperation
	case errors.Is(err, ErrTooLarge):
		return errnoTooLarge
	case errors.Is(err, ErrNotFound):
		return errnoNotFound
	case errors.Is(err, ErrBusy):
		return errnoBusy
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errnoRuntimeError
	}
	return errnoRuntimeError
}
