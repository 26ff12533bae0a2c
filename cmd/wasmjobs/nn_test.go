package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestModelMap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "models.json")
	if err := os.WriteFile(cfg, []byte(`{"a": "a.onnx", "b": "/abs/b.txt"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	n := nnFlags{
		defaults:     map[string]string{"a": "default.onnx", "c": "c.ftz"},
		modelsConfig: cfg,
		models:       []string{"b=flag.txt"},
	}
	m, err := n.modelMap()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": filepath.Join(dir, "a.onnx"), "b": "flag.txt", "c": "c.ftz"}
	for name, p := range want {
		if m[name].Path != p {
			t.Errorf("%s: %q, want %q", name, m[name].Path, p)
		}
	}
	for _, bad := range []string{"noequals", "=x", "x="} {
		if _, err := (&nnFlags{models: []string{bad}}).modelMap(); err == nil {
			t.Errorf("--model %q: no error", bad)
		}
	}
}

func TestNNDeviceFlag(t *testing.T) {
	t.Parallel()
	if _, err := (&nnFlags{device: "tpu", threads: 1, maxBatch: 1}).module(t.Context(), nil); err == nil {
		t.Fatal("--nn-device tpu accepted")
	}
}
