package onnx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"
	"golang.org/x/sync/semaphore"

	"github.com/wasmjobs/wasmjobs/internal/nn"
)

// Name is the backend's name in nn.Config.Backends.
const Name = "onnx"

// DefaultLibraryPath is where `make models` puts ONNX Runtime.
const DefaultLibraryPath = "models/libonnxruntime.so.1"

// Device selects ONNX Runtime's execution provider.
type Device string

// Devices.
const (
	// DeviceAuto uses CUDA where its provider loads, CPU otherwise.
	DeviceAuto Device = "auto"
	// DeviceCPU uses the CPU provider only.
	DeviceCPU Device = "cpu"
	// DeviceCUDA requires the CUDA provider.
	DeviceCUDA Device = "cuda"
)

// ErrCUDAUnavailable is returned by Probe and loads when Device is
// DeviceCUDA and the CUDA execution provider cannot be used.
var ErrCUDAUnavailable = errors.New("onnx: the CUDA execution provider is not available")

// ParseDevice parses "auto", "cpu" or "cuda".
func ParseDevice(s string) (Device, error) {
	switch d := Device(s); d {
	case DeviceAuto, DeviceCPU, DeviceCUDA:
		return d, nil
	}
	return "", fmt.Errorf("onnx: device %q: want auto, cpu or cuda", s)
}

// Config configures a Backend. The zero value is usable.
type Config struct {
	// LibraryPath is ONNX Runtime's shared library. Defaults to
	// DefaultLibraryPath. The library is loaded once per process: every
	// Backend of a process must name the same one.
	LibraryPath string
	// Device selects the execution provider. Defaults to DeviceAuto.
	Device Device
	// IntraOpThreads is ONNX Runtime's thread count inside one run.
	// Defaults to 1: parallel runs on a shared session scale better.
	IntraOpThreads int
	// BatchWindow is how long the first of concurrent computes waits for
	// others to merge with. Zero (the default) turns batching off.
	BatchWindow time.Duration
	// MaxBatch caps the computes merged into one run. Defaults to 16.
	MaxBatch int
	// CPUArena keeps ONNX Runtime's CPU memory arena. Off by default: the
	// arena keeps the peak of every run for the life of the session, so one
	// job with a wide input would grow the worker for good; without it,
	// activations are freed when each run ends. Costs a few percent of CPU
	// throughput (more allocations).
	CPUArena bool
	// MaxRunningInputBytes bounds the input bytes of all ONNX Runtime runs
	// in progress in this backend; a run waits (until its job's deadline)
	// while others hold the budget, and a run over the whole budget runs
	// alone. A run's working memory grows with its input (the shipped
	// detection model needs 16 to 34 times its input while it runs), so
	// this is what bounds the worker's inference memory however many jobs
	// run at once. Defaults to 16 MiB: one 992 px page detection, or many
	// text lines, at a time (about 400 MB of working memory).
	MaxRunningInputBytes int64
	// Logger receives the device decision. Defaults to slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.LibraryPath == "" {
		c.LibraryPath = DefaultLibraryPath
	}
	if c.Device == "" {
		c.Device = DeviceAuto
	}
	if c.IntraOpThreads <= 0 {
		c.IntraOpThreads = 1
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 16
	}
	if c.MaxRunningInputBytes <= 0 {
		c.MaxRunningInputBytes = 16 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) validate() error {
	if _, err := ParseDevice(string(c.Device)); err != nil {
		return err
	}
	if c.BatchWindow < 0 {
		return fmt.Errorf("onnx: negative batch window %s", c.BatchWindow)
	}
	return nil
}

// Stats counts computes and ONNX Runtime runs; with batching, Runs is
// lower than Computes.
type Stats struct {
	// Computes are ExecContext.Compute calls that reached ONNX Runtime.
	Computes uint64
	// Runs are ONNX Runtime session runs.
	Runs uint64
	// BatchedComputes are computes that ran merged with others.
	BatchedComputes uint64
}

// Backend loads ONNX models. It is safe for concurrent use.
type Backend struct {
	cfg Config

	probeOnce sync.Once
	probeErr  error
	cuda      bool // resolved device, valid after probeOnce

	computes, runs, batched atomic.Uint64
	// running holds the input bytes of runs in progress.
	running *semaphore.Weighted
}

var _ nn.Backend = (*Backend)(nil)

// New returns a backend. It loads nothing: the library is loaded by Probe
// or the first model load.
func New(cfg Config) (*Backend, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Backend{cfg: cfg, running: semaphore.NewWeighted(cfg.MaxRunningInputBytes)}, nil
}

// Name returns "onnx".
func (b *Backend) Name() string { return Name }

