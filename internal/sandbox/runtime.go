package sandbox

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmjobs/wasmjobs/internal/flight"
)

// HostModule is a host module guests may import, such as wasi_ephemeral_nn.
type HostModule interface {
	// Name is the import module name.
	Name() string
	// Instantiate defines the module's functions in r.
	Instantiate(ctx context.Context, r wazero.Runtime) error
}

// InstanceScoped is implemented by host modules that keep state per guest
// instance (graphs, execution contexts). Run calls BeginInstance before
// instantiating a guest and runs it with the returned context, which host
// functions receive; release is called once the instance is closed.
type InstanceScoped interface {
	BeginInstance(ctx context.Context) (scoped context.Context, release func())
}

// Config configures a Runtime. The zero value is usable.
type Config struct {
	// CacheDir holds wazero's compilation cache, so that a restarted process
	// does not compile a guest again. Empty means no disk cache.
	CacheDir string
	// MemoryLimitPages caps every guest's linear memory in 64 KiB pages.
	// Defaults to 4096 (256 MiB).
	MemoryLimitPages uint32
	// MaxModules bounds the compiled modules kept in memory. Defaults to 64.
	MaxModules int
	// MaxCompiles bounds the modules compiling at once, including those
	// whose callers gave up: each may hold the compiler memory that
	// [ModuleLimits] bounds (under 512 MB). Defaults to 2.
	MaxCompiles int
	// HostModules are importable in addition to wasi_snapshot_preview1.
	HostModules []HostModule
	// Limits is the budget every module must fit before it is compiled:
	// sizes and counts, tables, locals, segments. See [ModuleLimits] for
	// the defaults.
	Limits ModuleLimits
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.MemoryLimitPages == 0 {
		c.MemoryLimitPages = 4096
	}
	if c.MaxModules <= 0 {
		c.MaxModules = 64
	}
	if c.MaxCompiles <= 0 {
		c.MaxCompiles = 2
	}
	c.Limits = c.Limits.WithDefaults()
	return c
}

// Stats counts what the in-memory module cache did.
type Stats struct {
	// Hits are Compile calls answered from memory.
	Hits uint64
	// Misses are Compile calls that went to wazero (and its disk cache).
	Misses uint64
	// Cached is the number of modules held now.
	Cached int
}

// Runtime compiles and runs guests. It is safe for concurrent use.
type Runtime struct {
	cfg   Config
	rt    wazero.Runtime
	cache wazero.CompilationCache
	// allowed maps module name → function name → its definition.
	allowed map[string]map[string]api.FunctionDefinition
	base    wazero.ModuleConfig

	mu      sync.Mutex
	modules map[string]*list.Element // digest → element holding *Module
	lru     *list.List
	// compiles deduplicates concurrent compiles of one digest.
	compiles *flight.Group[string, *Module]
	// compileSlots bounds the compiles in progress, abandoned ones
	// included, and so the compiler memory they hold.
	compileSlots chan struct{}
	// background are the compiles Close waits for: wazero must not close
	// while one runs.
	background sync.WaitGroup

	hits, misses atomic.Uint64
	closed       atomic.Bool
	stopScavenge chan struct{}

	// memory allocates the guests' linear memories (memory_unix.go);
	// trimMemory drops what it keeps for reuse when nothing reused it
	// lately, closeMemory drops it for good.
	memory                  experimental.MemoryAllocator
	trimMemory, closeMemory func()
}

// Module is a compiled guest. It stays usable while it is cached or while a
// run holds it.
type Module struct {
	// Digest is "sha256:<hex>" of the module bytes.
	Digest string
	// Size is the module's size in bytes.
	Size int
	// Models are the model names the module declares it loads (its
	// ModelsSection), in the order declared; nil when it declares none.
	Models []string
	// RecordsABI says the module speaks the records ABI (see
	// RunOptions.Records): its ABISection names "records".
	RecordsABI bool

	compiled wazero.CompiledModule
	rt       *Runtime
	refs     int  // runs in progress + 1 while cached; guarded by rt.mu
	evicted  bool // guarded by rt.mu
}

