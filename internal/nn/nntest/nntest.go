package nntest

import (
	"context"
	"encoding/binary"
	"math"
	"testing"

	"github.com/wasmjobs/wasmjobs/internal/nn"
)

// Image returns a deterministic f32 tensor of dims [1, 3, 48, w], the input
// shape of the OCR recognition and direction models.
func Image(seed int, w uint32) nn.Tensor {
	n := 3 * 48 * int(w)
	data := make([]byte, 4*n)
	for i := range n {
		v := float32(math.Sin(float64(i*(seed+1))*0.001)) * 0.9
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
	}
	return nn.Tensor{Type: nn.F32, Dims: []uint32{1, 3, 48, w}, Data: data}
}

// Compute runs g once in a fresh context with in as input 0 and returns
// output 0; any error fails tb.
func Compute(tb testing.TB, g nn.Graph, in nn.Tensor) nn.Tensor {
	tb.Helper()
	c, err := g.NewContext()
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	if err := c.SetInput(0, in); err != nil {
		tb.Fatal(err)
	}
	if err := c.Compute(context.Background()); err != nil {
		tb.Fatal(err)
	}
	out, err := c.Output(0)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
