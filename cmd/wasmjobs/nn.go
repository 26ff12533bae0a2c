package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/nn/fasttext"
	"github.com/wasmjobs/wasmjobs/internal/nn/onnx"
)

// nnFlags configure the wasi_ephemeral_nn host module: the models guests
// load by name and the inference backends. Shared by worker, run and dev.
type nnFlags struct {
	models       []string
	preload      []string
	modelsConfig string
	device       string
	threads      int
	batchWindow  time.Duration
	maxBatch     int
	ortLib       string
	allowLoad    bool
	cpuArena     bool
	maxTensorMiB int
	maxContexts  int
	maxGraphs    int
	runningMiB   int
	// defaults are models registered unless a flag names the same model;
	// dev fills them with the shipped models.
	defaults map[string]string
}

func (n *nnFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	n.registerModels(f)
	f.StringVar(&n.device, "nn-device", string(onnx.DeviceAuto), "ONNX execution provider: auto (CUDA if available, else CPU), cpu or cuda")
	f.IntVar(&n.threads, "nn-threads", 1, "ONNX Runtime intra-op threads per run (parallel runs on shared sessions scale better than wide runs)")
	f.DurationVar(&n.batchWindow, "nn-batch-window", 0, "merge concurrent computes on one model arriving within this window into one run; 0 disables (best on CPU)")
	f.IntVar(&n.maxBatch, "nn-max-batch", 16, "most computes merged into one run")
	f.StringVar(&n.ortLib, "onnxruntime-lib", onnx.DefaultLibraryPath, "ONNX Runtime shared library, loaded on the first ONNX model")
	f.BoolVar(&n.allowLoad, "nn-allow-load", false, "let guests load models from their own bytes (WASI-NN load)")
	f.BoolVar(&n.cpuArena, "nn-cpu-arena", false, "keep ONNX Runtime's CPU memory arena (faster, but the worker keeps the peak memory of its largest run for good)")
	f.IntVar(&n.maxTensorMiB, "nn-max-tensor-mib", 128, "MiB of tensors (inputs and outputs) and guest-loaded models one guest instance may hold")
	f.IntVar(&n.maxContexts, "nn-max-contexts", 16, "live WASI-NN execution contexts per guest instance")
	f.IntVar(&n.maxGraphs, "nn-max-graphs", 16, "WASI-NN graph handles per guest instance")
	f.IntVar(&n.runningMiB, "nn-max-running-input-mib", 16, "MiB of input tensors in ONNX Runtime runs at once, for all jobs together; a run's working memory grows with its input, so this bounds the worker's inference memory (a larger run runs alone)")
	setEnv(f, "nn-device", "nn-threads", "nn-batch-window", "nn-max-batch", "onnxruntime-lib=ONNXRUNTIME_LIB",
		"nn-allow-load", "nn-cpu-arena", "nn-max-tensor-mib", "nn-max-contexts", "nn-max-graphs", "nn-max-running-input-mib")
}

// registerModels registers the flags that name models: --model,
// --nn-preload and --models-config. guest push takes them alone, to check a
// guest's declared models against the workers' configuration.
func (n *nnFlags) registerModels(f *pflag.FlagSet) {
	f.StringArrayVar(&n.preload, "nn-preload", nil, "register a model in WasmEdge's syntax, name:ENCODING:TARGET:path (ENCODING ONNX or Autodetect; TARGET CPU, GPU or AUTO, the device being --nn-device's); repeatable")
	f.StringArrayVar(&n.models, "model", nil, "register a model guests load by name, name=path (repeatable; like WasmEdge's --nn-preload); .onnx, .ftz/.bin (fastText) or .txt")
	f.StringVar(&n.modelsConfig, "models-config", "", `JSON file of models, {"name": "path", ...}; --model entries win`)
	setEnv(f, "model", "nn-preload", "models-config")
}