// Digest returns "sha256:<hex>" of wasm.
func Digest(wasm []byte) string {
	sum := sha256.Sum256(wasm)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// New creates a Runtime.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	cfg = cfg.WithDefaults()
	// Deadlines are kept by metering (meter.go), not by wazero's
	// WithCloseOnContextDone.
	rc := wazero.NewRuntimeConfig().
		WithMemoryLimitPages(cfg.MemoryLimitPages)
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(cfg.CacheDir); err != nil {
			return nil, fmt.Errorf("sandbox: cache dir %s: %w", cfg.CacheDir, err)
		}
		rc = rc.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	r := &Runtime{
		cfg:          cfg,
		rt:           rt,
		cache:        cache,
		allowed:      map[string]map[string]api.FunctionDefinition{},
		modules:      map[string]*list.Element{},
		lru:          list.New(),
		compileSlots: make(chan struct{}, cfg.MaxCompiles),
		stopScavenge: make(chan struct{}),
		// No FS, no sockets, fake clocks: wazero's defaults; Run adds
		// wazero's deterministic random stream (fakeRandom). No start
		// functions: Run calls _start itself so that a trapped instance
		// can still be inspected.
		base: wazero.NewModuleConfig().WithName("").WithStartFunctions(),
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("sandbox: WASI: %w", err)
	}
	if err := instantiateMeter(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("sandbox: metering: %w", err)
	}
	if err := r.allow(wasi_snapshot_preview1.ModuleName); err != nil {
		_ = rt.Close(ctx)
		return nil, err
	}
	for _, hm := range cfg.HostModules {
		if err := hm.Instantiate(ctx, rt); err != nil {
			_ = rt.Close(ctx)
			return nil, fmt.Errorf("sandbox: host module %s: %w", hm.Name(), err)
		}
		if err := r.allow(hm.Name()); err != nil {
			_ = rt.Close(ctx)
			return nil, err
		}
	}
	r.compiles = flight.New[string, *Module](&r.mu)
	r.memory, r.trimMemory, r.closeMemory = memoryAllocator()
	go returnFreedMemory(r.stopScavenge, r.trimMemory)
	return r, nil
}

func (r *Runtime) allow(module string) error {
	m := r.rt.Module(module)
	if m == nil {
		return fmt.Errorf("sandbox: host module %s was not instantiated", module)
	}
	r.allowed[module] = m.ExportedFunctionDefinitions()
	return nil
}

// Close releases all compiled modules and the runtime. Runs in progress are
// stopped; compiles in progress are waited for (the budget bounds them).
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	already := r.closed.Swap(true)
	r.mu.Unlock()
	if already {
		return nil
	}
	r.background.Wait()
	close(r.stopScavenge)
	err := r.rt.Close(ctx)
	r.closeMemory()
	if r.cache != nil {
		err = errors.Join(err, r.cache.Close(ctx))
	}
	return err
}

// Stats returns cache counters.
func (r *Runtime) Stats() Stats {
	r.mu.Lock()
	n := r.lru.Len()
	r.mu.Unlock()
	return Stats{Hits: r.hits.Load(), Misses: r.misses.Load(), Cached: n}
}

// Cached returns the compiled module for digest if it is in memory.
func (r *Runtime) Cached(digest string) (*Module, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cachedLocked(digest)
}

// cachedLocked looks digest up in the module cache, counting a hit.
func (r *Runtime) cachedLocked(digest string) (*Module, bool) {
	el, ok := r.modules[digest]
	if !ok {
		return nil, false
	}
	r.lru.MoveToFront(el)
	r.hits.Add(1)
	return el.Value.(*Module), true
}

