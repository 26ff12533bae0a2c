package nn

import "context"

// PeakInstanceBytes is the most tensor and model bytes one released instance
// of m held at once.
func (m *Module) PeakInstanceBytes() uint64 { return m.peakHeld.Load() }

// Call runs host function name with params against mem, as a guest's call
// would (see call).
func (m *Module) Call(ctx context.Context, mem Memory, name string, params ...uint32) Errno {
	return m.call(ctx, mem, name, params...)
}

// What the tests of package nn_test reach; unexported in the package.
type (
	Errno       = errno
	Limits      = limits
	Memory      = guestMemory
	SliceMemory = sliceMemory
)

var (
	DecodeTensor   = decodeTensor
	DecodeBuilders = decodeBuilders
	ErrnoOf        = errnoOf
)

const (
	ErrnoSuccess              = errnoSuccess
	ErrnoInvalidArgument      = errnoInvalidArgument
	ErrnoInvalidEncoding      = errnoInvalidEncoding
	ErrnoMissingMemory        = errnoMissingMemory
	ErrnoBusy                 = errnoBusy
	ErrnoRuntimeError         = errnoRuntimeError
	ErrnoUnsupportedOperation = errnoUnsupportedOperation
	ErrnoTooLarge             = errnoTooLarge
	ErrnoNotFound             = errnoNotFound
)
