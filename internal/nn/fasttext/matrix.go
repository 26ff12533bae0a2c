package fasttext

import (
	"fmt"
	"math"
)

// matrix is the read-only part of fastText's Matrix used by prediction.
// Row indices are validated at load time, so the methods do not check them.
type matrix interface {
	rows() int64
	// addRowTo adds row i to x (QuantMatrix scales it by its stored norm).
	addRowTo(x []float32, i int32)
	// dotRow returns the dot product of row i and x.
	dotRow(x []float32, i int32) float32
}

var (
	_ matrix = (*denseMatrix)(nil)
	_ matrix = (*quantMatrix)(nil)
)

// denseMatrix is fastText's DenseMatrix: m rows of n float32, row-major.
type denseMatrix struct {
	m, n int64
	data []float32
}

func readDense(r *reader, dim int32, what string) (*denseMatrix, error) {
	m, err := r.i64(what + " rows")
	if err != nil {
		return nil, err
	}
	n, err := r.i64(what + " cols")
	if err != nil {
		return nil, err
	}
	if err := checkShape(m, n, dim, what); err != nil {
		return nil, err
	}
	if m > int64(r.remaining())/4/n {
		return nil, fmt.Errorf("%w: %s is %dx%d but only %d bytes are left", ErrCorrupt, what, m, n, r.remaining())
	}
	data, err := r.f32s(m*n, what)
	if err != nil {
		return nil, err
	}
	return &denseMatrix{m: m, n: n, data: data}, nil
}

func checkShape(m, n int64, dim int32, what string) error {
	if n != int64(dim) {
		return fmt.Errorf("%w: %s has %d columns, want dim %d", ErrCorrupt, what, n, dim)
	}
	if m < 0 || m > math.MaxInt32 {
		return fmt.Errorf("%w: %s has %d rows", ErrCorrupt, what, m)
	}
	return nil
}

func (d *denseMatrix) rows() int64 { return d.m }

func (d *denseMatrix) addRowTo(x []float32, i int32) {
	row := d.data[int64(i)*d.n : int64(i+1)*d.n]
	for j, v := range row {
		x[j] += v
	}
}

func (d *denseMatrix) dotRow(x []float32, i int32) float32 {
	row := d.data[int64(i)*d.n : int64(i+1)*d.n]
	var s float32
	for j, v := range row {
		// The explicit conversion rounds the product, so the compiler
		// cannot fuse it into an FMA: fastText's wasm build has none.
		s += float32(v * x[j])
	}
	return s
}

// ksub is the number of centroids per sub-quantizer (8-bit codes).
const ksub = 256

// productQuantizer is fastText's ProductQuantizer: a vector of dim floats
// is split into nsubq sub-vectors of dsub floats (the last one lastdsub),
// each encoded by one byte selecting one of 256 centroids.
type productQuantizer struct {
	dim, nsubq, dsub, lastdsub int32
	centroids                  []float32
}

func readPQ(r *reader, what string) (*productQuantizer, error) {
	var p productQuantizer
	for _, f := range []struct {
		v    *int32
		name string
	}{{&p.dim, "dim"}, {&p.nsubq, "nsubq"}, {&p.dsub, "dsub"}, {&p.lastdsub, "lastdsub"}} {
		v, err := r.i32(what + " " + f.name)
		if err != nil {
			return nil, err
		}
		*f.v = v
	}
	// These are the relations ProductQuantizer's constructor establishes;
	// get_centroids, addcode and mulcode index by them unchecked.
	if p.dim <= 0 || p.dsub <= 0 || p.nsubq <= 0 || p.lastdsub <= 0 || p.lastdsub > p.dsub ||
		int64(p.nsubq-1)*int64(p.dsub)+int64(p.lastdsub) != int64(p.dim) {
		return nil, fmt.Errorf("%w: %s has dim %d, nsubq %d, dsub %d, lastdsub %d",
			ErrCorrupt, what, p.dim, p.nsubq, p.dsub, p.lastdsub)
	}
	c, err := r.f32s(int64(p.dim)*ksub, what+" centroids")
	if err != nil {
		return nil, err
	}
	p.centroids = c
	return &p, nil
}

