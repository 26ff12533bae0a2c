package fasttext

import (
	"math"
	"testing"
)

// quantTiny is tinyModel(LossHS) with a product-quantized input matrix
// (dsub 1, so each coordinate is one centroid) and, with qout, a quantized
// output matrix, both encoding exactly the dense values times the norms.
func quantTiny(qout bool) testModel {
	tm := tinyModel(LossHS)
	quant := func(dense []float32, qnorm bool) *testQuant {
		rows := len(dense) / 2
		q := &testQuant{qnorm: qnorm, m: int64(rows), n: 2,
			pq: testPQ{dim: 2, nsubq: 2, dsub: 1, lastdsub: 1, centroids: make([]float32, 2*ksub)}}
		// Centroid c of either sub-quantizer is c/8 - 4 (exact in float).
		for i := range q.pq.centroids {
			q.pq.centroids[i] = float32(i%ksub)/8 - 4
		}
		if qnorm {
			q.npq = testPQ{dim: 1, nsubq: 1, dsub: 1, lastdsub: 1, centroids: make([]float32, ksub)}
			for i := range q.npq.centroids {
				q.npq.centroids[i] = float32(i) / 4
			}
		}
		for r := range rows {
			norm := float32(1)
			if qnorm {
				q.normCodes = append(q.normCodes, 8) // norm 2
				norm = 2
			}
			for c := range 2 {
				q.codes = append(q.codes, byte((dense[2*r+c]/norm+4)*8))
			}
		}
		return q
	}
	tm.quantIn = quant(tm.in, true)
	if qout {
		tm.args.QOut = true
		tm.quantOut = quant(tm.out, false)
	}
	return tm
}

func TestQuantizedMatchesDense(t *testing.T) {
	t.Parallel()
	dense := loadTest(t, tinyModel(LossHS))
	for _, qout := range []bool{false, true} {
		q := loadTest(t, quantTiny(qout))
		if !q.Quantized() || q.Args().QOut != qout {
			t.Fatalf("quantized %v, qout %v", q.Quantized(), q.Args().QOut)
		}
		for _, text := range []string{"a", "b a", "", "unknown"} {
			want, got := dense.Predict(text, 0, 0), q.Predict(text, 0, 0)
			if len(got) != len(want) {
				t.Fatalf("qout %v %q: %v, want %v", qout, text, got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("qout %v %q: %v, want %v", qout, text, got, want)
				}
			}
		}
	}
}

func TestProductQuantizerLastSub(t *testing.T) {
	t.Parallel()
	// dim 5 with dsub 2: sub-vectors of 2, 2 and a last one of 1.
	p := &productQuantizer{dim: 5, nsubq: 3, dsub: 2, lastdsub: 1, centroids: make([]float32, 5*ksub)}
	for i := range p.centroids {
		p.centroids[i] = float32(i)
	}
	code := []uint8{1, 2, 3}
	x := make([]float32, 5)
	p.addCode(x, code, 1)
	// centroid(m, i): m < last at (m*256+i)*2, last at m*256*2 + i.
	want := []float32{2, 3, 516, 517, 1027}
	for i := range want {
		if x[i] != want[i] {
			t.Fatalf("addCode = %v, want %v", x, want)
		}
	}
	ones := []float32{1, 1, 1, 1, 1}
	var sum float32
	for _, v := range want {
		sum += v
	}
	if got := p.mulCode(ones, code, 0.5); math.Abs(float64(got-sum/2)) > 1e-3 {
		t.Fatalf("mulCode = %v, want %v", got, sum/2)
	}
}
