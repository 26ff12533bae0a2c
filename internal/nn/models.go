package nn

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/wasmjobs/wasmjobs/internal/flight"
)

// Model is a model registered by name.
type Model struct {
	// Backend names the backend that loads Path. Empty means chosen by
	// extension (BackendForPath).
	Backend string
	// Path is the model file.
	Path string
	// MaxShape bounds the inputs guests give the model: MaxShape[i] is the
	// largest shape of input i, dimension by dimension (a tensor of another
	// rank is refused). The bound is what keeps ONNX Runtime's outputs and
	// activations, which no budget sees while a run lasts, in proportion to
	// what the model's guests need. Inputs without an entry (or a nil one)
	// are bounded by the module's per-tensor limits only.
	MaxShape [][]uint32
}

// checkShape reports whether t fits the model's bound for input index.
func (m Model) checkShape(name string, index uint32, dims []uint32) error {
	if uint64(index) >= uint64(len(m.MaxShape)) || m.MaxShape[index] == nil {
		return nil
	}
	limit := m.MaxShape[index]
	ok := len(dims) == len(limit)
	for i := 0; ok && i < len(dims); i++ {
		ok = dims[i] <= limit[i]
	}
	if !ok {
		return errf(ErrTooLarge, "set_input %d: model %s takes shapes up to %v, got %v", index, name, limit, dims)
	}
	return nil
}

// BackendForPath returns the backend name for a model file by its
// extension: .onnx → "onnx", .ftz and .bin → "fasttext", .txt → "text".
func BackendForPath(path string) (string, bool) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".onnx":
		return "onnx", true
	case ".ftz", ".bin":
		return "fasttext", true
	case ".txt":
		return textBackendName, true
	}
	return "", false
}

// models loads the registered models once per process and shares them
// between instances.
type models struct {
	specs    map[string]Model
	backends map[string]Backend
	log      *slog.Logger

	mu     sync.Mutex
	loaded map[string]Graph
	failed map[string]error // a model that failed to load stays failed
	loads  *flight.Group[string, Graph]
	closed bool
}

func newModels(specs map[string]Model, backends map[string]Backend, log *slog.Logger) (*models, error) {
	r := &models{
		specs:    map[string]Model{},
		backends: backends,
		log:      log,
		loaded:   map[string]Graph{},
		failed:   map[string]error{},
	}
	r.loads = flight.New[string, Graph](&r.mu)
	for _, name := range slices.Sorted(maps.Keys(specs)) {
		m := specs[name]
		if name == "" {
			return nil, fmt.Errorf("nn: model with an empty name (%s)", m.Path)
		}
		if m.Backend == "" {
			b, ok := BackendForPath(m.Path)
			if !ok {
				return nil, fmt.Errorf("nn: model %s: cannot tell the backend of %s by its extension (want .onnx, .ftz, .bin or .txt)", name, m.Path)
			}
			m.Backend = b
		}
		if _, ok := backends[m.Backend]; !ok {
			return nil, fmt.Errorf("nn: model %s (%s): no %q backend in this worker (have %s)", name, m.Path, m.Backend,
				strings.Join(slices.Sorted(maps.Keys(backends)), ", "))
		}
		if _, err := os.Stat(m.Path); err != nil {
			return nil, fmt.Errorf("nn: model %s: %w", name, err)
		}
		r.specs[name] = m
	}
	return r, nil
}

// get returns the shared graph of a registered model, loading it on first
// use. Concurrent first uses share one load. A failed load is remembered and
// logged once: every later caller gets the same error without a reload, so a
// guest calling load_by_name in a loop on a broken model costs one map
// lookup per call, not one model load and one log line. The operator fixes
// the model and restarts the worker.
func (r *models) get(ctx context.Context, name string) (Graph, error) {
	m, ok := r.specs[name]
	if !ok {
		return nil, errf(ErrNotFound, "no model named %q is registered", name)
	}
	lookup := func() (Graph, bool, error) {
		if r.closed {
			return nil, true, errf(ErrRuntime, "model registry is closed")
		}
		if g, ok := r.loaded[name]; ok {
			return g, true, nil
		}
		err, ok := r.failed[name]
		return nil, ok, err
	}
	load := func() (Graph, error) {
		// The load outlives a canceled caller: others may be waiting on it.
		g, err := r.backends[m.Backend].LoadFile(context.WithoutCancel(ctx), m.Path)
		if err != nil {
			err = fmt.Errorf("nn: model %s (%s) failed to load; this worker will not retry it until restarted: %w", name, m.Path, err)
			r.log.Error("wasi-nn: model failed to load", "model", name, "path", m.Path, "err", err)
		} else {
			r.log.Info("wasi-nn: model loaded", "model", name, "backend", m.Backend, "path", m.Path)
		}
		return g, err
	}
	keep := func(g Graph, err error) (Graph, error) {
		switch {
		case err != nil:
			r.failed[name] = err
		case r.closed:
			_ = g.Close()
			return nil, errf(ErrRuntime, "model registry is closed")
		default:
			r.loaded[name] = g
		}
		return g, err
	}
	return r.loads.Do(ctx, name, lookup, load, keep)
}

// close releases every loaded model.
func (r *models) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	for name, g := range r.loaded {
		if err := g.Close(); err != nil {
			errs = append(errs, fmt.Errorf("nn: close model %s: %w", name, err))
		}
	}
	r.loaded = nil
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}