// Compile validates and compiles wasm, or returns the cached module of the
// same digest. When want is not empty it must equal the digest of wasm.
//
// # Notes
//
//   - Compile returns when ctx ends, although wazero does not stop a
//     compile: the compile goes on in the background, bounded by
//     [ModuleLimits], and its module is cached for the next caller.
//     Concurrent callers of one digest share one compile.
//   - A deadline that passes while the module compiles is the guest's
//     failure: a *GuestError of kind ErrTimeout. A canceled ctx, or a
//     deadline that passes while waiting for a compile slot, is returned
//     as ctx's error, wrapped, and may be retried.
func (r *Runtime) Compile(ctx context.Context, wasm []byte, want string) (*Module, error) {
	digest := Digest(wasm)
	if want != "" && want != digest {
		return nil, &GuestError{Kind: ErrDigestMismatch, Detail: fmt.Sprintf("expected %s, bytes hash to %s", want, digest)}
	}
	lookup := func() (*Module, bool, error) {
		m, ok := r.cachedLocked(digest)
		return m, ok, nil
	}
	// The compile runs detached from ctx (flight runs it for every caller
	// of the digest); only the wait for a slot is the first caller's.
	compile := func() (*Module, error) {
		select {
		case r.compileSlots <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("sandbox: waiting to compile: %w", ctx.Err())
		}
		defer func() { <-r.compileSlots }()
		r.mu.Lock()
		closed := r.closed.Load()
		if !closed {
			r.background.Add(1)
		}
		r.mu.Unlock()
		if closed {
			return nil, errors.New("sandbox: runtime closed")
		}
		defer r.background.Done()
		r.misses.Add(1)
		return r.compile(context.WithoutCancel(ctx), wasm, digest)
	}
	keep := func(m *Module, err error) (*Module, error) {
		if err == nil && r.closed.Load() {
			_ = m.compiled.Close(context.WithoutCancel(ctx))
			m, err = nil, errors.New("sandbox: runtime closed")
		}
		if err == nil {
			m.refs = 1
			r.modules[digest] = r.lru.PushFront(m)
			r.evictLocked(ctx)
		}
		return m, err
	}
	start := time.Now()
	m, err := r.compiles.Do(ctx, digest, lookup, compile, keep)
	if err != nil && err == ctx.Err() {
		// This caller left; the compile goes on for the next one.
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, &GuestError{Kind: ErrTimeout, Err: err, Detail: fmt.Sprintf(
				"the job's deadline passed while the module compiled (%s)", time.Since(start).Round(time.Millisecond))}
		}
		return nil, fmt.Errorf("sandbox: compile abandoned: %w", err)
	}
	return m, err
}

func (r *Runtime) evictLocked(ctx context.Context) {
	for r.lru.Len() > r.cfg.MaxModules {
		el := r.lru.Back()
		m := el.Value.(*Module)
		r.lru.Remove(el)
		delete(r.modules, m.Digest)
		m.evicted = true
		r.releaseLocked(ctx, m)
	}
}

// releaseLocked drops one reference; the last one closes the module.
func (r *Runtime) releaseLocked(ctx context.Context, m *Module) {
	m.refs--
	if m.refs == 0 {
		_ = m.compiled.Close(context.WithoutCancel(ctx))
	}
}

func (r *Runtime) compile(ctx context.Context, wasm []byte, digest string) (*Module, error) {
	code, decl, err := budget(wasm, r.cfg.Limits, r.cfg.MemoryLimitPages)
	if err == nil {
		code, err = meter(code, r.cfg.Limits)
	}
	if err != nil {
		return nil, budgetError(err)
	}
	cm, err := r.rt.CompileModule(ctx, code)
	if err != nil {
		return nil, &GuestError{Kind: ErrInvalidModule, Detail: err.Error(), Err: err}
	}
	if err := r.checkModule(cm); err != nil {
		_ = cm.Close(ctx)
		return nil, err
	}
	return &Module{Digest: digest, Size: len(wasm), Models: decl.models, RecordsABI: decl.records, compiled: cm, rt: r}, nil
}

// budgetError turns a failed budget check into a GuestError of the kind
// that names the cause.
func budgetError(err error) error {
	kind := ErrInvalidModule
	switch {
	case errors.Is(err, ErrMemoryLimit):
		kind = ErrMemoryLimit
	case errors.Is(err, errImport):
		kind = ErrImportNotAllowed
	}
	detail := strings.TrimPrefix(err.Error(), kind.Error()+": ")
	detail = strings.TrimPrefix(detail, errImport.Error()+": ")
	return &GuestError{Kind: kind, Detail: detail}
}

