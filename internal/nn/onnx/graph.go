package onnx

import (
	"context"
	"fmt"
	"math"
	"sync"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/wasmjobs/wasmjobs/internal/nn"
)

// graph is one model: one session shared by all its contexts.
type graph struct {
	b       *Backend
	inputs  []ort.InputOutputInfo
	outputs []ort.InputOutputInfo
	inTypes []nn.TensorType
	batch   *batcher // nil: no batching

	// mu guards sess against Close during runs.
	mu   sync.RWMutex
	sess *ort.DynamicAdvancedSession
}

var (
	_ nn.Graph       = (*graph)(nil)
	_ nn.ExecContext = (*execContext)(nil)
)

type sessionFunc func(in, out []string, opts *ort.SessionOptions) (*ort.DynamicAdvancedSession, error)

func (b *Backend) newGraph(ins, outs []ort.InputOutputInfo, open sessionFunc) (*graph, error) {
	g := &graph{b: b, inputs: ins, outputs: outs}
	inNames := make([]string, len(ins))
	for i, in := range ins {
		if in.OrtValueType != ort.ONNXTypeTensor {
			return nil, fmt.Errorf("%w: onnx: input %d (%s) is not a tensor", nn.ErrUnsupported, i, in.Name)
		}
		t, ok := fromORT(in.DataType)
		if !ok {
			return nil, fmt.Errorf("%w: onnx: input %d (%s) has element type %s, which WASI-NN cannot express", nn.ErrUnsupported, i, in.Name, in.DataType)
		}
		g.inTypes = append(g.inTypes, t)
		inNames[i] = in.Name
	}
	outNames := make([]string, len(outs))
	for i, out := range outs {
		outNames[i] = out.Name
	}
	opts, err := b.sessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	if g.sess, err = open(inNames, outNames, opts); err != nil {
		return nil, fmt.Errorf("%w: onnx: create session: %v", nn.ErrInvalidArgument, err)
	}
	if b.cfg.BatchWindow > 0 && batchable(ins) {
		g.batch = &batcher{g: g, window: b.cfg.BatchWindow, max: b.cfg.MaxBatch, open: map[string]*pendingBatch{}}
	}
	return g, nil
}

// batchable reports whether every input has a dynamic first dimension.
func batchable(ins []ort.InputOutputInfo) bool {
	if len(ins) == 0 {
		return false
	}
	for _, in := range ins {
		if len(in.Dimensions) == 0 || in.Dimensions[0] >= 0 {
			return false
		}
	}
	return true
}

func (g *graph) NewContext() (nn.ExecContext, error) {
	return &execContext{g: g, inputs: make([]nn.Tensor, len(g.inputs)), set: make([]bool, len(g.inputs))}, nil
}

func (g *graph) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sess == nil {
		return nil
	}
	err := g.sess.Destroy()
	g.sess = nil
	return err
}

// run runs the session once on inputs. When ctx ends during the run, ONNX
// Runtime is told to terminate it, which it does between kernels: a compute
// never outlives its job's deadline by more than one kernel.
func (g *graph) run(ctx context.Context, inputs []nn.Tensor) ([]nn.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: onnx: compute not started: %w", nn.ErrRuntime, err)
	}
	vals := make([]ort.Value, len(inputs))
	defer func() {
		for _, v := range vals {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for i, t := range inputs {
		shape := make(ort.Shape, len(t.Dims))
		for j, d := range t.Dims {
			shape[j] = int64(d)
		}
		v, err := ort.NewCustomDataTensor(shape, t.Data, toORT(t.Type))
		if err != nil {
			return nil, fmt.Errorf("%w: onnx: input %d: %v", nn.ErrInvalidArgument, i, err)
		}
		vals[i] = v
	}
	outs := make([]ort.Value, len(g.outputs))
	defer func() {
		for _, v := range outs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	weight := min(tensorBytes(inputs), g.b.cfg.MaxRunningInputBytes)
	if err := g.b.running.Acquire(ctx, weight); err != nil {
		return nil, fmt.Errorf("%w: onnx: compute not started, waiting for other runs' memory: %w", nn.ErrRuntime, err)
	}
	defer g.b.running.Release(weight)
	g.mu.RLock()
	if g.sess == nil {
		g.mu.RUnlock()
		return nil, fmt.Errorf("%w: onnx: graph is closed", nn.ErrRuntime)
	}
	err := g.runTerminable(ctx, vals, outs)
	g.mu.RUnlock()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%w: onnx: compute terminated: %w", nn.ErrRuntime, ctxErr)
		}
		return nil, fmt.Errorf("%w: onnx: %v", nn.ErrRuntime, err)
	}
	res := make([]nn.Tensor, len(outs))
	for i, v := range outs {
		t, err := toTensor(v)
		if err != nil {
			return nil, fmt.Errorf("%w: onnx: output %d (%s): %v", nn.ErrUnsupported, i, g.outputs[i].Name, err)
		}
		res[i] = t
	}
	return res, nil
}

