package main

import (
	"context"
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
	"github.com/wasmjobs/wasmjobs/worker/nn"
	"github.com/wasmjobs/wasmjobs/worker/nn/fasttext"
	"github.com/wasmjobs/wasmjobs/worker/nn/onnx"
)

// nnFlags configure the wasi_ephemeral_nn host module: the models guests
// load by name and the inference backends. Shared by worker, run and dev.
type nnFlags struct {
	models       []string
	modelsConfig string
	device       string
	threads      int
	batchWindow  time.Duration
	maxBatch     int
	ortLib       string
	allowLoad    bool
	// defaults are models registered unless a flag names the same model;
	// dev fills them with the shipped models.
	defaults map[string]string
}

func (n *nnFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&n.models, "model", nil, "register a model guests load by name, name=path (repeatable; like WasmEdge's --nn-preload); .onnx, .ftz/.bin (fastText) or .txt")
	f.StringVar(&n.modelsConfig, "models-config", envOr("WASMJOBS_MODELS_CONFIG", ""), `JSON file of models, {"name": "path", ...}; --model entries win [$WASMJOBS_MODELS_CONFIG]`)
	f.StringVar(&n.device, "nn-device", envOr("WASMJOBS_NN_DEVICE", string(onnx.DeviceAuto)), "ONNX execution provider: auto (CUDA if available, else CPU), cpu or cuda [$WASMJOBS_NN_DEVICE]")
	f.IntVar(&n.threads, "nn-threads", 1, "ONNX Runtime intra-op threads per run (parallel runs on shared sessions scale better than wide runs)")
	f.DurationVar(&n.batchWindow, "nn-batch-window", 0, "merge concurrent computes on one model arriving within this window into one run; 0 disables (best on CPU)")
	f.IntVar(&n.maxBatch, "nn-max-batch", 16, "most computes merged into one run")
	f.StringVar(&n.ortLib, "onnxruntime-lib", envOr("ONNXRUNTIME_LIB", onnx.DefaultLibraryPath), "ONNX Runtime shared library, loaded on the first ONNX model [$ONNXRUNTIME_LIB]")
	f.BoolVar(&n.allowLoad, "nn-allow-load", false, "let guests load models from their own bytes (WASI-NN load)")
}

// modelMap merges defaults, --models-config and --model, later winning.
func (n *nnFlags) modelMap() (map[string]nn.Model, error) {
	paths := maps.Clone(n.defaults)
	if paths == nil {
		paths = map[string]string{}
	}
	if n.modelsConfig != "" {
		b, err := os.ReadFile(n.modelsConfig)
		if err != nil {
			return nil, fmt.Errorf("--models-config: %w", err)
		}
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("--models-config %s: want a JSON object of name to path: %w", n.modelsConfig, err)
		}
		base := filepath.Dir(n.modelsConfig)
		for name, p := range m {
			if !filepath.IsAbs(p) {
				p = filepath.Join(base, p)
			}
			paths[name] = p
		}
	}
	for _, kv := range n.models {
		name, p, ok := strings.Cut(kv, "=")
		if !ok || name == "" || p == "" {
			return nil, fmt.Errorf("--model %q: want name=path", kv)
		}
		paths[name] = p
	}
	models := make(map[string]nn.Model, len(paths))
	for name, p := range paths {
		models[name] = nn.Model{Path: p}
	}
	return models, nil
}

// module builds the host module. When ONNX models are registered it loads
// ONNX Runtime now, so a bad --onnxruntime-lib or an unavailable
// --nn-device cuda fails at start rather than on the first job.
func (n *nnFlags) module(_ context.Context, onCompute func(string, time.Duration)) (*nn.Module, error) {
	dev, err := onnx.ParseDevice(n.device)
	if err != nil {
		return nil, fmt.Errorf("--nn-device: %w", err)
	}
	if n.threads <= 0 {
		return nil, fmt.Errorf("--nn-threads %d: want at least 1", n.threads)
	}
	if n.batchWindow < 0 || n.maxBatch <= 0 {
		return nil, fmt.Errorf("--nn-batch-window %s, --nn-max-batch %d: want a window ≥ 0 and a batch ≥ 1", n.batchWindow, n.maxBatch)
	}
	models, err := n.modelMap()
	if err != nil {
		return nil, err
	}
	ob, err := onnx.New(onnx.Config{
		LibraryPath:    n.ortLib,
		Device:         dev,
		IntraOpThreads: n.threads,
		BatchWindow:    n.batchWindow,
		MaxBatch:       n.maxBatch,
	})
	if err != nil {
		return nil, err
	}
	usesONNX := n.allowLoad || dev == onnx.DeviceCUDA
	for _, m := range models {
		if b, _ := nn.BackendForPath(m.Path); b == onnx.Name {
			usesONNX = true
		}
	}
	if usesONNX {
		if err := ob.Probe(); err != nil {
			return nil, err
		}
	}
	mod, err := nn.New(nn.Config{
		Models:    models,
		Backends:  map[string]nn.Backend{onnx.Name: ob, "fasttext": fasttext.New()},
		AllowLoad: n.allowLoad,
		OnCompute: onCompute,
	})
	if err != nil {
		return nil, err
	}
	if names := mod.Models(); len(names) > 0 {
		slog.Info("wasi-nn models registered", "models", strings.Join(names, ","), "device", dev)
	}
	return mod, nil
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
