package nn

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmjobs/wasmjobs/internal/hostcall"
)

// moduleName is the import module name guests use.
const moduleName = "wasi_ephemeral_nn"

// Config configures a Module. The zero value is usable: no models, no
// guest-supplied loads.
type Config struct {
	// Models are the models guests load by name (load_by_name).
	Models map[string]Model
	// Backends by name ("onnx", "fasttext"). The text backend is always
	// present; an entry named "text" replaces it.
	Backends map[string]Backend
	// AllowLoad lets guests load models from their own bytes (load). Off by
	// default: a worker runs the models its operator registered.
	AllowLoad bool
	// MaxLoadBytes caps a guest-supplied model. Defaults to 256 MiB.
	MaxLoadBytes uint64
	// MaxContexts caps the live execution contexts of one guest instance.
	// Defaults to 16 (the OCR guest uses 3).
	MaxContexts int
	// MaxGraphs caps the graph handles one guest instance ever gets, unload
	// or not. Defaults to 16 (the OCR guest uses 4).
	MaxGraphs int
	// MaxTensorBytes caps the host memory one guest instance holds through
	// this module: the inputs set and the outputs computed in all its
	// contexts, and the models it loaded from its own bytes. A compute whose
	// outputs would pass it fails with too_large and leaves its context
	// empty. Defaults to 128 MiB.
	MaxTensorBytes uint64
	// MaxDims caps a tensor's rank. Defaults to 8.
	MaxDims uint32
	// MaxElements caps a tensor's element count. Defaults to 1<<28.
	MaxElements uint64
	// OnCompute, when set, is told how long each compute of a model took
	// (guest-loaded graphs are reported as "guest").
	OnCompute func(model string, d time.Duration)
	// Logger receives why a call failed (at debug level: a guest's mistake
	// is not the operator's problem) and model loads. Defaults to
	// slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxLoadBytes == 0 {
		c.MaxLoadBytes = 256 << 20
	}
	if c.MaxContexts <= 0 {
		c.MaxContexts = 16
	}
	if c.MaxGraphs <= 0 {
		c.MaxGraphs = 16
	}
	if c.MaxTensorBytes == 0 {
		c.MaxTensorBytes = 128 << 20
	}
	if c.MaxDims == 0 {
		c.MaxDims = 8
	}
	if c.MaxElements == 0 {
		c.MaxElements = 1 << 28
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Module is the wasi_ephemeral_nn host module. It implements
// sandbox.HostModule and sandbox.InstanceScoped (checked in the sandbox's
// tests, which may import this package; this one may not import them).
type Module struct {
	cfg    Config
	models *models
	lim    limits
	log    *slog.Logger

	loadRefused sync.Once     // logs the first refused guest-bytes load only
	peakHeld    atomic.Uint64 // the most bytes one instance held, over all instances
}

// New creates the module. It checks that every model's file exists and that
// its backend is configured; models are loaded on first use (Preload loads
// them at once).
func New(cfg Config) (*Module, error) {
	cfg = cfg.WithDefaults()
	backends := map[string]Backend{textBackendName: textBackend{}}
	maps.Copy(backends, cfg.Backends)
	models, err := newModels(cfg.Models, backends, cfg.Logger)
	if err != nil {
		return nil, err
	}
	cfg.Backends = backends
	return &Module{
		cfg:    cfg,
		models: models,
		log:    cfg.Logger,
		lim: limits{
			MaxDims:        cfg.MaxDims,
			MaxElements:    cfg.MaxElements,
			MaxTensorBytes: cfg.MaxTensorBytes,
			MaxBuilders:    16,
			MaxLoadBytes:   cfg.MaxLoadBytes,
			MaxNameBytes:   4096,
		},
	}, nil
}

// Name returns "wasi_ephemeral_nn".
func (m *Module) Name() string { return moduleName }

// Models returns the registered model names, sorted.
func (m *Module) Models() []string { return slices.Sorted(maps.Keys(m.models.specs)) }

// Preload loads every registered model now instead of on first use.
func (m *Module) Preload(ctx context.Context) error {
	for _, name := range m.Models() {
		if _, err := m.models.get(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// Graph returns the shared graph of a registered model, loading it if
// needed. It is what load_by_name hands a guest; tests and tools use it to
// run a model from Go.
func (m *Module) Graph(ctx context.Context, name string) (Graph, error) {
	return m.models.get(ctx, name)
}

// Close releases the loaded models. Guests must no longer run.
func (m *Module) Close() error { return m.models.close() }

// instanceKey keys the per-instance state in a context.
type instanceKey struct{}

// BeginInstance returns ctx carrying a fresh handle table for one guest
// instance; release closes the contexts and guest-loaded graphs left in it.
func (m *Module) BeginInstance(ctx context.Context) (context.Context, func()) {
	inst := &instance{contexts: map[uint32]*execState{}, loadFailed: map[[sha256.Size]byte]error{}}
	return context.WithValue(ctx, instanceKey{}, inst), func() {
		inst.release(m.log)
		inst.mu.Lock()
		peak := inst.peak
		inst.mu.Unlock()
		for {
			old := m.peakHeld.Load()
			if peak <= old || m.peakHeld.CompareAndSwap(old, peak) {
				return
			}
		}
	}
}

// instance is the handle table of one guest instance. A guest instance runs
// on one goroutine, but release may follow from another, hence the mutex.
type instance struct {
	mu          sync.Mutex
	graphs      []graphRef
	contexts    map[uint32]*execState
	nextContext uint32
	// tensorBytes is what the instance holds through the module, against
	// Config.MaxTensorBytes: inputs, outputs and guest-loaded models.
	tensorBytes uint64
	peak        uint64 // the most tensorBytes held at once
	// loadFailed remembers guest-supplied models that failed to load, by
	// digest, so a guest retrying the same bytes gets the error at once.
	loadFailed map[[sha256.Size]byte]error
	released   bool
	// params holds a guest call's parameters: the calls of one instance
	// come one at a time from its only thread.
	params [maxParams]uint32
}

// maxParams is the most parameters a host function of the module takes.
const maxParams = 5

type graphRef struct {
	g      Graph
	name   string // registered name; empty for a guest-loaded graph
	owned  bool   // loaded from guest bytes: closed with the instance
	live   bool   // false after unload
	digest [sha256.Size]byte
	bytes  uint64 // guest model bytes counted in tensorBytes
}

type execState struct {
	model       string // registered name, or "guest"
	spec        Model  // the registered model's settings (zero for "guest")
	graph       Graph
	exec        ExecContext
	inputs      map[uint32]uint64 // input index → bytes held
	outputBytes uint64            // bytes of the last compute's outputs
}

// held is what c counts in the instance's tensorBytes.
func (c *execState) held() uint64 {
	n := c.outputBytes
	for _, b := range c.inputs {
		n += b
	}
	return n
}

func (in *instance) release(log *slog.Logger) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.released {
		return
	}
	in.released = true
	for id, c := range in.contexts {
		if err := c.exec.Close(); err != nil {
			log.Warn("wasi-nn: close execution context", "context", id, "err", err)
		}
	}
	in.contexts = nil
	for i, g := range in.graphs {
		if g.owned {
			if err := g.g.Close(); err != nil {
				log.Warn("wasi-nn: close guest-loaded graph", "graph", i, "err", err)
			}
		}
	}
	in.graphs = nil
}

// hostFunc is one function of wasi_ephemeral_nn, defined once: the module
// is instantiated from it, the test entry point dispatches through it and
// guest/README.md's function table is generated from it. Every parameter
// and the result are i32, as in WasmEdge's ABI: handles, pointers and
// lengths in, an errno out.
type hostFunc struct {
	name   string
	params []string // i32 parameter names, in order
	doc    string   // what a guest should know: limits, the errnos it may get
	// fn implements the function; nil for one that is defined only so that
	// WasmEdge guests importing it instantiate (it answers unsupported_operation).
	fn func(m *Module, ctx context.Context, in *instance, mem guestMemory, p []uint32) error
}

// abiType is the type of every parameter and result of wasi_ephemeral_nn.
const abiType = api.ValueTypeI32

// hostFuncs is the module, in the order guest/README.md lists it.
var hostFuncs = []hostFunc{
	{name: "load_by_name", params: []string{"name_ptr", "name_len", "graph_ptr"}, fn: (*Module).loadByName,
		doc: "the models the worker registered (`--model name=path`); unknown name → `not_found`; loading a name twice gives the same handle"},
	{name: "load_by_name_with_config", params: []string{"name_ptr", "name_len", "config_ptr", "config_len", "graph_ptr"}, fn: (*Module).loadByNameWithConfig,
		doc: "the config is accepted and ignored"},
	{name: "load", params: []string{"builder_ptr", "builder_len", "encoding", "target", "graph_ptr"}, fn: (*Module).load,
		doc: "guest-supplied model bytes; refused (`unsupported_operation`) unless the worker runs with `--nn-allow-load`; ONNX (1) or autodetect (5), one builder, size-capped (`too_large`)"},
	{name: "init_execution_context", params: []string{"graph", "context_ptr"}, fn: (*Module).initExecutionContext,
		doc: "at most 16 live contexts per instance by default (`busy`)"},
	{name: "set_input", params: []string{"context", "index", "tensor_ptr"}, fn: (*Module).setInput,
		doc: "type and shape must match the model's input (`invalid_argument`); the instance's tensor bytes are capped (`too_large`)"},
	{name: "compute", params: []string{"context"}, fn: (*Module).compute,
		doc: "before every input is set → `invalid_argument`"},
	{name: "get_output", params: []string{"context", "index", "out_ptr", "out_max", "written_ptr"}, fn: (*Module).getOutput,
		doc: "buffer too small → `too_large`, with the size needed written to written_ptr"},
	{name: "finalize_execution_context", params: []string{"context"}, fn: (*Module).finalizeExecutionContext,
		doc: "later use of the context → `invalid_argument`"},
	{name: "unload", params: []string{"graph"}, fn: (*Module).unload,
		doc: "drops the instance's handle; a registered model stays loaded for other instances"},
	{name: "compute_single", params: []string{"context"}, doc: unsupportedDoc},
	{name: "get_output_single", params: []string{"context", "index", "out_ptr", "out_max", "written_ptr"}, doc: unsupportedDoc},
	{name: "fini_single", params: []string{"context"}, doc: unsupportedDoc},
}

const unsupportedDoc = "exists so WasmEdge guests instantiate; answers `unsupported_operation`"

// Instantiate defines the host functions in r.
func (m *Module) Instantiate(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder(moduleName)
	for i := range hostFuncs {
		f := &hostFuncs[i]
		n := len(f.params)
		if n > maxParams {
			return fmt.Errorf("wasi-nn: %s takes %d parameters, more than maxParams", f.name, n)
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
				stack[0] = uint64(m.guestCall(ctx, f, mod, stack[:n]))
				hostcall.ExitIfDone(ctx, mod)
			}), slices.Repeat([]api.ValueType{abiType}, n), []api.ValueType{abiType}).
			WithParameterNames(f.params...).
			Export(f.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// run runs f for instance in: the one path of every call, from a guest or
// from a test.
func (m *Module) run(ctx context.Context, f *hostFunc, in *instance, mem guestMemory, p []uint32) error {
	if f.fn == nil {
		return errf(ErrUnsupported, "%s is not implemented by this host (only WasmEdge's GGML backends have it)", f.name)
	}
	return f.fn(m, ctx, in, mem, p)
}

// guestCall runs host function f for a guest and turns its error into an
// errno. A panic in a backend is recovered into a runtime error: a guest can
// never take the worker down through this module.
func (m *Module) guestCall(ctx context.Context, f *hostFunc, mod api.Module, stack []uint64) (code errno) {
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("wasi-nn: host function panicked", "func", f.name, "panic", p, "stack", string(debug.Stack()))
			code = errnoRuntimeError
		}
	}()
	in, _ := ctx.Value(instanceKey{}).(*instance)
	if in == nil {
		m.log.Error("wasi-nn: called outside a sandbox run (no instance state)", "func", f.name)
		return errnoRuntimeError
	}
	mem := mod.Memory()
	if mem == nil {
		return errnoMissingMemory
	}
	p := in.params[:len(stack)]
	for i, v := range stack {
		p[i] = api.DecodeU32(v)
	}
	err := m.run(ctx, f, in, mem, p)
	code = errnoOf(err)
	if err != nil {
		m.log.Debug("wasi-nn: call failed", "func", f.name, "errno", code.String(), "err", err)
	}
	return code
}

// call runs host function name with params against mem and the instance
// state in ctx, as a guest's call would, but without recovering a panic (a
// fuzzer must see it). It exists for tests and fuzzing of the ABI without a
// wasm runtime.
func (m *Module) call(ctx context.Context, mem guestMemory, name string, params ...uint32) errno {
	i := slices.IndexFunc(hostFuncs, func(f hostFunc) bool { return f.name == name })
	if i < 0 {
		return errnoInvalidArgument
	}
	f := &hostFuncs[i]
	if f.fn == nil {
		return errnoUnsupportedOperation
	}
	if len(params) != len(f.params) {
		return errnoInvalidArgument
	}
	in, _ := ctx.Value(instanceKey{}).(*instance)
	if in == nil {
		return errnoRuntimeError
	}
	return errnoOf(m.run(ctx, f, in, mem, params))
}

// Functions. Each checks its result pointers before acting, so that a call
// that fails leaves no handle behind.

func (m *Module) load(ctx context.Context, in *instance, mem guestMemory, p []uint32) error {
	builderPtr, builderLen, encoding, target, graphPtr := p[0], p[1], graphEncoding(p[2]), execTarget(p[3]), p[4]
	if err := checkWritable(mem, graphPtr, 4, "load graph"); err != nil {
		return err
	}
	if target > targetAuto {
		return errf(ErrInvalidArgument, "load: execution target %d: want 0 (cpu) to 3 (auto)", target)
	}
	if !m.cfg.AllowLoad {
		m.loadRefused.Do(func() {
			m.log.Info("wasi-nn: a guest called load with its own model bytes, which this worker refuses; register the model by name (--model) or start the worker with --nn-allow-load (logged once)")
		})
		return errf(ErrUnsupported, "load from guest bytes is disabled (--nn-allow-load)")
	}
	var backend Backend
	switch encoding {
	case encodingONNX, encodingAutodetect:
		backend = m.cfg.Backends["onnx"]
	}
	if backend == nil {
		return errf(ErrInvalidEncoding, "load: encoding %d: this worker loads ONNX (1) or autodetect (5) models", encoding)
	}
	builders, err := decodeBuilders(mem, builderPtr, builderLen, m.lim)
	if err != nil {
		return err
	}
	if len(builders) != 1 {
		return errf(ErrInvalidArgument, "load: an ONNX model is one builder, got %d", len(builders))
	}
	model := builders[0]
	digest := sha256.Sum256(model)
	size := uint64(len(model))
	// The same bytes load once per instance: a guest calling load in a loop
	// gets its handle back, or the first load's error.
	in.mu.Lock()
	if err, ok := in.loadFailed[digest]; ok {
		in.mu.Unlock()
		return err
	}
	for i, g := range in.graphs {
		if g.live && g.owned && g.digest == digest {
			in.mu.Unlock()
			return writeUint32(mem, graphPtr, uint32(i), "load")
		}
	}
	full := len(in.graphs) >= m.cfg.MaxGraphs
	over := in.tensorBytes+size > m.cfg.MaxTensorBytes
	in.mu.Unlock()
	if full {
		return errf(ErrBusy, "load: %d graphs per instance", m.cfg.MaxGraphs)
	}
	if over {
		return errf(ErrTooLarge, "load: a model of %d bytes would pass the instance's %d bytes of tensors and models", size, m.cfg.MaxTensorBytes)
	}
	g, err := backend.LoadBytes(ctx, model)
	if err != nil {
		in.mu.Lock()
		in.loadFailed[digest] = err
		in.mu.Unlock()
		return err
	}
	id, err := in.addGraph(graphRef{g: g, owned: true, digest: digest, bytes: size}, m.cfg.MaxGraphs, m.cfg.MaxTensorBytes)
	if err != nil {
		_ = g.Close()
		return err
	}
	return writeUint32(mem, graphPtr, id, "load")
}

func (m *Module) loadByName(ctx context.Context, in *instance, mem guestMemory, p []uint32) error {
	return m.byName(ctx, in, mem, p[0], p[1], p[2])
}

// loadByNameWithConfig accepts and ignores the config: our backends take
// their settings from the worker's flags.
func (m *Module) loadByNameWithConfig(ctx context.Context, in *instance, mem guestMemory, p []uint32) error {
	if _, err := readBytes(mem, p[2], p[3], "load_by_name_with_config config"); err != nil {
		return err
	}
	return m.byName(ctx, in, mem, p[0], p[1], p[4])
}

func (m *Module) byName(ctx context.Context, in *instance, mem guestMemory, namePtr, nameLen, graphPtr uint32) error {
	if err := checkWritable(mem, graphPtr, 4, "load_by_name graph"); err != nil {
		return err
	}
	name, err := readString(mem, namePtr, nameLen, m.lim.MaxNameBytes, "load_by_name name")
	if err != nil {
		return err
	}
	if _, ok := m.models.specs[name]; !ok {
		return errf(ErrNotFound, "no model named %q (registered: %s)", name, strings.Join(m.Models(), ", "))
	}
	// One handle per name and instance: loading a name twice returns the
	// same handle, as WasmEdge does.
	in.mu.Lock()
	for i, g := range in.graphs {
		if g.live && g.name == name {
			in.mu.Unlock()
			return writeUint32(mem, graphPtr, uint32(i), "load_by_name")
		}
	}
	in.mu.Unlock()
	g, err := m.models.get(ctx, name)
	if err != nil {
		return err
	}
	id, err := in.addGraph(graphRef{g: g, name: name}, m.cfg.MaxGraphs, m.cfg.MaxTensorBytes)
	if err != nil {
		return err
	}
	return writeUint32(mem, graphPtr, id, "load_by_name")
}

func (in *instance) addGraph(g graphRef, maxGraphs int, maxBytes uint64) (uint32, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.released {
		return 0, errf(ErrRuntime, "instance is closed")
	}
	if len(in.graphs) >= maxGraphs {
		return 0, errf(ErrBusy, "%d graphs per instance", maxGraphs)
	}
	if in.tensorBytes+g.bytes > maxBytes {
		return 0, errf(ErrTooLarge, "load: a model of %d bytes would pass the instance's %d bytes of tensors and models", g.bytes, maxBytes)
	}
	in.tensorBytes += g.bytes
	in.peak = max(in.peak, in.tensorBytes)
	g.live = true
	in.graphs = append(in.graphs, g)
	return uint32(len(in.graphs) - 1), nil
}

func (m *Module) initExecutionContext(_ context.Context, in *instance, mem guestMemory, p []uint32) error {
	graph, ctxPtr := p[0], p[1]
	if err := checkWritable(mem, ctxPtr, 4, "init_execution_context context"); err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.released {
		return errf(ErrRuntime, "instance is closed")
	}
	if uint64(graph) >= uint64(len(in.graphs)) || !in.graphs[graph].live {
		return errf(ErrInvalidArgument, "init_execution_context: no graph %d", graph)
	}
	if len(in.contexts) >= m.cfg.MaxContexts {
		return errf(ErrBusy, "init_execution_context: %d live contexts per instance; finalize_execution_context the ones you are done with", m.cfg.MaxContexts)
	}
	exec, err := in.graphs[graph].g.NewContext()
	if err != nil {
		return err
	}
	id := in.nextContext
	in.nextContext++
	model := in.graphs[graph].name
	spec := m.models.specs[model]
	if model == "" {
		model = "guest"
	}
	in.contexts[id] = &execState{model: model, spec: spec, graph: in.graphs[graph].g, exec: exec, inputs: map[uint32]uint64{}}
	return writeUint32(mem, ctxPtr, id, "init_execution_context")
}

// context returns the state of a live context.
func (in *instance) context(id uint32, fn string) (*execState, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	c, ok := in.contexts[id]
	if !ok {
		return nil, errf(ErrInvalidArgument, "%s: no execution context %d (never created, or finalized)", fn, id)
	}
	return c, nil
}

func (m *Module) setInput(_ context.Context, in *instance, mem guestMemory, p []uint32) error {
	id, index, tensorPtr := p[0], p[1], p[2]
	c, err := in.context(id, "set_input")
	if err != nil {
		return err
	}
	t, err := decodeTensor(mem, tensorPtr, m.lim)
	if err != nil {
		return err
	}
	if err := c.spec.checkShape(c.model, index, t.Dims); err != nil {
		return err
	}
	n := uint64(len(t.Data))
	in.mu.Lock()
	total := in.tensorBytes - c.inputs[index] + n
	if total > m.cfg.MaxTensorBytes {
		in.mu.Unlock()
		return errf(ErrTooLarge, "set_input: the instance would hold %d tensor bytes, at most %d", total, m.cfg.MaxTensorBytes)
	}
	in.mu.Unlock()
	if err := c.exec.SetInput(index, t); err != nil {
		return err
	}
	in.mu.Lock()
	in.tensorBytes = in.tensorBytes - c.inputs[index] + n
	in.peak = max(in.peak, in.tensorBytes)
	c.inputs[index] = n
	in.mu.Unlock()
	return nil
}

func (m *Module) compute(ctx context.Context, in *instance, _ guestMemory, p []uint32) error {
	c, err := in.context(p[0], "compute")
	if err != nil {
		return err
	}
	// The last outputs are replaced: stop counting them.
	in.mu.Lock()
	in.tensorBytes -= c.outputBytes
	c.outputBytes = 0
	in.mu.Unlock()
	start := time.Now()
	err = c.exec.Compute(ctx)
	if m.cfg.OnCompute != nil {
		m.cfg.OnCompute(c.model, time.Since(start))
	}
	if err != nil {
		return err
	}
	out := c.exec.OutputBytes()
	in.mu.Lock()
	total := in.tensorBytes + out
	if total <= m.cfg.MaxTensorBytes {
		in.tensorBytes = total
		in.peak = max(in.peak, total)
		c.outputBytes = out
		in.mu.Unlock()
		return nil
	}
	in.mu.Unlock()
	return m.emptyContext(in, c, errf(ErrTooLarge,
		"compute: model %s gave %d output bytes, which would pass the instance's %d bytes of tensors (inputs and outputs of all its contexts); the context's inputs and outputs are dropped",
		c.model, out, m.cfg.MaxTensorBytes))
}

// emptyContext replaces c's backend context with a fresh one, freeing its
// inputs and outputs, and returns cause.
func (m *Module) emptyContext(in *instance, c *execState, cause error) error {
	_ = c.exec.Close()
	fresh, err := c.graph.NewContext()
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, b := range c.inputs {
		in.tensorBytes -= b
	}
	clear(c.inputs)
	if err != nil {
		// Keep a closed context: its calls fail, finalize still works.
		return cause
	}
	c.exec = fresh
	return cause
}

func (m *Module) getOutput(_ context.Context, in *instance, mem guestMemory, p []uint32) error {
	id, index, outPtr, outMax, writtenPtr := p[0], p[1], p[2], p[3], p[4]
	if err := checkWritable(mem, outPtr, outMax, "get_output buffer"); err != nil {
		return err
	}
	if err := checkWritable(mem, writtenPtr, 4, "get_output bytes_written"); err != nil {
		return err
	}
	c, err := in.context(id, "get_output")
	if err != nil {
		return err
	}
	t, err := c.exec.Output(index)
	if err != nil {
		return err
	}
	if uint64(len(t.Data)) > uint64(outMax) {
		// Like WasmEdge: report the size needed, so a guest can retry.
		_ = writeUint32(mem, writtenPtr, uint32(min(uint64(len(t.Data)), 1<<32-1)), "get_output")
		return errf(ErrTooLarge, "get_output: output %d is %d bytes, buffer %d", index, len(t.Data), outMax)
	}
	if !mem.Write(outPtr, t.Data) {
		return errf(ErrInvalidArgument, "get_output: buffer at %#x is outside guest memory", outPtr)
	}
	return writeUint32(mem, writtenPtr, uint32(len(t.Data)), "get_output")
}

func (m *Module) finalizeExecutionContext(_ context.Context, in *instance, _ guestMemory, p []uint32) error {
	in.mu.Lock()
	c, ok := in.contexts[p[0]]
	if ok {
		delete(in.contexts, p[0])
		in.tensorBytes -= c.held()
	}
	in.mu.Unlock()
	if !ok {
		return errf(ErrInvalidArgument, "finalize_execution_context: no execution context %d", p[0])
	}
	return c.exec.Close()
}

// unload drops the instance's handle. A shared model stays loaded for other
// instances; a guest-loaded graph is closed when the instance is, since
// contexts made from it stay usable until finalized, as in WasmEdge.
func (m *Module) unload(_ context.Context, in *instance, _ guestMemory, p []uint32) error {
	in.mu.Lock()
	if uint64(p[0]) >= uint64(len(in.graphs)) || !in.graphs[p[0]].live {
		in.mu.Unlock()
		return errf(ErrInvalidArgument, "unload: no graph %d", p[0])
	}
	in.graphs[p[0]].live = false
	in.mu.Unlock()
	return nil
}
