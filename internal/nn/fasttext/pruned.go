package fasttext

import "math/bits"

// prunedIndex is a pruned model's pruneidx: the hashed n-gram buckets that
// quantization kept, each with its row offset after the words. fastText
// keeps it in a hash map and looks up every char n-gram of every word in
// it, most of them buckets that were pruned away; that made the lookups
// about 40% of a prediction. Here a bitset over all buckets answers a
// pruned bucket with one bit test, and a kept bucket's row is found by
// counting the kept buckets before it (rank), all in a few hundred KB that
// stay in cache (lid.176: 2M buckets, 42,765 kept: 250 KB of bits). A model
// whose bitset would be large for what it keeps (few buckets kept out of
// very many) uses a map, as fastText does, so that memory stays in
// proportion to the model file.
type prunedIndex struct {
	bits  []uint64 // bit b set: bucket b was kept
	ranks []uint32 // ranks[i]: the kept buckets in bits[:i*rankEvery]
	rows  []int32  // the rows of the kept buckets, in bucket order
	// sparse holds the buckets when the bitset is not used.
	sparse map[int32]int32
}

// rankEvery is how many bitset words one rank entry covers.
const rankEvery = 8

// newPrunedIndex indexes pruneidx, a kept bucket → row map, for a model of
// bucket buckets. Keys outside [0, bucket) are dropped: no n-gram hashes
// there.
func newPrunedIndex(pruneidx map[int32]int32, bucket int32) prunedIndex {
	words := (int64(bucket) + 63) / 64
	if bucket <= 0 || words*8+(words/rankEvery+1)*4 > 16*int64(len(pruneidx)) {
		return prunedIndex{sparse: pruneidx}
	}
	x := prunedIndex{bits: make([]uint64, words)}
	n := 0
	for k := range pruneidx {
		if k >= 0 && k < bucket {
			x.bits[k>>6] |= 1 << (k & 63)
			n++
		}
	}
	x.ranks = make([]uint32, words/rankEvery+1)
	var r uint32
	for i, w := range x.bits {
		if i%rankEvery == 0 {
			x.ranks[i/rankEvery] = r
		}
		r += uint32(bits.OnesCount64(w))
	}
	x.rows = make([]int32, n)
	for k, v := range pruneidx {
		if k >= 0 && k < bucket {
			i, _ := x.rank(k)
			x.rows[i] = v
		}
	}
	return x
}

// rank returns how many kept buckets precede bucket id, and whether id was
// kept; id must be below the model's bucket count when the bitset is used.
func (x *prunedIndex) rank(id int32) (int, bool) {
	w := uint32(id) >> 6
	if int64(w) >= int64(len(x.bits)) {
		return 0, false
	}
	word, bit := x.bits[w], uint64(1)<<(uint32(id)&63)
	if word&bit == 0 {
		return 0, false
	}
	r := int(x.ranks[w/rankEvery])
	for i := w / rankEvery * rankEvery; i < w; i++ {
		r += bits.OnesCount64(x.bits[i])
	}
	return r + bits.OnesCount64(word&(bit-1)), true
}

// row returns the row offset of bucket id, if the model kept it.
func (x *prunedIndex) row(id int32) (int32, bool) {
	if x.bits == nil {
		v, ok := x.sparse[id]
		return v, ok
	}
	i, ok := x.rank(id)
	if !ok {
		return 0, false
	}
	return x.rows[i], true
}
