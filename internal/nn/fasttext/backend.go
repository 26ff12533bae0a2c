package fasttext

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/wasmjobs/wasmjobs/internal/nn"
)

// DefaultK is the number of predictions a context returns when input 1 is
// not set.
const DefaultK = 5

var (
	_ nn.Backend     = (*Backend)(nil)
	_ nn.Graph       = (*Graph)(nil)
	_ nn.ExecContext = (*ExecContext)(nil)
)

// Backend is the fastText WASI-NN backend. The zero value is ready to use.
type Backend struct{}

// New returns a fastText backend.
func New() *Backend { return &Backend{} }

// Name returns "fasttext".
func (*Backend) Name() string { return "fasttext" }

// LoadFile loads a supervised .bin or .ftz model from path.
func (b *Backend) LoadFile(ctx context.Context, path string) (nn.Graph, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("fasttext: %w: %w", nn.ErrNotFound, err)
		}
		return nil, fmt.Errorf("fasttext: %w", err)
	}
	g, err := b.LoadBytes(ctx, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// LoadBytes loads a supervised model from the bytes of a .bin or .ftz file.
// Errors wrap nn.ErrInvalidEncoding for bytes that are not a fastText model,
// nn.ErrInvalidArgument for a corrupt one and nn.ErrUnsupported for a
// word-vector (unsupervised) model, as well as this package's sentinel.
func (*Backend) LoadBytes(ctx context.Context, model []byte) (nn.Graph, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, err := Load(model)
	switch {
	case errors.Is(err, ErrNotFastText) || errors.Is(err, ErrVersion):
		return nil, fmt.Errorf("%w: %w", nn.ErrInvalidEncoding, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", nn.ErrInvalidArgument, err)
	case m.args.Model != ModelSupervised:
		return nil, fmt.Errorf("%w: %w (%s)", nn.ErrUnsupported, ErrNotSupervised, m.args.Model)
	}
	return &Graph{model: m}, nil
}

// Graph is a loaded model as an nn.Graph.
type Graph struct {
	model *Model
}

// Model returns the underlying model.
func (g *Graph) Model() *Model { return g.model }

// NewContext returns a context with no inputs set.
func (g *Graph) NewContext() (nn.ExecContext, error) {
	return &ExecContext{model: g.model, k: DefaultK}, nil
}

// Close does nothing: the model is garbage collected.
func (*Graph) Close() error { return nil }

// ExecContext runs predictions; see the package documentation for its
// tensors.
type ExecContext struct {
	model   *Model
	text    []byte
	hasText bool
	k       int

	computed bool
	probs    []byte // output 0
	labels   []byte // output 1
}

// SetInput sets input 0 (u8 text) or input 1 (i32 k).
func (c *ExecContext) SetInput(index uint32, t nn.Tensor) error {
	n, err := elements(t.Dims)
	if err != nil {
		return err
	}
	switch index {
	case 0:
		if t.Type != nn.U8 || n != uint64(len(t.Data)) {
			return fmt.Errorf("%w: fasttext input 0 must be a u8 tensor of the text's bytes (got type %d, dims %v, %d bytes)",
				nn.ErrInvalidArgument, t.Type, t.Dims, len(t.Data))
		}
		c.text = append(c.text[:0], t.Data...)
		c.hasText = true
	case 1:
		if t.Type != nn.I32 || n != 1 || len(t.Data) != 4 {
			return fmt.Errorf("%w: fasttext input 1 must be an i32 tensor [1] (got type %d, dims %v, %d bytes)",
				nn.ErrInvalidArgument, t.Type, t.Dims, len(t.Data))
		}
		c.k = int(int32(binary.LittleEndian.Uint32(t.Data)))
	default:
		return fmt.Errorf("%w: fasttext has inputs 0 and 1, not %d", nn.ErrInvalidArgument, index)
	}
	return nil
}

// elements is the product of dims, or an error when it overflows.
func elements(dims []uint32) (uint64, error) {
	n := uint64(1)
	for _, d := range dims {
		if d != 0 && n > math.MaxUint32/uint64(d) {
			return 0, fmt.Errorf("%w: tensor dims %v", nn.ErrInvalidArgument, dims)
		}
		n *= uint64(d)
	}
	return n, nil
}

// clampK bounds k to 1..number of labels.
func (c *ExecContext) clampK() int {
	return min(max(c.k, 1), int(c.model.dict.nlabels))
}

// inlineBytes is the text size predicted on the caller's goroutine; longer
// texts run on their own so that Compute can return when ctx ends.
const inlineBytes = 64 << 10

// Compute predicts the labels of the text set as input 0. It returns when
// ctx ends even if the prediction of a long text is still running; that
// prediction finishes in the background (its time is linear in the text,
// which the host bounds) and its result is dropped.
func (c *ExecContext) Compute(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !c.hasText {
		return fmt.Errorf("%w: fasttext: input 0 (text) is not set", nn.ErrInvalidArgument)
	}
	c.computed = false
	if len(c.text) <= inlineBytes {
		c.probs, c.labels = predict(c.model, c.text, c.clampK(), c.probs[:0], c.labels[:0])
		c.computed = true
		return nil
	}
	type result struct{ probs, labels []byte }
	done := make(chan result, 1)
	m, text, k := c.model, c.text, c.clampK()
	c.text, c.hasText = nil, false // the goroutine owns text now
	go func() {
		p, l := predict(m, text, k, nil, nil)
		done <- result{p, l}
	}()
	select {
	case r := <-done:
		c.text, c.hasText = text, true
		c.probs, c.labels, c.computed = r.probs, r.labels, true
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: fasttext: compute abandoned: %w", nn.ErrRuntime, ctx.Err())
	}
}

// predict appends outputs 0 and 1 for text to probs and labels (the last
// compute's buffers, which the next one reuses); m is safe for concurrent
// use.
func predict(m *Model, text []byte, k int, probs, labels []byte) ([]byte, []byte) {
	for i, p := range m.PredictBytes(text, k, 0) {
		probs = binary.LittleEndian.AppendUint32(probs, math.Float32bits(p.Prob))
		if i > 0 {
			labels = append(labels, '\n')
		}
		labels = append(labels, p.Label...)
	}
	return probs, labels
}

// Output returns output 0 (f32 probabilities) or 1 (u8 labels) of the last
// Compute. The tensors' Data is owned by c until the next Compute.
func (c *ExecContext) Output(index uint32) (nn.Tensor, error) {
	if !c.computed {
		return nn.Tensor{}, fmt.Errorf("%w: fasttext: Output before Compute", nn.ErrInvalidArgument)
	}
	switch index {
	case 0:
		return nn.Tensor{Type: nn.F32, Dims: []uint32{uint32(len(c.probs) / 4)}, Data: c.probs}, nil
	case 1:
		return nn.Tensor{Type: nn.U8, Dims: []uint32{uint32(len(c.labels))}, Data: c.labels}, nil
	}
	return nn.Tensor{}, fmt.Errorf("%w: fasttext has outputs 0 and 1, not %d", nn.ErrInvalidArgument, index)
}

// OutputBytes is the size of outputs 0 and 1 of the last Compute.
func (c *ExecContext) OutputBytes() uint64 {
	if !c.computed {
		return 0
	}
	return uint64(len(c.probs) + len(c.labels))
}

// Close releases the context's buffers.
func (c *ExecContext) Close() error {
	*c = ExecContext{model: c.model}
	return nil
}