// parsePreload reads a WasmEdge --nn-preload value, name:ENCODING:TARGET:path
// (the path may hold further colons). ONNX models run on ONNX Runtime; with
// Autodetect the file's extension picks the backend as for --model. The
// device is the worker's (--nn-device) for every model, so TARGET is only
// checked.
func parsePreload(spec string) (name, path string, err error) {
	parts := strings.SplitN(spec, ":", 4)
	if len(parts) != 4 || parts[0] == "" || parts[3] == "" {
		return "", "", fmt.Errorf("--nn-preload %q: want name:ENCODING:TARGET:path, e.g. ocr-det:ONNX:CPU:models/det.onnx", spec)
	}
	switch enc := strings.ToLower(parts[1]); enc {
	case "onnx":
		if !strings.EqualFold(filepath.Ext(parts[3]), ".onnx") {
			return "", "", fmt.Errorf("--nn-preload %q: ONNX wants a .onnx file", spec)
		}
	case "autodetect", "auto":
	default:
		return "", "", fmt.Errorf("--nn-preload %q: encoding %s is not served here: ONNX (ONNX Runtime) or Autodetect (.onnx, fastText .ftz/.bin, .txt)", spec, parts[1])
	}
	switch strings.ToUpper(parts[2]) {
	case "CPU", "GPU", "AUTO":
	default:
		return "", "", fmt.Errorf("--nn-preload %q: target %s: want CPU, GPU or AUTO", spec, parts[2])
	}
	return parts[0], parts[3], nil
}

// modelEntry is one model of --models-config: a path, or an object with the
// path and the largest input shapes guests may give it.
type modelEntry struct {
	Path     string     `json:"path"`
	MaxShape [][]uint32 `json:"max_shape"`
}

func (e *modelEntry) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &e.Path); err == nil {
		return nil
	}
	type plain modelEntry
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf(`want "path" or {"path": "...", "max_shape": [[d0, d1, ...], ...]}: %w`, err)
	}
	*e = modelEntry(p)
	return nil
}

// modelMap merges defaults, --models-config and --model, later winning. A
// model without a max_shape of its own gets the shipped bound of its file,
// if it is a shipped model (shippedMaxShapes).
func (n *nnFlags) modelMap() (map[string]nn.Model, error) {
	entries := map[string]modelEntry{}
	for name, p := range n.defaults {
		entries[name] = modelEntry{Path: p}
	}
	if n.modelsConfig != "" {
		b, err := os.ReadFile(n.modelsConfig)
		if err != nil {
			return nil, fmt.Errorf("--models-config: %w", err)
		}
		var m map[string]modelEntry
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("--models-config %s: want a JSON object of name to path or {\"path\", \"max_shape\"}: %w", n.modelsConfig, err)
		}
		base := filepath.Dir(n.modelsConfig)
		for name, e := range m {
			if e.Path == "" {
				return nil, fmt.Errorf("--models-config %s: model %s has no path", n.modelsConfig, name)
			}
			if !filepath.IsAbs(e.Path) {
				e.Path = filepath.Join(base, e.Path)
			}
			entries[name] = e
		}
	}
	for _, kv := range n.models {
		name, p, ok := strings.Cut(kv, "=")
		if !ok || name == "" || p == "" {
			return nil, fmt.Errorf("--model %q: want name=path", kv)
		}
		entries[name] = modelEntry{Path: p}
	}
	for _, spec := range n.preload {
		name, p, err := parsePreload(spec)
		if err != nil {
			return nil, err
		}
		entries[name] = modelEntry{Path: p}
	}
	models := make(map[string]nn.Model, len(entries))
	for name, e := range entries {
		if e.MaxShape == nil {
			e.MaxShape = shippedMaxShapes[filepath.Base(e.Path)]
		}
		models[name] = nn.Model{Path: e.Path, MaxShape: e.MaxShape}
	}
	return models, nil
}

// module builds the host module (see config).
func (n *nnFlags) module() (*nn.Module, error) {
	cfg, err := n.config()
	if err != nil {
		return nil, err
	}
	return nn.New(cfg)
}

