package nn_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/nn/nntest"
	"github.com/wasmjobs/wasmjobs/internal/nn/onnx"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

const clsModel = "ch_ppocr_mobile_v2.0_cls_infer.onnx"

// clsFromGo loads the model at path with b and runs it on in from Go.
func clsFromGo(tb testing.TB, b nn.Backend, path string, in nn.Tensor) nn.Tensor {
	tb.Helper()
	g, err := b.LoadFile(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	defer g.Close()
	return nntest.Compute(tb, g, in)
}

// TestHostModuleSameBytes runs the cls model from Go and through the
// wasi_ephemeral_nn functions: the output bytes are identical.
func TestHostModuleSameBytes(t *testing.T) {
	t.Parallel()
	dir := testenv.ModelsDir(t)
	b, err := onnx.New(onnx.Config{LibraryPath: filepath.Join(dir, "libonnxruntime.so.1"), Device: onnx.DeviceCPU, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	want := clsFromGo(t, b, filepath.Join(dir, clsModel), nntest.Image(3, 192))

	m, err := nn.New(nn.Config{
		Models:   map[string]nn.Model{"ocr-cls": {Path: filepath.Join(dir, clsModel)}},
		Backends: map[string]nn.Backend{onnx.Name: b},
		Logger:   quietLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, release := m.BeginInstance(context.Background())
	defer release()
	mem := nn.SliceMemory(make([]byte, 1<<20))
	put32 := func(p uint32, v ...uint32) {
		for i, x := range v {
			binary.LittleEndian.PutUint32(mem[p+4*uint32(i):], x)
		}
	}
	copy(mem[0:], "ocr-cls")
	if e := m.Call(ctx, mem, "load_by_name", 0, 7, 16); e != 0 {
		t.Fatalf("load_by_name: %s", e)
	}
	if e := m.Call(ctx, mem, "init_execution_context", binary.LittleEndian.Uint32(mem[16:]), 20); e != 0 {
		t.Fatalf("init: %s", e)
	}
	c := binary.LittleEndian.Uint32(mem[20:])
	in := nntest.Image(3, 192)
	put32(64, in.Dims...)
	copy(mem[4096:], in.Data)
	put32(128, 64, 4, uint32(nn.F32), 4096, uint32(len(in.Data)))
	if e := m.Call(ctx, mem, "set_input", c, 0, 128); e != 0 {
		t.Fatalf("set_input: %s", e)
	}
	if e := m.Call(ctx, mem, "compute", c); e != 0 {
		t.Fatalf("compute: %s", e)
	}
	out := uint32(512 << 10)
	if e := m.Call(ctx, mem, "get_output", c, 0, out, 64, 24); e != 0 {
		t.Fatalf("get_output: %s", e)
	}
	got := mem[out : out+binary.LittleEndian.Uint32(mem[24:])]
	if !bytes.Equal(got, want.Data) {
		t.Fatalf("host module output %x, Go %x", got, want.Data)
	}
	// A tensor of the wrong type for the model is the guest's error.
	put32(128, 64, 4, uint32(nn.U8), 4096, uint32(len(in.Data)/4))
	if e := m.Call(ctx, mem, "set_input", c, 0, 128); e != nn.ErrnoInvalidArgument {
		t.Fatalf("u8 tensor for an f32 model: %s", e)
	}
}
