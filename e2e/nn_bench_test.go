package e2e_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/guests/guesttest"
	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/nn/fasttext"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// benchModels are the shipped models with one typical input each.
var benchModels = []struct {
	name string
	typ  nn.TensorType
	dims []uint32
	out  int // output 0's size in bytes
}{
	{"ocr-det", nn.F32, []uint32{1, 3, 96, 480}, 4 * 96 * 480},
	{"ocr-cls", nn.F32, []uint32{1, 3, 48, 192}, 4 * 2},
	{"ocr-rec", nn.F32, []uint32{1, 3, 48, 320}, 4 * 40 * 6625},
	{"langid", nn.U8, nil, 4 * 5},
}

// callsPerRun is how many calls BenchmarkModel's call runs make in one
// guest instance.
const callsPerRun = 200

const benchSentence = "The train to the city leaves every morning at half past seven."

func benchInput(typ nn.TensorType, dims []uint32) ([]byte, []uint32) {
	if typ == nn.U8 {
		return []byte(benchSentence), []uint32{uint32(len(benchSentence))}
	}
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	b := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(math.Sin(float64(i)*0.01))*0.8))
	}
	return b, dims
}

// BenchmarkModel compares each shipped model run directly from Go with the
// same call made by a guest through wasi_ephemeral_nn:
//
//   - direct: set the input, compute and read the output on one context;
//   - call: the same from inside one guest instance (the nnrun guest with
//     repeat=callsPerRun), per call: what a model call costs a guest, less
//     the instance (a run of one call is subtracted); of-direct is its time
//     over that of as many direct calls made between its runs;
//   - guest: one call in a fresh sandbox instance, as a one-call job pays.
func BenchmarkModel(b *testing.B) {
	dir := testenv.ModelsDir(b)
	ob := newONNX(b, 0, 1)
	models := map[string]nn.Model{}
	for _, m := range benchModels {
		models[m.name] = nn.Model{Path: filepath.Join(dir, modelFiles[m.name])}
	}
	mod, err := nn.New(nn.Config{Models: models, Backends: map[string]nn.Backend{"onnx": ob, "fasttext": fasttext.New()}})
	if err != nil {
		b.Fatal(err)
	}
	defer mod.Close()
	ctx := context.Background()
	if err := mod.Preload(ctx); err != nil {
		b.Fatal(err)
	}
	rt := newRuntime(b, mod)
	guestMod, err := rt.Compile(ctx, guesttest.NNRun, "")
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range benchModels {
		data, dims := benchInput(m.typ, m.dims)
		g, err := mod.Graph(ctx, m.name)
		if err != nil {
			b.Fatal(err)
		}
		ec, err := g.NewContext()
		if err != nil {
			b.Fatal(err)
		}
		direct := func(b *testing.B) {
			if err := ec.SetInput(0, nn.Tensor{Type: m.typ, Dims: dims, Data: data}); err != nil {
				b.Fatal(err)
			}
			if err := ec.Compute(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := ec.Output(0); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(m.name+"/direct", func(b *testing.B) {
			for b.Loop() {
				direct(b)
			}
		})
		strDims := make([]string, len(dims))
		for i, d := range dims {
			strDims[i] = fmt.Sprint(d)
		}
		typ := map[nn.TensorType]string{nn.F32: "f32", nn.U8: "u8"}[m.typ]
		params := map[string]string{"model": m.name, "dims": strings.Join(strDims, ","), "type": typ, "out": fmt.Sprint(m.out)}
		b.Run(m.name+"/call", func(b *testing.B) {
			run := func(calls int) time.Duration {
				p := maps.Clone(params)
				p["repeat"] = fmt.Sprint(calls)
				start := time.Now()
				if _, err := rt.Run(ctx, guestMod, sandbox.RunOptions{Stdin: data, Params: p, Timeout: time.Minute, MaxOutput: 64 << 20}); err != nil {
					b.Fatal(err)
				}
				return time.Since(start)
			}
			b.ResetTimer()
			// The marginal cost of a call: a run of callsPerRun calls less
			// a run of one, per extra call. The instance's own cost is
			// …/guest's; it is not a model call's.
			// Each round also makes as many direct calls, so that of-direct
			// compares the two over the same stretch of time (the machine
			// is shared: sub-benchmarks run one after the other can see
			// different loads).
			var extra, directTime time.Duration
			calls := 0
			for calls < b.N {
				extra += run(callsPerRun) - run(1)
				start := time.Now()
				for range callsPerRun - 1 {
					direct(b)
				}
				directTime += time.Since(start)
				calls += callsPerRun - 1
			}
			b.StopTimer()
			b.ReportMetric(float64(extra.Nanoseconds())/float64(calls), "ns/call")
			b.ReportMetric(float64(extra)/float64(directTime), "of-direct")
		})
		ec.Close()
		b.Run(m.name+"/guest", func(b *testing.B) {
			for b.Loop() {
				if _, err := rt.Run(ctx, guestMod, sandbox.RunOptions{Stdin: data, Params: params, Timeout: time.Minute, MaxOutput: 64 << 20}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
