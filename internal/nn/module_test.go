package nn_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
)

var (
	_ sandbox.HostModule     = (*nn.Module)(nil)
	_ sandbox.InstanceScoped = (*nn.Module)(nil)
)

// guest is one instance of proxyModule with the nn host module, and a bump
// allocator over its memory.
type guest struct {
	tb   testing.TB
	ctx  context.Context
	mod  api.Module
	next uint32
}

// newGuest instantiates the nn module m and a proxy guest; the instance's
// handles are released at the end of the test.
func newGuest(tb testing.TB, m *nn.Module) *guest {
	tb.Helper()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	tb.Cleanup(func() { r.Close(ctx) })
	if err := m.Instantiate(ctx, r); err != nil {
		tb.Fatal(err)
	}
	ictx, release := m.BeginInstance(ctx)
	tb.Cleanup(release)
	mod, err := r.InstantiateWithConfig(ictx, proxyModule(4, nnImports), wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		tb.Fatal(err)
	}
	return &guest{tb: tb, ctx: ictx, mod: mod, next: 1024}
}

// call calls a host function through the guest and returns the errno.
func (g *guest) call(name string, args ...uint32) nn.Errno {
	g.tb.Helper()
	p := make([]uint64, len(args))
	for i, a := range args {
		p[i] = api.EncodeU32(a)
	}
	res, err := g.mod.ExportedFunction(name).Call(g.ctx, p...)
	if err != nil {
		g.tb.Fatalf("%s trapped: %v", name, err)
	}
	return nn.Errno(res[0])
}

// put copies b into guest memory and returns its address.
func (g *guest) put(b []byte) uint32 {
	g.tb.Helper()
	p := g.next
	if !g.mod.Memory().Write(p, b) {
		g.tb.Fatal("guest memory full")
	}
	g.next += (uint32(len(b)) + 7) &^ 7
	if len(b) == 0 {
		g.next += 8
	}
	return p
}

func (g *guest) u32(p uint32) uint32 {
	v, ok := g.mod.Memory().ReadUint32Le(p)
	if !ok {
		g.tb.Fatalf("read %#x", p)
	}
	return v
}

// tensor writes a tensor record and returns its address.
func (g *guest) tensor(typ uint32, dims []uint32, data []byte) uint32 {
	db := make([]byte, 4*len(dims))
	for i, d := range dims {
		binary.LittleEndian.PutUint32(db[4*i:], d)
	}
	dp, tp := g.put(db), g.put(data)
	return g.put(record(dp, uint32(len(dims)), typ, tp, uint32(len(data))))
}

func record(v ...uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}

// loadByName loads a model and returns the errno and graph handle.
func (g *guest) loadByName(name string) (nn.Errno, uint32) {
	np, out := g.put([]byte(name)), g.put(make([]byte, 4))
	e := g.call("load_by_name", np, uint32(len(name)), out)
	return e, g.u32(out)
}

func (g *guest) initContext(graph uint32) (nn.Errno, uint32) {
	out := g.put(make([]byte, 4))
	e := g.call("init_execution_context", graph, out)
	return e, g.u32(out)
}

