package onnx

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/nn"
)

// batcher merges concurrent computes of equal non-batch shapes into one run.
// The first compute of a batch arms a timer for the window; the batch runs on
// its own goroutine when the timer fires or the batch is full. Callers only
// wait for their result or their context, whichever comes first: a guest
// whose deadline passes in the window or during the run leaves at once, and
// the run is terminated when every caller of the batch has left.
type batcher struct {
	g      *graph
	window time.Duration
	max    int

	mu   sync.Mutex
	open map[string]*pendingBatch // shape key → batch still accepting
}

type pendingBatch struct {
	items []*batchItem
	timer *time.Timer

	// waiting counts callers still waiting; the last to leave cancels the
	// run through stop.
	waiting int
	run     context.Context
	stop    context.CancelFunc
}

type batchItem struct {
	inputs  []nn.Tensor
	outputs []nn.Tensor
	err     error
	left    bool // the caller left before the batch ran; guarded by batcher.mu
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
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: onnx: compute not started: %w", nn.ErrRuntime, err)
	}
	key := shapeKey(inputs)
	it := &batchItem{inputs: inputs, done: make(chan struct{})}
	b.mu.Lock()
	pb := b.open[key]
	if pb == nil {
		run, stop := context.WithCancel(context.Background())
		pb = &pendingBatch{run: run, stop: stop}
		b.open[key] = pb
		pb.timer = time.AfterFunc(b.window, func() { b.flush(key, pb) })
	}
	pb.items = append(pb.items, it)
	pb.waiting++
	if len(pb.items) >= b.max && pb.timer.Stop() {
		go b.flush(key, pb)
	}
	b.mu.Unlock()

	select {
	case <-it.done:
		return it.outputs, it.err
	case <-ctx.Done():
		b.mu.Lock()
		it.left = true
		pb.waiting--
		if pb.waiting == 0 {
			pb.stop()
		}
		b.mu.Unlock()
		return nil, fmt.Errorf("%w: onnx: compute abandoned: %w", nn.ErrRuntime, ctx.Err())
	}
}

// flush closes pb to newcomers and runs the items whose callers still wait.
func (b *batcher) flush(key string, pb *pendingBatch) {
	b.mu.Lock()
	if b.open[key] == pb {
		delete(b.open, key)
	}
	items := make([]*batchItem, 0, len(pb.items))
	for _, it := range pb.items {
		if it.left {
			close(it.done)
		} else {
			items = append(items, it)
		}
	}
	b.mu.Unlock()
	defer pb.stop()
	if len(items) > 0 {
		b.g.runBatch(pb.run, items)
	}
}

// runBatch runs items as one run and hands each its rows of the outputs.
// Outputs whose first dimension is not the batch fall back to one run per
// item, so results never depend on batching.
func (g *graph) runBatch(ctx context.Context, items []*batchItem) {
	defer func() {
		for _, it := range items {
			close(it.done)
		}
	}()
	if len(items) == 1 {
		items[0].outputs, items[0].err = g.run(ctx, items[0].inputs)
		return
	}
	merged, rows := concat(items)
	outs, err := g.run(ctx, merged)
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
		it.outputs, it.err = g.run(ctx, it.inputs)
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
