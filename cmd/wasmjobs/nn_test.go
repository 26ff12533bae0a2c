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
	if _, err := (&nnFlags{device: "tpu", threads: 1, maxBatch: 1}).module(); err == nil {
		t.Fatal("--nn-device tpu accepted")
	}
}

func TestModelsConfigShapes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "models.json")
	body := `{"det": "ch_PP-OCRv4_det_infer.onnx", "rec": {"path": "ch_PP-OCRv4_rec_infer.onnx", "max_shape": [[1, 3, 48, 4096]]}, "other": {"path": "x.onnx"}}`
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := (&nnFlags{modelsConfig: cfg}).modelMap()
	if err != nil {
		t.Fatal(err)
	}
	if got := m["det"].MaxShape; len(got) != 1 || got[0][2] != 1312 {
		t.Errorf("shipped detection model: max_shape %v, want the shipped bound", got)
	}
	if got := m["rec"].MaxShape; len(got) != 1 || got[0][3] != 4096 {
		t.Errorf("configured max_shape: %v", got)
	}
	if got := m["other"].MaxShape; got != nil {
		t.Errorf("unknown model: max_shape %v, want none", got)
	}
	for _, bad := range []string{`{"a": 1}`, `{"a": {"path": "a.onnx", "max_shap": [[1]]}}`, `{"a": {"max_shape": [[1]]}}`} {
		if err := os.WriteFile(cfg, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := (&nnFlags{modelsConfig: cfg}).modelMap(); err == nil {
			t.Errorf("models config %s: no error", bad)
		}
	}
}