// centroid returns centroid i of sub-quantizer m (get_centroids).
func (p *productQuantizer) centroid(m int32, i uint8) []float32 {
	if m == p.nsubq-1 {
		off := int(m)*ksub*int(p.dsub) + int(i)*int(p.lastdsub)
		return p.centroids[off : off+int(p.lastdsub)]
	}
	off := (int(m)*ksub + int(i)) * int(p.dsub)
	return p.centroids[off : off+int(p.dsub)]
}

// addCode adds alpha times the decoded vector for code to x.
func (p *productQuantizer) addCode(x []float32, code []uint8, alpha float32) {
	for m := range p.nsubq {
		c := p.centroid(m, code[m])
		xs := x[int(m)*int(p.dsub):]
		for n, v := range c {
			xs[n] += float32(alpha * v)
		}
	}
}

// mulCode returns alpha times the dot product of x and the decoded vector.
func (p *productQuantizer) mulCode(x []float32, code []uint8, alpha float32) float32 {
	var s float32
	for m := range p.nsubq {
		c := p.centroid(m, code[m])
		xs := x[int(m)*int(p.dsub):]
		for n, v := range c {
			s += float32(xs[n] * v)
		}
	}
	return s * alpha
}

// quantMatrix is fastText's QuantMatrix: rows product-quantized by pq and,
// with qnorm, their norms quantized separately by npq.
type quantMatrix struct {
	m, n      int64
	qnorm     bool
	codes     []uint8 // nsubq bytes per row
	pq        *productQuantizer
	normCodes []uint8 // one byte per row when qnorm
	npq       *productQuantizer
}

func readQuant(r *reader, dim int32, what string) (*quantMatrix, error) {
	q := &quantMatrix{}
	var err error
	if q.qnorm, err = r.boolean(what + " qnorm"); err != nil {
		return nil, err
	}
	if q.m, err = r.i64(what + " rows"); err != nil {
		return nil, err
	}
	if q.n, err = r.i64(what + " cols"); err != nil {
		return nil, err
	}
	if err := checkShape(q.m, q.n, dim, what); err != nil {
		return nil, err
	}
	codesize, err := r.i32(what + " codesize")
	if err != nil {
		return nil, err
	}
	codes, err := r.take(int(codesize), what+" codes")
	if err != nil {
		return nil, err
	}
	q.codes = codes
	if q.pq, err = readPQ(r, what+" pq"); err != nil {
		return nil, err
	}
	if int64(q.pq.dim) != q.n {
		return nil, fmt.Errorf("%w: %s pq dim %d, want %d", ErrCorrupt, what, q.pq.dim, q.n)
	}
	if int64(codesize) < q.m*int64(q.pq.nsubq) {
		return nil, fmt.Errorf("%w: %s has %d code bytes, want %d rows x %d", ErrCorrupt, what, codesize, q.m, q.pq.nsubq)
	}
	if q.qnorm {
		if q.normCodes, err = r.take(int(q.m), what+" norm codes"); err != nil {
			return nil, err
		}
		if q.npq, err = readPQ(r, what+" norm pq"); err != nil {
			return nil, err
		}
	}
	return q, nil
}

func (q *quantMatrix) rows() int64 { return q.m }

func (q *quantMatrix) norm(i int32) float32 {
	if !q.qnorm {
		return 1
	}
	return q.npq.centroid(0, q.normCodes[i])[0]
}

func (q *quantMatrix) code(i int32) []uint8 {
	n := int(q.pq.nsubq)
	return q.codes[int(i)*n : int(i)*n+n]
}

func (q *quantMatrix) addRowTo(x []float32, i int32) {
	q.pq.addCode(x, q.code(i), q.norm(i))
}

func (q *quantMatrix) dotRow(x []float32, i int32) float32 {
	return q.pq.mulCode(x, q.code(i), q.norm(i))
}