// config returns the host module's configuration. When ONNX models are
// registered it loads ONNX Runtime now, so a bad --onnxruntime-lib or an
// unavailable --nn-device cuda fails at start rather than on the first job.
func (n *nnFlags) config() (nn.Config, error) {
	dev, err := onnx.ParseDevice(n.device)
	if err != nil {
		return nn.Config{}, fmt.Errorf("--nn-device: %w", err)
	}
	if n.threads <= 0 {
		return nn.Config{}, fmt.Errorf("--nn-threads %d: want at least 1", n.threads)
	}
	if n.maxTensorMiB <= 0 || n.maxContexts <= 0 || n.maxGraphs <= 0 {
		return nn.Config{}, fmt.Errorf("--nn-max-tensor-mib %d, --nn-max-contexts %d, --nn-max-graphs %d: want each at least 1", n.maxTensorMiB, n.maxContexts, n.maxGraphs)
	}
	if n.runningMiB <= 0 {
		return nn.Config{}, fmt.Errorf("--nn-max-running-input-mib %d: want at least 1", n.runningMiB)
	}
	if n.batchWindow < 0 || n.maxBatch <= 0 {
		return nn.Config{}, fmt.Errorf("--nn-batch-window %s, --nn-max-batch %d: want a window ≥ 0 and a batch ≥ 1", n.batchWindow, n.maxBatch)
	}
	models, err := n.modelMap()
	if err != nil {
		return nn.Config{}, err
	}
	ob, err := onnx.New(onnx.Config{
		LibraryPath:          n.ortLib,
		Device:               dev,
		IntraOpThreads:       n.threads,
		BatchWindow:          n.batchWindow,
		MaxBatch:             n.maxBatch,
		CPUArena:             n.cpuArena,
		MaxRunningInputBytes: int64(n.runningMiB) << 20,
	})
	if err != nil {
		return nn.Config{}, err
	}
	usesONNX := n.allowLoad || dev == onnx.DeviceCUDA
	for _, m := range models {
		if b, _ := nn.BackendForPath(m.Path); b == onnx.Name {
			usesONNX = true
		}
	}
	if usesONNX {
		if err := ob.Probe(); err != nil {
			return nn.Config{}, err
		}
	}
	if len(models) > 0 {
		slog.Info("wasi-nn models registered", "models", strings.Join(slices.Sorted(maps.Keys(models)), ","), "device", dev)
	}
	return nn.Config{
		Models:         models,
		Backends:       map[string]nn.Backend{onnx.Name: ob, "fasttext": fasttext.New()},
		AllowLoad:      n.allowLoad,
		MaxTensorBytes: uint64(n.maxTensorMiB) << 20,
		MaxContexts:    n.maxContexts,
		MaxGraphs:      n.maxGraphs,
	}, nil
}

// shippedModels are the models `make models` fetches, by the names the
// shipped guests load.
var shippedModels = map[string]string{
	"ocr-det":  "ch_PP-OCRv4_det_infer.onnx",
	"ocr-cls":  "ch_ppocr_mobile_v2.0_cls_infer.onnx",
	"ocr-rec":  "ch_PP-OCRv4_rec_infer.onnx",
	"ocr-keys": "ppocr_keys_v1.txt",
	"langid":   "lid.176.ftz",
}

// shippedMaxShapes bound the inputs of the shipped models, by file name, to
// what the ocr guest feeds them with some room: detection pages up to 1312
// px a side (max_side ≤ 1280; the default 960 gives 992), recognition lines
// 48 px high and up to 1600 wide (the default rec_max_width), direction
// checks of 48×192, and up to 8 crops a call for guests that batch. At
// these bounds one detection run peaks near 300 MiB; at 4096 px it would be
// several GiB. A models-config entry's max_shape replaces them.
var shippedMaxShapes = map[string][][]uint32{
	"ch_PP-OCRv4_det_infer.onnx":          {{1, 3, 1312, 1312}},
	"ch_ppocr_mobile_v2.0_cls_infer.onnx": {{8, 3, 48, 192}},
	"ch_PP-OCRv4_rec_infer.onnx":          {{8, 3, 48, 1600}},
}

// shippedModelPaths returns the shipped models present in dir.
func shippedModelPaths(dir string) map[string]string {
	out := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(shippedModels)) {
		p := filepath.Join(dir, shippedModels[name])
		if _, err := os.Stat(p); err == nil {
			out[name] = p
		}
	}
	return out
}