func f32s(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func newFakeModule(tb testing.TB, cfg nn.Config) (*nn.Module, *doubler) {
	tb.Helper()
	d := &doubler{}
	dir := tb.TempDir()
	model := filepath.Join(dir, "double.onnx")
	keys := filepath.Join(dir, "keys.txt")
	if err := os.WriteFile(model, []byte("x"), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keys, []byte("a\nb\nc\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	cfg.Models = map[string]nn.Model{"double": {Path: model}, "keys": {Path: keys}}
	cfg.Backends = map[string]nn.Backend{"onnx": d}
	m, err := nn.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m, d
}

func TestHappyPath(t *testing.T) {
	t.Parallel()
	m, d := newFakeModule(t, nn.Config{})
	g := newGuest(t, m)
	e, graph := g.loadByName("double")
	if e != nn.ErrnoSuccess {
		t.Fatalf("load_by_name: %s", e)
	}
	if e, again := g.loadByName("double"); e != 0 || again != graph {
		t.Fatalf("second load_by_name: %s, handle %d, want %d", e, again, graph)
	}
	e, c := g.initContext(graph)
	if e != 0 {
		t.Fatalf("init_execution_context: %s", e)
	}
	if e := g.call("set_input", c, 0, g.tensor(1, []uint32{1, 4}, f32s(1, 2, 3, 4))); e != 0 {
		t.Fatalf("set_input: %s", e)
	}
	if e := g.call("compute", c); e != 0 {
		t.Fatalf("compute: %s", e)
	}
	buf, written := g.put(make([]byte, 16)), g.put(make([]byte, 4))
	if e := g.call("get_output", c, 0, buf, 16, written); e != 0 {
		t.Fatalf("get_output: %s", e)
	}
	got, _ := g.mod.Memory().Read(buf, g.u32(written))
	if !bytes.Equal(got, f32s(2, 4, 6, 8)) {
		t.Fatalf("output %v", got)
	}
	if e := g.call("finalize_execution_context", c); e != 0 {
		t.Fatalf("finalize: %s", e)
	}
	if n := d.open.Load(); n != 0 {
		t.Fatalf("%d contexts open after finalize", n)
	}
}

func TestTextModel(t *testing.T) {
	t.Parallel()
	m, _ := newFakeModule(t, nn.Config{})
	g := newGuest(t, m)
	e, graph := g.loadByName("keys")
	if e != 0 {
		t.Fatal(e)
	}
	_, c := g.initContext(graph)
	buf, written := g.put(make([]byte, 64)), g.put(make([]byte, 4))
	if e := g.call("get_output", c, 0, buf, 64, written); e != nn.ErrnoInvalidArgument {
		t.Fatalf("get_output before compute: %s", e)
	}
	if e := g.call("compute", c); e != 0 {
		t.Fatal(e)
	}
	if e := g.call("get_output", c, 0, buf, 64, written); e != 0 {
		t.Fatal(e)
	}
	if got, _ := g.mod.Memory().Read(buf, g.u32(written)); string(got) != "a\nb\nc\n" {
		t.Fatalf("got %q", got)
	}
}

// TestBadUse drives every kind of misuse through a real wasm guest: each
// returns its errno and none panics or traps.
func TestBadUse(t *testing.T) {
	t.Parallel()
	const oob = 4*65536 - 2 // inside the last page, but a u32 there is not
	m, _ := newFakeModule(t, nn.Config{MaxContexts: 3, MaxTensorBytes: 64})

	setup := func(t *testing.T) (*guest, uint32) {
		g := newGuest(t, m)
		_, graph := g.loadByName("double")
		e, c := g.initContext(graph)
		if e != 0 {
			t.Fatal(e)
		}
		return g, c
	}
	cases := []struct {
		name string
		want nn.Errno
		run  func(g *guest, c uint32) nn.Errno
	}{
		{"unknown graph name", nn.ErrnoNotFound, func(g *guest, _ uint32) nn.Errno { e, _ := g.loadByName("nope"); return e }},
		{"name out of range", nn.ErrnoInvalidArgument, func(g *guest, _ uint32) nn.Errno {
			return g.call("load_by_name", oob, 100, g.put(make([]byte, 4)))
		}},
		{"graph pointer out of range", nn.ErrnoInvalidArgument, func(g *guest, _ uint32) nn.Errno {
			return g.call("load_by_name", g.put([]byte("double")), 6, oob)
		}},
		{"name length huge", nn.ErrnoInvalidArgument, func(g *guest, _ uint32) nn.Errno {
			return g.call("load_by_name", 0, math.MaxUint32, g.put(make([]byte, 4)))
		}},
		{"unknown graph handle", nn.ErrnoInvalidArgument, func(g *guest, _ uint32) nn.Errno {
			return g.call("init_execution_context", 99, g.put(make([]byte, 4)))
		}},
		{"tensor record out of range", nn.ErrnoInvalidArgument, func(g *guest, c uint32) nn.Errno { return g.call("set_input", c, 0, oob) }},
		{"dims out of range", nn.ErrnoInvalidArgument, func(g *guest, c uint32) nn.Errno {
			return g.call("set_input", c, 0, g.put(record(oob, 2, 1, 0, 32)))
		}},
		{"data out of range", nn.ErrnoInvalidArgument, func(g *guest, c uint32) nn.Errno {
			return g.call("set_input", c, 0, g.put(record(g.put(record(1, 4)), 2, 1, oob, 16)))
		}},
		{"huge dims", nn.ErrnoInvalidArgument, func(g *guest, c uint32) nn.Errno {
			return g.call("set_input", c, 0, g.tensor(1, []uint32{1 << 31, 1 << 31, 1 << 31}, nil))
		}},
		{"too many dims", nn.ErrnoInvalidArgument, func(g *guest, c uint32) nn.Errno {
			return g.call("set_input", c, 0, g.tensor(1, []uint32{1, 1, 1, 1, 1, 1, 1, 1, 1}, f32s(1)))
		}},
		{"data length mismatch", nn.ErrnoInvalidArgument, func(g *guest, c uint32) nn.Errno {
			return g.call("set_input", c, 0, g.tensor(1, []uint32{1, 4}, f32s(1, 2, 3)))
		}},
		{"unknown tensor type", nn.ErrnoInvalidArgument, func(g *guest, c uint32) nn.Errno {
			return g.call("set_input", c, 0, g.tensor(9, []uint32{1, 4}, make([]byte, 4)))
		}},
		{"wrong tensor type", nn.ErrnoInvalidArgument, func(g *guest, c uint32) nn.Errno {
			return g.call("set_input", c, 0, g.tensor(3, []uint32{1, 4}, make([]byte, 4)))
		}},
		{"padding bytes of the type are ignored", nn.ErrnoSuccess, func(g *guest, c uint32) nn.Errno {
			return g.call("set_input", c, 0, g.tensor(0xdeadbe01, []uint32{1, 4}, f32s(1, 2, 3, 4)))
		}},
		{"tensor bytes over the instance cap", nn.ErrnoTooLarge, func(g *guest, c uint32) nn.Errno {
			return g.call("set_input", c, 0, g.tensor(1, []uint32{5, 4}, make([]byte, 80)))
		}},
		{"compute before set_input", nn.ErrnoInvalidArgument, func(g *guest, c uint32) nn.Errno { return g.call("compute", c) }},
		{"get_output before compute", nn.ErrnoInvalidArgument, func(g *guest, c uint32) nn.Errno {
			return g.call("get_output", c, 0, g.put(make([]byte, 16)), 16, g.put(make([]byte, 4)))
		}},
		{"get_output buffer too small", nn.ErrnoTooLarge, func(g *guest, c uint32) nn.Errno {
			g.call("set_input", c, 0, g.tensor(1, []uint32{1, 4}, f32s(1, 2, 3, 4)))
			g.call("compute", c)
			w := g.put(make([]byte, 4))
			e := g.call("get_output", c, 0, g.put(make([]byte, 8)), 8, w)
			if g.u32(w) != 16 {
				g.tb.Errorf("bytes_written = %d, want the 16 needed", g.u32(w))
			}
			return e
		}},
		{"get_output buffer out of range", nn.ErrnoInvalidArgument, func(g *guest, c uint32) nn.Errno {
			return g.call("get_output", c, 0, oob, 16, g.put(make([]byte, 4)))
		}},
		{"finalized context", nn.ErrnoInvalidArgument, func(g *guest, c uint32) nn.Errno {
			if e := g.call("finalize_execution_context", c); e != 0 {
				return e
			}
			return g.call("compute", c)
		}},
		{"finalize twice", nn.ErrnoInvalidArgument, func(g *guest, c uint32) nn.Errno {
			g.call("finalize_execution_context", c)
			return g.call("finalize_execution_context", c)
		}},
		{"too many contexts", nn.ErrnoBusy, func(g *guest, _ uint32) nn.Errno {
			g.initContext(0)
			g.initContext(0)
			e, _ := g.initContext(0)
			return e
		}},
		{"load disabled", nn.ErrnoUnsupportedOperation, func(g *guest, _ uint32) nn.Errno {
			model := g.put([]byte("doubler"))
			return g.call("load", g.put(record(model, 7)), 1, 1, 0, g.put(make([]byte, 4)))
		}},
		{"unload unknown graph", nn.ErrnoInvalidArgument, func(g *guest, _ uint32) nn.Errno { return g.call("unload", 42) }},
		{"compute_single", nn.ErrnoUnsupportedOperation, func(g *guest, c uint32) nn.Errno { return g.call("compute_single", c) }},
		{"get_output_single", nn.ErrnoUnsupportedOperation, func(g *guest, c uint32) nn.Errno { return g.call("get_output_single", c, 0, 0, 0, 0) }},
		{"fini_single", nn.ErrnoUnsupportedOperation, func(g *guest, c uint32) nn.Errno { return g.call("fini_single", c) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, c := setup(t)
			if got := tc.run(g, c); got != tc.want {
				t.Fatalf("errno %s (%d), want %s (%d)", got, got, tc.want, tc.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	m, d := newFakeModule(t, nn.Config{AllowLoad: true, MaxLoadBytes: 16})
	g := newGuest(t, m)
	model := g.put([]byte("doubler"))
	out := g.put(make([]byte, 4))
	if e := g.call("load", g.put(record(model, 7)), 1, 1, 0, out); e != 0 {
		t.Fatalf("load: %s", e)
	}
	graph := g.u32(out)
	if e, _ := g.initContext(graph); e != 0 {
		t.Fatal(e)
	}
	for _, tc := range []struct {
		name string
		want nn.Errno
		args []uint32
	}{
		{"over MaxLoadBytes", nn.ErrnoTooLarge, []uint32{g.put(record(model, 17)), 1, 1, 0, out}},
		{"builder out of range", nn.ErrnoInvalidArgument, []uint32{g.put(record(4*65536-4, 7)), 1, 1, 0, out}},
		{"builder array out of range", nn.ErrnoInvalidArgument, []uint32{4*65536 - 4, 2, 1, 0, out}},
		{"no builders", nn.ErrnoInvalidArgument, []uint32{model, 0, 1, 0, out}},
		{"encoding", nn.ErrnoInvalidEncoding, []uint32{g.put(record(model, 7)), 1, 4, 0, out}},
		{"target", nn.ErrnoInvalidArgument, []uint32{g.put(record(model, 7)), 1, 1, 7, out}},
		{"not a model", nn.ErrnoInvalidEncoding, []uint32{g.put(record(model, 6)), 1, 1, 0, out}},
	} {
		if e := g.call("load", tc.args...); e != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, e, tc.want)
		}
	}
	if e := g.call("unload", graph); e != 0 {
		t.Fatalf("unload: %s", e)
	}
	if e, _ := g.initContext(graph); e != nn.ErrnoInvalidArgument {
		t.Fatalf("init_execution_context on an unloaded graph: %s", e)
	}
	_ = d
}

func TestReleaseClosesContexts(t *testing.T) {
	t.Parallel()
	m, d := newFakeModule(t, nn.Config{})
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	if err := m.Instantiate(ctx, r); err != nil {
		t.Fatal(err)
	}
	ictx, release := m.BeginInstance(ctx)
	mod, err := r.InstantiateWithConfig(ictx, proxyModule(1, nnImports), wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	g := &guest{tb: t, ctx: ictx, mod: mod, next: 1024}
	_, graph := g.loadByName("double")
	for range 3 {
		g.initContext(graph)
	}
	if n := d.open.Load(); n != 3 {
		t.Fatalf("%d open", n)
	}
	release()
	release()
	if n := d.open.Load(); n != 0 {
		t.Fatalf("%d contexts left open after release", n)
	}
}

func TestNewChecksModels(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lid := filepath.Join(dir, "lid.ftz")
	os.WriteFile(lid, []byte("x"), 0o644)
	for name, cfg := range map[string]nn.Config{
		"missing file":      {Models: map[string]nn.Model{"a": {Path: filepath.Join(dir, "none.txt")}}},
		"unknown extension": {Models: map[string]nn.Model{"a": {Path: filepath.Join(dir, "x.pt")}}},
		"missing backend":   {Models: map[string]nn.Model{"a": {Path: lid}}},
		"empty name":        {Models: map[string]nn.Model{"": {Path: lid, Backend: "text"}}},
	} {
		if _, err := nn.New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestSandboxImports(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, _ := newFakeModule(t, nn.Config{})
	rt, err := sandbox.New(ctx, sandbox.Config{HostModules: []sandbox.HostModule{m}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	mod, err := rt.Compile(ctx, proxyModule(1, nnImports), "")
	if err != nil {
		t.Fatalf("a guest importing every wasi_ephemeral_nn function: %v", err)
	}
	if _, err := rt.Run(ctx, mod, sandbox.RunOptions{}); err != nil {
		t.Fatalf("run: %v", err)
	}
	_, err = rt.Compile(ctx, proxyModule(1, map[string]int{"load_by_name": 3, "no_such_function": 1}), "")
	if !errors.Is(err, sandbox.ErrImportNotAllowed) {
		t.Fatalf("unknown nn import: %v, want ErrImportNotAllowed", err)
	}
}