// Stats returns the counters.
func (b *Backend) Stats() Stats {
	return Stats{Computes: b.computes.Load(), Runs: b.runs.Load(), BatchedComputes: b.batched.Load()}
}

// UsesCUDA reports whether sessions get the CUDA provider; it probes first.
func (b *Backend) UsesCUDA() (bool, error) {
	err := b.Probe()
	return b.cuda, err
}

// ort's environment is process-wide.
var env struct {
	mu   sync.Mutex
	path string
	ok   bool
}

func initLibrary(path string) error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.ok {
		if env.path != path {
			return fmt.Errorf("onnx: ONNX Runtime is already loaded from %s in this process, cannot also load %s", env.path, path)
		}
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("onnx: ONNX Runtime library (set --onnxruntime-lib or ONNXRUNTIME_LIB; `make models` fetches it): %w", err)
	}
	ort.SetSharedLibraryPath(path)
	// ORT's own log would repeat our errors with C++ source locations.
	if err := ort.InitializeEnvironment(ort.WithLogLevelFatal()); err != nil {
		return fmt.Errorf("onnx: initialize ONNX Runtime from %s: %w", path, err)
	}
	env.path, env.ok = path, true
	go returnNativeMemory()
	return nil
}

// Probe loads the library and settles the device: with DeviceCUDA it fails
// (wrapping ErrCUDAUnavailable) when the CUDA provider cannot be used; with
// DeviceAuto it logs, once, which provider it chose. The result is kept.
func (b *Backend) Probe() error {
	b.probeOnce.Do(func() {
		if b.probeErr = initLibrary(b.cfg.LibraryPath); b.probeErr != nil {
			return
		}
		if b.cfg.Device == DeviceCPU {
			return
		}
		err := tryCUDA()
		switch {
		case err == nil:
			b.cuda = true
			b.cfg.Logger.Info("onnx: using the CUDA execution provider", "device", b.cfg.Device)
		case b.cfg.Device == DeviceCUDA:
			b.probeErr = fmt.Errorf("%w (--nn-device cuda; library %s): %v; use --nn-device auto or cpu to run on CPU",
				ErrCUDAUnavailable, b.cfg.LibraryPath, err)
		default:
			b.cfg.Logger.Info("onnx: CUDA execution provider not available, running on CPU", "device", b.cfg.Device, "reason", err.Error())
		}
	})
	return b.probeErr
}

// tryCUDA appends the CUDA provider to throwaway options: ONNX Runtime
// loads the provider library there, so this is where a CPU-only build fails.
func tryCUDA() error {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return err
	}
	defer opts.Destroy()
	return appendCUDA(opts)
}

func appendCUDA(opts *ort.SessionOptions) error {
	cuda, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return err
	}
	defer cuda.Destroy()
	return opts.AppendExecutionProviderCUDA(cuda)
}

func (b *Backend) sessionOptions() (*ort.SessionOptions, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	if err := opts.SetIntraOpNumThreads(b.cfg.IntraOpThreads); err != nil {
		opts.Destroy()
		return nil, err
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		opts.Destroy()
		return nil, err
	}
	if !b.cfg.CPUArena {
		// The memory pattern pre-plans one buffer per shape seen: with
		// guest-chosen shapes that is another cache a job can grow.
		if err := opts.SetCpuMemArena(false); err != nil {
			opts.Destroy()
			return nil, err
		}
		if err := opts.SetMemPattern(false); err != nil {
			opts.Destroy()
			return nil, err
		}
	}
	if b.cuda {
		if err := appendCUDA(opts); err != nil {
			opts.Destroy()
			return nil, fmt.Errorf("%w: %v", ErrCUDAUnavailable, err)
		}
	}
	return opts, nil
}

// LoadFile implements nn.Backend.
func (b *Backend) LoadFile(_ context.Context, path string) (nn.Graph, error) {
	if err := b.Probe(); err != nil {
		return nil, err
	}
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("%w: onnx: read model %s: %v", nn.ErrInvalidArgument, path, err)
	}
	return b.newGraph(ins, outs, func(in, out []string, opts *ort.SessionOptions) (*ort.DynamicAdvancedSession, error) {
		return ort.NewDynamicAdvancedSession(path, in, out, opts)
	})
}

// LoadBytes implements nn.Backend.
func (b *Backend) LoadBytes(_ context.Context, model []byte) (nn.Graph, error) {
	if err := b.Probe(); err != nil {
		return nil, err
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		return nil, fmt.Errorf("%w: onnx: not an ONNX model: %v", nn.ErrInvalidEncoding, err)
	}
	return b.newGraph(ins, outs, func(in, out []string, opts *ort.SessionOptions) (*ort.DynamicAdvancedSession, error) {
		return ort.NewDynamicAdvancedSessionWithONNXData(model, in, out, opts)
	})
}
