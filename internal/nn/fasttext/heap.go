package fasttext

// scored is a (log-probability, label id) pair, fastText's Predictions
// element.
type scored struct {
	score float32
	id    int32
}

// The functions below reproduce libc++'s std::push_heap, std::pop_heap and
// std::sort_heap (LLVM 15 and later, as in the Emscripten build of the
// reference) with fastText's comparator `l.first > r.first`. That makes
// the front the lowest score, and decides the order of equal scores the
// same way fastText does.

// heapLess is fastText's comparePairs used as the heap's "less".
func heapLess(a, b scored) bool { return a.score > b.score }

// siftUp is libc++'s __sift_up over h[:n], moving h[n-1] up.
func siftUp(h []scored, n int) {
	if n <= 1 {
		return
	}
	last := n - 1
	parent := (n - 2) / 2
	if !heapLess(h[parent], h[last]) {
		return
	}
	t := h[last]
	for {
		h[last] = h[parent]
		last = parent
		if parent == 0 {
			break
		}
		parent = (parent - 1) / 2
		if !heapLess(h[parent], t) {
			break
		}
	}
	h[last] = t
}

// pushHeap is std::push_heap: h[len-1] is the new element.
func pushHeap(h []scored) { siftUp(h, len(h)) }

// floydSiftDown is libc++'s __floyd_sift_down: it moves the hole at the
// root down to a leaf, always along the "greater" child, and returns it.
func floydSiftDown(h []scored, n int) int {
	hole := 0
	for {
		child := 2*hole + 1
		if child+1 < n && heapLess(h[child], h[child+1]) {
			child++
		}
		h[hole] = h[child]
		hole = child
		if child > (n-2)/2 {
			return hole
		}
	}
}

// popHeap is std::pop_heap over h[:n]: the front moves to h[n-1].
func popHeap(h []scored, n int) {
	if n <= 1 {
		return
	}
	top := h[0]
	hole := floydSiftDown(h, n)
	last := n - 1
	if hole == last {
		h[hole] = top
		return
	}
	h[hole] = h[last]
	h[last] = top
	siftUp(h, hole+1)
}

// sortHeap is std::sort_heap: it leaves h sorted by descending score.
func sortHeap(h []scored) {
	for n := len(h); n > 1; n-- {
		popHeap(h, n)
	}
}

// offer adds s to the k-best heap as fastText's findKBest and dfs do:
// push, and drop the lowest when the heap grows past k.
func offer(h []scored, s scored, k int) []scored {
	h = append(h, s)
	pushHeap(h)
	if len(h) > k {
		popHeap(h, len(h))
		h = h[:len(h)-1]
	}
	return h
}
