package onnx

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/wasmjobs/wasmjobs/worker/nn"
)

// batcher merges concurrent computes of equal non-batch shapes into one run.
// There is no background goroutine: the first compute of a batch leads it,
// waiting for the window or a full batch, and runs it for everyone.
type batcher struct {
	g      *graph
	window time.Duration
	max    int

	mu   sync.Mutex
	open map[string]*pendingBatch // shape key → batch still accepting
}

type pendingBatch struct {
	items []*batchItem
	full  chan struct{} // closed when the batch stops accepting early
}

type batchItem struct {
	inputs  []nn.Tensor
	outputs []nn.Tensor
	err     error
	done    chan struct{}
}

// shapeKey identifies inputs that can share a run: types and all dims but
// the first.
func shapeKey(inputs []nn.Tensor) string {
	var sb strings.Builder
	for _, t := range inputs {
		fmt.Fprintf(&sb, "%d:%v;", t.Type, t.Dims[1:])
	}
	return sb.String()
}

func (b *batcher) do(ctx context.Context, inputs []nn.Tensor) ([]nn.Tensor, error) {
	key := shapeKey(inputs)
	it := &batchItem{inputs: inputs, done: make(chan struct{})}
	b.mu.Lock()
	pb := b.open[key]
	leader := pb == nil
	if leader {
		pb = &pendingBatch{full: make(chan struct{})}
		b.open[key] = pb
	}
	pb.items = append(pb.items, it)
	if len(pb.items) >= b.max {
		delete(b.open, key)
		close(pb.full)
	}
	b.mu.Unlock()

	if leader {
		t := time.NewTimer(b.window)
		select {
		case <-t.C:
		case <-pb.full:
		}
		t.Stop()
		b.mu.Lock()
		if b.open[key] == pb {
			delete(b.open, key)
		}
		b.mu.Unlock()
		b.g.runBatch(pb.items)
	}
	select {
	case <-it.done:
		return it.outputs, it.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// runBatch runs items as one run and hands each its rows of the outputs.
// Outputs whose first dimension is not the batch fall back to one run per
// item, so results never depend on batching.
func (g *graph) runBatch(items []*batchItem) {
	defer func() {
		for _, it := range items {
			close(it.done)
		}
	}()
	if len(items) == 1 {
		items[0].outputs, items[0].err = g.run(items[0].inputs)
		return
	}
	merged, rows := concat(items)
	outs, err := g.run(merged)
	if err == nil {
		var parts [][]nn.Tensor
		if parts, err = split(outs, rows); err == nil {
			g.b.batched.Add(uint64(len(items)))
			for i, it := range items {
				it.outputs = parts[i]
			}
			return
		}
	}
	for _, it := range items {
		it.outputs, it.err = g.run(it.inputs)
	}
}

// concat joins the items' inputs along the first dimension.
func concat(items []*batchItem) ([]nn.Tensor, []uint32) {
	rows := make([]uint32, len(items))
	var total uint32
	for i, it := range items {
		rows[i] = it.inputs[0].Dims[0]
		total += rows[i]
	}
	merged := make([]nn.Tensor, len(items[0].inputs))
	for k := range merged {
		first := items[0].inputs[k]
		dims := append([]uint32{total}, first.Dims[1:]...)
		size := 0
		for _, it := range items {
			size += len(it.inputs[k].Data)
		}
		data := make([]byte, 0, size)
		for _, it := range items {
			data = append(data, it.inputs[k].Data...)
		}
		merged[k] = nn.Tensor{Type: first.Type, Dims: dims, Data: data}
	}
	return merged, rows
}

// split cuts each output into the items' rows.
func split(outs []nn.Tensor, rows []uint32) ([][]nn.Tensor, error) {
	var total uint32
	for _, r := range rows {
		total += r
	}
	parts := make([][]nn.Tensor, len(rows))
	for i := range parts {
		parts[i] = make([]nn.Tensor, len(outs))
	}
	for k, out := range outs {
		if len(out.Dims) == 0 || out.Dims[0] != total || len(out.Data)%int(total) != 0 {
			return nil, fmt.Errorf("output %d of shape %v is not batch-major", k, out.Dims)
		}
		rowBytes := len(out.Data) / int(total)
		off := 0
		for i, r := range rows {
			n := int(r) * rowBytes
			dims := append([]uint32{r}, out.Dims[1:]...)
			parts[i][k] = nn.Tensor{Type: out.Type, Dims: dims, Data: out.Data[off : off+n : off+n]}
			off += n
		}
	}
	return parts, nil
}
