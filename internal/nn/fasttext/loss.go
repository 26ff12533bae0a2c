package fasttext

import (
	"fmt"
	"math"
)

// stdLog is fastText's std_log: log(x + 1e-5) computed in double and
// returned as float.
func stdLog(x float32) float32 { return float32(math.Log(float64(x) + 1e-5)) }

// expf stands in for the C library's expf (fastText calls std::exp on
// floats): exp in double, rounded to float.
func expf(x float32) float32 { return float32(math.Exp(float64(x))) }

// Sigmoid lookup table of fastText's Loss, used by one-vs-all and negative
// sampling predictions.
const (
	sigmoidTableSize = 512
	maxSigmoid       = 8
)

var sigmoidTable = func() (t [sigmoidTableSize + 1]float32) {
	for i := range t {
		x := float32(i*2*maxSigmoid)/sigmoidTableSize - maxSigmoid
		t[i] = float32(1.0 / (1.0 + float64(expf(-x))))
	}
	return t
}()

// tableSigmoid is Loss::sigmoid, with every step in float as in C++.
func tableSigmoid(x float32) float32 {
	switch {
	case x < -maxSigmoid:
		return 0
	case x > maxSigmoid:
		return 1
	}
	v := x + maxSigmoid
	v = v * sigmoidTableSize
	v = v / maxSigmoid
	v = v / 2
	return sigmoidTable[int64(v)]
}

// hsNode is a node of the hierarchical-softmax Huffman tree.
type hsNode struct {
	left, right int32
	count       int64
}

// buildTree is HierarchicalSoftmaxLoss::buildTree over the label counts
// (leaves 0..osz-1, internal nodes after them, the root last). fastText
// assumes counts sorted in decreasing order, as training leaves them; a
// file whose counts would make a node its own child is rejected.
func buildTree(counts []int64) ([]hsNode, error) {
	osz := len(counts)
	if osz == 0 {
		return nil, fmt.Errorf("%w: hierarchical softmax needs at least one label", ErrCorrupt)
	}
	const unbuilt = int64(1e15) // the count fastText gives nodes not built yet
	tree := make([]hsNode, 2*osz-1)
	for i := range tree {
		tree[i] = hsNode{left: -1, right: -1, count: unbuilt}
	}
	for i, c := range counts {
		tree[i].count = c
	}
	leaf, node := osz-1, osz
	for i := osz; i < 2*osz-1; i++ {
		var mini [2]int
		for j := range mini {
			nodeCount := unbuilt
			if node < i {
				nodeCount = tree[node].count
			}
			if leaf >= 0 && tree[leaf].count < nodeCount {
				mini[j] = leaf
				leaf--
			} else {
				mini[j] = node
				node++
			}
		}
		if mini[0] >= i || mini[1] >= i {
			return nil, fmt.Errorf("%w: label counts do not form a Huffman tree", ErrCorrupt)
		}
		tree[i].left, tree[i].right = int32(mini[0]), int32(mini[1])
		tree[i].count = tree[mini[0]].count + tree[mini[1]].count
	}
	return tree, nil
}

// hsItem is a tree node waiting to be visited and its path score.
type hsItem struct {
	node  int32
	score float32
}

// hsPredict is HierarchicalSoftmaxLoss::predict: a depth-first search from
// the root, left child first, pruned by the threshold and by the k-th best
// score so far. It is iterative so that a deep tree cannot exhaust the
// stack; nodes are visited in the same order as fastText's recursion.
func (m *Model) hsPredict(st *state, k int, threshold float32) []scored {
	osz := int32(m.dict.nlabels)
	minScore := stdLog(threshold)
	stack := append(st.stack[:0], hsItem{node: 2*osz - 2})
	heap := st.heap[:0]
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if it.score < minScore {
			continue
		}
		if len(heap) == k && it.score < heap[0].score {
			continue
		}
		n := m.tree[it.node]
		if n.left == -1 && n.right == -1 {
			heap = offer(heap, scored{score: it.score, id: it.node}, k)
			continue
		}
		f := m.output.dotRow(st.hidden, it.node-osz)
		f = float32(1.0 / float64(1+expf(-f)))
		stack = append(stack,
			hsItem{node: n.right, score: it.score + stdLog(f)},
			hsItem{node: n.left, score: it.score + stdLog(float32(1.0-float64(f)))},
		)
	}
	st.stack = stack
	return heap
}

// flatPredict is Loss::predict for softmax, one-vs-all and negative
// sampling: score every label, keep the k best at or above threshold.
func (m *Model) flatPredict(st *state, k int, threshold float32) []scored {
	out := st.output[:m.dict.nlabels]
	for i := range out {
		out[i] = m.output.dotRow(st.hidden, int32(i))
	}
	if m.args.Loss == LossSoftmax {
		softmax(out)
	} else {
		for i, v := range out {
			out[i] = tableSigmoid(v)
		}
	}
	heap := st.heap[:0]
	for i, v := range out {
		if v < threshold {
			continue
		}
		s := stdLog(v)
		if len(heap) == k && s < heap[0].score {
			continue
		}
		heap = offer(heap, scored{score: s, id: int32(i)}, k)
	}
	return heap
}

// softmax is SoftmaxLoss::computeOutput, in float.
func softmax(out []float32) {
	hi := out[0]
	for _, v := range out {
		if !(v < hi) { // std::max(v, hi), NaN included
			hi = v
		}
	}
	var z float32
	for i, v := range out {
		out[i] = expf(v - hi)
		z += out[i]
	}
	for i := range out {
		out[i] /= z
	}
}
