package nn_test

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"testing"

	"github.com/wasmjobs/wasmjobs/internal/nn"
)

var fuzzLimits = nn.Limits{MaxDims: 8, MaxElements: 1 << 20, MaxTensorBytes: 1 << 22, MaxBuilders: 16, MaxLoadBytes: 1 << 20, MaxNameBytes: 256}

// FuzzTensorDecode decodes tensor records from random memory: it never
// panics, and what it accepts is consistent.
func FuzzTensorDecode(f *testing.F) {
	mem := make([]byte, 64)
	copy(mem, record(32, 2, 1, 40, 8))
	binary.LittleEndian.PutUint32(mem[32:], 1)
	binary.LittleEndian.PutUint32(mem[36:], 2)
	f.Add(mem, uint32(0))
	f.Add(mem, uint32(60))
	f.Add([]byte{}, uint32(0xffffffff))
	f.Fuzz(func(t *testing.T, mem []byte, ptr uint32) {
		tn, err := nn.DecodeTensor(nn.SliceMemory(mem), ptr, fuzzLimits)
		if err != nil {
			if nn.ErrnoOf(err) == nn.ErrnoRuntimeError {
				t.Fatalf("decode error without a guest errno: %v", err)
			}
			return
		}
		n := uint64(tn.Type.Size())
		for _, d := range tn.Dims {
			n *= uint64(d)
		}
		if n != uint64(len(tn.Data)) || len(tn.Dims) > 8 {
			t.Fatalf("accepted inconsistent tensor %s %v with %d bytes", tn.Type, tn.Dims, len(tn.Data))
		}
	})
}

// FuzzBuilderArray decodes load's builder array from random memory.
func FuzzBuilderArray(f *testing.F) {
	mem := make([]byte, 64)
	copy(mem, record(16, 8, 24, 4))
	f.Add(mem, uint32(0), uint32(2))
	f.Add(mem, uint32(60), uint32(1))
	f.Add(mem, uint32(0), uint32(0x80000000))
	f.Fuzz(func(t *testing.T, mem []byte, ptr, count uint32) {
		bs, err := nn.DecodeBuilders(nn.SliceMemory(mem), ptr, count, fuzzLimits)
		if err != nil {
			return
		}
		total := 0
		for _, b := range bs {
			total += len(b)
		}
		if uint32(len(bs)) != count || total > int(fuzzLimits.MaxLoadBytes) {
			t.Fatalf("accepted %d builders (%d bytes) for count %d", len(bs), total, count)
		}
	})
}

// FuzzHostCalls runs random call sequences with random arguments against
// random memory through the host functions: none panics.
func FuzzHostCalls(f *testing.F) {
	names := []string{"load", "load_by_name", "load_by_name_with_config", "init_execution_context",
		"set_input", "compute", "get_output", "finalize_execution_context", "unload", "compute_single"}
	f.Add(make([]byte, 256), []byte{1, 0, 0, 0, 0, 6, 0, 0, 0, 64, 0, 0, 0, 3, 64, 0, 0, 0, 80, 0, 0, 0, 4, 0, 0, 0})
	f.Add([]byte("double\x00\x00"), []byte{1, 0, 0, 0, 0, 6, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, mem, script []byte) {
		d := &doubler{}
		m, err := nn.New(nn.Config{
			Backends:  map[string]nn.Backend{"onnx": d},
			AllowLoad: true, MaxLoadBytes: 64, MaxContexts: 4, MaxTensorBytes: 1 << 12,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, release := m.BeginInstance(context.Background())
		defer release()
		sm := nn.SliceMemory(append([]byte(nil), mem...))
		for len(script) > 0 {
			name := names[int(script[0])%len(names)]
			script = script[1:]
			args := make([]uint32, nnImports[name])
			for i := range args {
				if len(script) >= 4 {
					args[i] = binary.LittleEndian.Uint32(script)
					script = script[4:]
				}
			}
			_ = m.Call(ctx, sm, name, args...)
		}
		release()
		if n := d.open.Load(); n != 0 {
			t.Fatalf("%d contexts open after release", n)
		}
		// Inputs, outputs and guest-loaded models together stay in budget.
		if p := m.PeakInstanceBytes(); p > 1<<12 {
			t.Fatalf("the instance held %d bytes, budget %d", p, 1<<12)
		}
	})
}
