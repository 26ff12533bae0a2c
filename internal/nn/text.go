package nn

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
)

// textBackendName is the name of the built-in text backend.
const textBackendName = "text"

// maxTextBytes caps a text "model": it is a dictionary, not a dataset.
const maxTextBytes = 16 << 20

// textBackend serves a text file as a graph: it takes no inputs, and after
// compute its output 0 is the file's bytes as a u8 tensor of dims [len]. The
// OCR guest reads the recognition dictionary (ocr-keys) this way, so the
// dictionary ships with the models rather than inside the guest.
type textBackend struct{}

var (
	_ Backend     = textBackend{}
	_ Graph       = (*textGraph)(nil)
	_ ExecContext = (*textContext)(nil)
)

// Name implements Backend.
func (textBackend) Name() string { return textBackendName }

// LoadFile implements Backend: it reads the file, at most 16 MiB.
func (textBackend) LoadFile(_ context.Context, path string) (Graph, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxTextBytes || fi.Size() == 0 {
		return nil, errf(ErrInvalidArgument, "text model %s: %d bytes, want 1 to %d", path, fi.Size(), maxTextBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return &textGraph{data: b}, nil
}

// LoadBytes implements Backend; guests cannot load text graphs.
func (textBackend) LoadBytes(context.Context, []byte) (Graph, error) {
	return nil, errf(ErrUnsupported, "the text backend serves registered files only")
}

type textGraph struct {
	data   []byte
	closed atomic.Bool
}

func (g *textGraph) NewContext() (ExecContext, error) {
	if g.closed.Load() {
		return nil, errf(ErrRuntime, "text graph is closed")
	}
	return &textContext{g: g}, nil
}

func (g *textGraph) Close() error { g.closed.Store(true); return nil }

type textContext struct {
	g        *textGraph
	computed bool
}

func (c *textContext) SetInput(index uint32, _ Tensor) error {
	return errf(ErrInvalidArgument, "text graph has no inputs (set_input %d)", index)
}

func (c *textContext) Compute(context.Context) error {
	c.computed = true
	return nil
}

func (c *textContext) Output(index uint32) (Tensor, error) {
	if !c.computed {
		return Tensor{}, errf(ErrInvalidArgument, "get_output before compute")
	}
	if index != 0 {
		return Tensor{}, errf(ErrInvalidArgument, "text graph has one output, asked for %d", index)
	}
	return Tensor{Type: U8, Dims: []uint32{uint32(len(c.g.data))}, Data: c.g.data}, nil
}

func (c *textContext) OutputBytes() uint64 {
	if !c.computed {
		return 0
	}
	return uint64(len(c.g.data))
}

func (c *textContext) Close() error { return nil }

// String describes the graph for logs.
func (g *textGraph) String() string { return fmt.Sprintf("text(%d bytes)", len(g.data)) }