// runTerminable runs the session with run options whose terminate flag is
// set when ctx ends. g.mu is held for reading.
func (g *graph) runTerminable(ctx context.Context, vals, outs []ort.Value) error {
	opts, err := ort.NewRunOptions()
	if err != nil {
		return err
	}
	terminated := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(terminated)
		_ = opts.Terminate()
	})
	g.b.runs.Add(1)
	defer computedSinceTrim.Store(true)
	err = g.sess.RunWithOptions(vals, outs, opts)
	if !stop() {
		// The terminate call started: let it finish before the options go.
		<-terminated
	}
	_ = opts.Destroy()
	return err
}

type execContext struct {
	g *graph
	// inputs hold copies of the tensors set, in buffers reused by the next
	// set_input of the same index (a guest that recognizes line after line
	// fills the same context again).
	inputs  []nn.Tensor
	set     []bool
	outputs []nn.Tensor
}

func (c *execContext) SetInput(index uint32, t nn.Tensor) error {
	if uint64(index) >= uint64(len(c.inputs)) {
		return fmt.Errorf("%w: set_input %d: the model has %d inputs", nn.ErrInvalidArgument, index, len(c.inputs))
	}
	info := c.g.inputs[index]
	if want := c.g.inTypes[index]; t.Type != want {
		return fmt.Errorf("%w: set_input %d (%s): the model takes %s, got %s", nn.ErrInvalidArgument, index, info.Name, want, t.Type)
	}
	if len(t.Dims) != len(info.Dimensions) {
		return fmt.Errorf("%w: set_input %d (%s): the model takes shape %v, got %v", nn.ErrInvalidArgument, index, info.Name, info.Dimensions, t.Dims)
	}
	for i, d := range info.Dimensions {
		if d >= 0 && int64(t.Dims[i]) != d {
			return fmt.Errorf("%w: set_input %d (%s): the model takes shape %v, got %v", nn.ErrInvalidArgument, index, info.Name, info.Dimensions, t.Dims)
		}
	}
	in := &c.inputs[index]
	in.Type, in.Dims = t.Type, append(in.Dims[:0], t.Dims...)
	if n := len(t.Data); cap(in.Data) < n || cap(in.Data) > 2*n {
		// At most twice what the host counts against the instance's
		// tensor budget stays held.
		in.Data = nil
	}
	in.Data = append(in.Data[:0], t.Data...)
	c.set[index] = true
	return nil
}

func (c *execContext) Compute(ctx context.Context) error {
	for i, ok := range c.set {
		if !ok {
			return fmt.Errorf("%w: compute before set_input %d (%s)", nn.ErrInvalidArgument, i, c.g.inputs[i].Name)
		}
	}
	c.g.b.computes.Add(1)
	var (
		outs []nn.Tensor
		err  error
	)
	if c.g.batch != nil {
		outs, err = c.g.batch.do(ctx, c.inputs)
	} else {
		outs, err = c.g.run(ctx, c.inputs)
	}
	if err != nil {
		c.outputs = nil
		return err
	}
	c.outputs = outs
	return nil
}

