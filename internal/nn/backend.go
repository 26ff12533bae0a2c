package nn

import (
	"context"
	"errors"
	"fmt"
)

// TensorType is a WASI-NN tensor element type, numbered as WasmEdge's
// legacy WASI-NN ABI numbers them.
type TensorType uint8

// Tensor element types.
const (
	F16 TensorType = 0
	F32 TensorType = 1
	F64 TensorType = 2
	U8  TensorType = 3
	I32 TensorType = 4
	I64 TensorType = 5
)

// Size returns the size of one element in bytes, or 0 for an unknown type.
func (t TensorType) Size() int {
	switch t {
	case U8:
		return 1
	case F16:
		return 2
	case F32, I32:
		return 4
	case F64, I64:
		return 8
	}
	return 0
}

// String returns the type's WASI-NN name, e.g. "f32".
func (t TensorType) String() string {
	switch t {
	case F16:
		return "f16"
	case F32:
		return "f32"
	case F64:
		return "f64"
	case U8:
		return "u8"
	case I32:
		return "i32"
	case I64:
		return "i64"
	}
	return fmt.Sprintf("tensor_type(%d)", uint8(t))
}

// graphEncoding is a WASI-NN graph encoding (WasmEdge numbering).
type graphEncoding uint32

// Graph encodings this host accepts through load.
const (
	encodingONNX       graphEncoding = 1
	encodingAutodetect graphEncoding = 5
)

// execTarget is a WASI-NN execution target (WasmEdge numbering). The host
// validates it but the device is chosen per process (--nn-device), not per
// guest.
type execTarget uint32

// Execution targets.
const (
	targetCPU  execTarget = 0
	targetGPU  execTarget = 1
	targetTPU  execTarget = 2
	targetAuto execTarget = 3
)

// Tensor is a dense tensor: Data holds the elements little-endian, row-major.
type Tensor struct {
	// Type is the element type.
	Type TensorType
	// Dims are the dimensions, outermost first.
	Dims []uint32
	// Data holds the product of Dims elements of Type.
	Data []byte
}

// Backend errors; the host module maps them to WASI-NN errno values (see
// errnoOf). Backends wrap them with %w and a message saying what was wrong.
var (
	ErrInvalidArgument = errors.New("invalid argument")
	ErrInvalidEncoding = errors.New("invalid encoding")
	ErrUnsupported     = errors.New("unsupported operation")
	ErrTooLarge        = errors.New("too large")
	ErrNotFound        = errors.New("not found")
	ErrRuntime         = errors.New("runtime error")
	// ErrBusy says a resource is exhausted for now (a cap was reached).
	ErrBusy = errors.New("busy")
)

// Backend loads graphs of one kind (ONNX, fastText).
type Backend interface {
	// Name is the backend's name, e.g. "onnx".
	Name() string
	// LoadFile loads a model file registered by name in the worker.
	LoadFile(ctx context.Context, path string) (Graph, error)
	// LoadBytes loads a model supplied by a guest.
	LoadBytes(ctx context.Context, model []byte) (Graph, error)
}

// Graph is a loaded model, shared by every guest instance of a process and
// safe for concurrent use.
type Graph interface {
	// NewContext returns a fresh execution context for one caller.
	NewContext() (ExecContext, error)
	// Close releases the model.
	Close() error
}

// ExecContext holds one caller's inputs and outputs. It is used by one
// goroutine at a time.
type ExecContext interface {
	// SetInput sets input number index. t.Data (often a view of guest
	// memory) is valid only during the call: a context copies what it
	// keeps.
	SetInput(index uint32, t Tensor) error
	// Compute runs the graph on the inputs set.
	Compute(ctx context.Context) error
	// Output returns output number index of the last Compute.
	Output(index uint32) (Tensor, error)
	// OutputBytes is the data size of all outputs of the last Compute (0
	// before one): the host counts it against the instance's budget.
	OutputBytes() uint64
	// Close releases the context.
	Close() error
}