// checkModule enforces guest ABI v1: a command module exporting _start and
// memory, importing only functions the sandbox provides.
func (r *Runtime) checkModule(cm wazero.CompiledModule) error {
	var bad []string
	for _, def := range cm.ImportedFunctions() {
		mod, name, _ := def.Import()
		if mod == meterModule && name == meterFunc {
			continue // added by meter, which refuses the guest's own
		}
		host, ok := r.allowed[mod][name]
		if !ok {
			bad = append(bad, mod+"."+name+" (function)")
			continue
		}
		if !slices.Equal(def.ParamTypes(), host.ParamTypes()) || !slices.Equal(def.ResultTypes(), host.ResultTypes()) {
			return &GuestError{Kind: ErrImportNotAllowed, Detail: fmt.Sprintf("%s.%s has type %s, the sandbox provides %s",
				mod, name, signature(def), signature(host))}
		}
	}
	for _, def := range cm.ImportedMemories() {
		mod, name, _ := def.Import()
		bad = append(bad, mod+"."+name+" (memory)")
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return &GuestError{Kind: ErrImportNotAllowed, Detail: fmt.Sprintf("%s; guests may import only %s",
			strings.Join(bad, ", "), strings.Join(slices.Sorted(maps.Keys(r.allowed)), " and "))}
	}
	if _, ok := cm.ExportedFunctions()["_start"]; !ok {
		return &GuestError{Kind: ErrInvalidModule, Detail: "no _start export: a guest must be a WASI command module (a program with main)"}
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		return &GuestError{Kind: ErrInvalidModule, Detail: "no exported memory named \"memory\""}
	}
	return nil
}

// signature writes a function type as (i32, i64) -> (i32).
func signature(def api.FunctionDefinition) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(s, ", ") + ")"
	}
	return names(def.ParamTypes()) + " -> " + names(def.ResultTypes())
}

// RunOptions are the per-job inputs of Run.
type RunOptions struct {
	// Stdin is the job's input.
	Stdin []byte
	// Params become argv[1..] as key=value (sorted by key) and the JSON
	// environment variable WASMJOBS_PARAMS.
	Params map[string]string
	// Name is argv[0]. Defaults to "guest".
	Name string
	// Args follow the params in argv, as given (`wasmjobs run`'s extra
	// arguments, as WasmEdge passes a command's); they are not in
	// WASMJOBS_PARAMS. Jobs from a queue have none.
	Args []string
	// Timeout bounds the run. Defaults to 30 s.
	Timeout time.Duration
	// MaxOutput caps stdout in bytes. Defaults to 64 MiB.
	MaxOutput int
	// StderrTail is how many trailing bytes of stderr to keep. Defaults to 2 KiB.
	StderrTail int
	// Records runs the guest in the records ABI (a Module with
	// RecordsABI): stdin holds one record per line, each a JSON value, and
	// the guest answers each with one line of JSON on stdout. The guest
	// sees WASMJOBS_RECORDS=1.
	Records bool
}

// Result is what a successful run produced.
type Result struct {
	// Stdout is everything the guest wrote to stdout: the job's output.
	Stdout []byte
	// Stderr is the tail of the guest's stderr.
	Stderr string
	// Duration covers instantiation, the run and closing the instance.
	Duration time.Duration
}

// Run executes m once in a fresh instance. A guest failure is returned as a
// *GuestError; an error that is not one (ctx canceled by the caller, runtime
// closed) says the run did not happen and may be retried.
func (r *Runtime) Run(ctx context.Context, m *Module, opts RunOptions) (*Result, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.MaxOutput <= 0 {
		opts.MaxOutput = 64 << 20
	}
	if opts.StderrTail <= 0 {
		opts.StderrTail = 2 << 10
	}
	if opts.Name == "" {
		opts.Name = "guest"
	}
	r.mu.Lock()
	if m.refs == 0 {
		r.mu.Unlock()
		return nil, fmt.Errorf("sandbox: module %s was released", m.Digest)
	}
	m.refs++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.releaseLocked(ctx, m)
		r.mu.Unlock()
	}()

	start := time.Now()
	stdout := &cappedBuffer{max: opts.MaxOutput}
	stderr := &tailBuffer{max: opts.StderrTail}
	args, env, err := argvEnv(opts.Name, opts.Params, opts.Args)
	if err != nil {
		return nil, err
	}
	cfg := r.base.
		WithStdin(bytes.NewReader(opts.Stdin)).
		WithStdout(stdout).
		WithStderr(stderr).
		WithRandSource(&fakeRandom{}).
		WithArgs(args...).
		WithEnv("WASMJOBS_PARAMS", env)
	if opts.Records {
		cfg = cfg.WithEnv("WASMJOBS_RECORDS", "1")
	}

	runCtx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	for _, hm := range r.cfg.HostModules {
		if scoped, ok := hm.(InstanceScoped); ok {
			var release func()
			runCtx, release = scoped.BeginInstance(runCtx)
			defer release() // deferred before mod.Close below, so it runs after it
		}
	}
	runCtx = withFuel(experimental.WithMemoryAllocator(runCtx, r.memory))
	mod, err := r.rt.InstantiateModule(runCtx, m.compiled, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("sandbox: run stopped: %w", ctx.Err())
		}
		return nil, r.classify(runCtx, nil, err, opts, stderr)
	}
	defer mod.Close(context.WithoutCancel(ctx))
	_, err = mod.ExportedFunction("_start").Call(runCtx)
	if stdout.overflow {
		// Whatever the guest did after its write failed, the cause is the cap.
		return nil, &GuestError{Kind: ErrOutputTooLarge, Detail: fmt.Sprintf("limit %d bytes", opts.MaxOutput), Stderr: stderr.String()}
	}
	if err != nil {
		var exit *sys.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 0 {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("sandbox: run stopped: %w", ctx.Err())
			}
			return nil, r.classify(runCtx, mod, err, opts, stderr)
		}
	}
	return &Result{Stdout: stdout.buf.Bytes(), Stderr: stderr.String(), Duration: time.Since(start)}, nil
}

