package nn_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/wasmjobs/wasmjobs/internal/nn"
)

// doubler is a fake backend: one f32 input of shape [n, 4], whose output 0
// is the input doubled. It counts open contexts.
type doubler struct{ open atomic.Int64 }

var _ nn.Backend = (*doubler)(nil)

func (d *doubler) Name() string { return "fake" }
func (d *doubler) LoadFile(context.Context, string) (nn.Graph, error) {
	return doublerGraph{d}, nil
}
func (d *doubler) LoadBytes(_ context.Context, b []byte) (nn.Graph, error) {
	if string(b) != "doubler" {
		return nil, fmt.Errorf("%w: not a doubler", nn.ErrInvalidEncoding)
	}
	return doublerGraph{d}, nil
}

type doublerGraph struct{ d *doubler }

func (g doublerGraph) NewContext() (nn.ExecContext, error) {
	g.d.open.Add(1)
	return &doublerContext{d: g.d}, nil
}
func (g doublerGraph) Close() error { return nil }

type doublerContext struct {
	d   *doubler
	in  *nn.Tensor
	out *nn.Tensor
}

func (c *doublerContext) SetInput(i uint32, t nn.Tensor) error {
	if i != 0 {
		return fmt.Errorf("%w: one input", nn.ErrInvalidArgument)
	}
	if t.Type != nn.F32 || len(t.Dims) != 2 || t.Dims[1] != 4 {
		return fmt.Errorf("%w: want f32 [n,4], got %s %v", nn.ErrInvalidArgument, t.Type, t.Dims)
	}
	t.Data = append([]byte(nil), t.Data...)
	c.in = &t
	return nil
}

func (c *doublerContext) Compute(context.Context) error {
	if c.in == nil {
		return fmt.Errorf("%w: compute before set_input", nn.ErrInvalidArgument)
	}
	out := nn.Tensor{Type: nn.F32, Dims: c.in.Dims, Data: make([]byte, len(c.in.Data))}
	for i := 0; i < len(out.Data); i += 4 {
		f := math.Float32frombits(binary.LittleEndian.Uint32(c.in.Data[i:]))
		binary.LittleEndian.PutUint32(out.Data[i:], math.Float32bits(2*f))
	}
	c.out = &out
	return nil
}

func (c *doublerContext) Output(i uint32) (nn.Tensor, error) {
	if c.out == nil || i != 0 {
		return nn.Tensor{}, fmt.Errorf("%w: no output %d", nn.ErrInvalidArgument, i)
	}
	return *c.out, nil
}

func (c *doublerContext) OutputBytes() uint64 {
	if c.out == nil {
		return 0
	}
	return uint64(len(c.out.Data))
}

func (c *doublerContext) Close() error { c.d.open.Add(-1); return nil }
