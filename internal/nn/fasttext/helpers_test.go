package fasttext

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// lidModel returns lid.176.ftz from the repository's models/ directory,
// loaded once. Without it the test is skipped, or fails when
// WASMJOBS_TEST_REQUIRE=1.
func lidModel(tb testing.TB) *Model {
	tb.Helper()
	root := testenv.RepoRoot(tb)
	lidOnce.Do(func() {
		lidPath = filepath.Join(root, "models", "lid.176.ftz")
		lid, lidErr = LoadFile(lidPath)
	})
	if lidErr != nil {
		if os.IsNotExist(lidErr) && os.Getenv(testenv.EnvRequire) != "1" {
			tb.Skipf("models/lid.176.ftz not found (run `make models`): %v", lidErr)
		}
		tb.Fatalf("load lid.176.ftz: %v", lidErr)
	}
	return lid
}

var (
	lidOnce sync.Once
	lid     *Model
	lidPath string
	lidErr  error
)

// testPQ is a product quantizer as written to a file.
type testPQ struct {
	dim, nsubq, dsub, lastdsub int32
	centroids                  []float32 // dim*256
}

// testQuant is a quantized matrix as written to a file.
type testQuant struct {
	qnorm     bool
	m, n      int64
	codes     []byte
	pq        testPQ
	normCodes []byte
	npq       testPQ
}

// testModel describes a model file for encodeModel.
type testModel struct {
	version   int32
	args      Args
	entries   []entry // words, then labels
	nwords    int32
	pruneSize int64
	prune     [][2]int32
	in, out   []float32 // dense matrices, dim columns
	quantIn   *testQuant
	quantOut  *testQuant
}

// encodeModel writes tm in fastText's binary format.
func encodeModel(tm testModel) []byte {
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	w(int32(fileMagic))
	w(tm.version)
	a := tm.args
	w([]int32{a.Dim, a.WS, a.Epoch, a.MinCount, a.Neg, a.WordNgrams, int32(a.Loss), int32(a.Model), a.Bucket, a.MinN, a.MaxN, a.LRUpdateRate})
	w(a.T)
	w(int32(len(tm.entries)))
	w(tm.nwords)
	w(int32(len(tm.entries)) - tm.nwords)
	w(int64(1000))
	w(tm.pruneSize)
	for _, e := range tm.entries {
		b.WriteString(e.word)
		b.WriteByte(0)
		w(e.count)
		w(e.label)
	}
	for _, p := range tm.prune {
		w(p)
	}
	matrix := func(dense []float32, q *testQuant) {
		if q == nil {
			rows := int64(0)
			if a.Dim > 0 {
				rows = int64(len(dense)) / int64(a.Dim)
			}
			w(rows)
			w(int64(a.Dim))
			w(dense)
			return
		}
		w(q.qnorm)
		w(q.m)
		w(q.n)
		w(int32(len(q.codes)))
		b.Write(q.codes)
		pq := func(p testPQ) {
			w([]int32{p.dim, p.nsubq, p.dsub, p.lastdsub})
			w(p.centroids)
		}
		pq(q.pq)
		if q.qnorm {
			b.Write(q.normCodes)
			pq(q.npq)
		}
	}
	w(tm.quantIn != nil)
	matrix(tm.in, tm.quantIn)
	w(a.QOut)
	matrix(tm.out, tm.quantOut)
	return b.Bytes()
}

// tinyModel is a supervised model with dim 2, words "a", "b" and "</s>",
// three labels with counts 3, 2, 1, no subwords and dense matrices.
func tinyModel(loss LossName) testModel {
	outRows := 3
	if loss == LossHS {
		outRows = 2
	}
	out := []float32{0.5, -1, 2, 0.25, -0.75, 1.5}
	return testModel{
		version: 12,
		args: Args{Dim: 2, WS: 5, Epoch: 5, MinCount: 1, Neg: 5, WordNgrams: 1,
			Loss: loss, Model: ModelSupervised, LRUpdateRate: 100, T: 1e-4},
		entries: []entry{
			{word: "a", count: 5}, {word: "b", count: 4}, {word: eos, count: 3},
			{word: "__label__x", count: 3, label: true},
			{word: "__label__y", count: 2, label: true},
			{word: "__label__z", count: 1, label: true},
		},
		nwords:    3,
		pruneSize: -1,
		in:        []float32{1, 0, 0, 1, 0.5, 0.5},
		out:       out[:2*outRows],
	}
}

// loadTest loads tm, failing the test on error.
func loadTest(tb testing.TB, tm testModel) *Model {
	tb.Helper()
	m, err := Load(encodeModel(tm))
	if err != nil {
		tb.Fatalf("Load: %v", err)
	}
	return m
}