// classify turns a failed run into a GuestError.
func (r *Runtime) classify(runCtx context.Context, mod api.Module, err error, opts RunOptions, stderr *tailBuffer) error {
	tail := stderr.String()
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		// wazero reports a closed context as these exit codes, which a
		// guest may also pass to proc_exit: only the context tells them apart.
		switch {
		case exit.ExitCode() == sys.ExitCodeDeadlineExceeded && errors.Is(runCtx.Err(), context.DeadlineExceeded):
			return &GuestError{Kind: ErrTimeout, Detail: fmt.Sprintf("stopped after %s", opts.Timeout), Stderr: tail, Err: err}
		case exit.ExitCode() == sys.ExitCodeContextCanceled && runCtx.Err() != nil:
			return fmt.Errorf("sandbox: run canceled: %w", err)
		}
		return &GuestError{Kind: ErrExit, ExitCode: exit.ExitCode(), Stderr: tail}
	}
	if errors.Is(runCtx.Err(), context.DeadlineExceeded) {
		return &GuestError{Kind: ErrTimeout, Detail: fmt.Sprintf("stopped after %s", opts.Timeout), Stderr: tail, Err: err}
	}
	if mod != nil && r.nearMemoryLimit(mod) {
		return &GuestError{Kind: ErrMemoryLimit, Detail: fmt.Sprintf("limit %d MiB, guest held %d MiB when it failed",
			r.cfg.MemoryLimitPages/16, mod.Memory().Size()>>20), Stderr: tail, Err: err}
	}
	if mod == nil {
		if strings.Contains(err.Error(), "memory") && strings.Contains(err.Error(), "limit") {
			return &GuestError{Kind: ErrMemoryLimit, Detail: err.Error(), Stderr: tail, Err: err}
		}
		return &GuestError{Kind: ErrInvalidModule, Detail: "instantiate: " + err.Error(), Stderr: tail, Err: err}
	}
	return &GuestError{Kind: ErrTrap, Detail: firstLine(err.Error()), Stderr: tail, Err: err}
}

// nearMemoryLimit reports whether the instance's memory reached three
// quarters of the limit: a trap there is almost always a failed allocation.
func (r *Runtime) nearMemoryLimit(mod api.Module) bool {
	mem := mod.Memory()
	if mem == nil {
		return false
	}
	pages := uint64(mem.Size()) / 65536
	return pages*4 >= uint64(r.cfg.MemoryLimitPages)*3
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// argvEnv builds argv (name, the params, then extra) and the
// WASMJOBS_PARAMS value for params.
func argvEnv(name string, params map[string]string, extra []string) ([]string, string, error) {
	args := make([]string, 0, len(params)+len(extra)+1)
	args = append(args, name)
	for _, k := range slices.Sorted(maps.Keys(params)) {
		args = append(args, k+"="+params[k])
	}
	args = append(args, extra...)
	if len(params) == 0 {
		return args, "{}", nil
	}
	env, err := json.Marshal(params)
	if err != nil {
		return nil, "", fmt.Errorf("sandbox: params: %w", err)
	}
	return args, string(env), nil
}