func (c *execContext) Output(index uint32) (nn.Tensor, error) {
	if c.outputs == nil {
		return nn.Tensor{}, fmt.Errorf("%w: get_output before a successful compute", nn.ErrInvalidArgument)
	}
	if uint64(index) >= uint64(len(c.outputs)) {
		return nn.Tensor{}, fmt.Errorf("%w: get_output %d: the model has %d outputs", nn.ErrInvalidArgument, index, len(c.outputs))
	}
	return c.outputs[index], nil
}

func (c *execContext) OutputBytes() uint64 { return uint64(tensorBytes(c.outputs)) }

func (c *execContext) Close() error {
	c.inputs, c.outputs = nil, nil
	return nil
}

func fromORT(t ort.TensorElementDataType) (nn.TensorType, bool) {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return nn.F32, true
	case ort.TensorElementDataTypeFloat16:
		return nn.F16, true
	case ort.TensorElementDataTypeDouble:
		return nn.F64, true
	case ort.TensorElementDataTypeUint8:
		return nn.U8, true
	case ort.TensorElementDataTypeInt32:
		return nn.I32, true
	case ort.TensorElementDataTypeInt64:
		return nn.I64, true
	}
	return 0, false
}

func toORT(t nn.TensorType) ort.TensorElementDataType {
	switch t {
	case nn.F16:
		return ort.TensorElementDataTypeFloat16
	case nn.F64:
		return ort.TensorElementDataTypeDouble
	case nn.U8:
		return ort.TensorElementDataTypeUint8
	case nn.I32:
		return ort.TensorElementDataTypeInt32
	case nn.I64:
		return ort.TensorElementDataTypeInt64
	}
	return ort.TensorElementDataTypeFloat
}

// toTensor converts an output ORT allocated. ort has already copied the
// data into Go memory, which stays valid after the value is destroyed.
func toTensor(v ort.Value) (nn.Tensor, error) {
	dims, err := toDims(v.GetShape())
	if err != nil {
		return nn.Tensor{}, err
	}
	switch v := v.(type) {
	case *ort.Tensor[float32]:
		return nn.Tensor{Type: nn.F32, Dims: dims, Data: asBytes(v.GetData())}, nil
	case *ort.Tensor[float64]:
		return nn.Tensor{Type: nn.F64, Dims: dims, Data: asBytes(v.GetData())}, nil
	case *ort.Tensor[uint8]:
		return nn.Tensor{Type: nn.U8, Dims: dims, Data: asBytes(v.GetData())}, nil
	case *ort.Tensor[int32]:
		return nn.Tensor{Type: nn.I32, Dims: dims, Data: asBytes(v.GetData())}, nil
	case *ort.Tensor[int64]:
		return nn.Tensor{Type: nn.I64, Dims: dims, Data: asBytes(v.GetData())}, nil
	case *ort.CustomDataTensor:
		if fromType, ok := fromORT(ort.TensorElementDataType(v.DataType())); ok && fromType == nn.F16 {
			return nn.Tensor{Type: nn.F16, Dims: dims, Data: v.GetData()}, nil
		}
	}
	return nn.Tensor{}, fmt.Errorf("element type %T has no WASI-NN tensor type", v)
}

func toDims(s ort.Shape) ([]uint32, error) {
	dims := make([]uint32, len(s))
	for i, d := range s {
		if d < 0 || d > math.MaxUint32 {
			return nil, fmt.Errorf("dimension %d out of range", d)
		}
		dims[i] = uint32(d)
	}
	return dims, nil
}

// asBytes views a numeric slice as its little-endian bytes (every platform
// ONNX Runtime ships for is little-endian).
func asBytes[T any](d []T) []byte {
	if len(d) == 0 {
		return []byte{}
	}
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(&d[0])), len(d)*int(unsafe.Sizeof(zero)))
}

// tensorBytes is the size of the tensors' data.
func tensorBytes(ts []nn.Tensor) int64 {
	var n int64
	for _, t := range ts {
		n += int64(len(t.Data))
	}
	return n
}
