package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot returns the repository's root: the directory holding go.mod,
// found by walking up from the test's directory.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("testenv: no go.mod above the test's directory")
		}
		dir = parent
	}
}

// ModelsDir returns the absolute path of the repository's models/ directory
// (made by `make models`). Without models/libonnxruntime.so.1 the test is
// skipped, or fails under WASMJOBS_TEST_REQUIRE=1.
func ModelsDir(tb testing.TB) string {
	tb.Helper()
	models := filepath.Join(RepoRoot(tb), "models")
	if _, err := os.Stat(filepath.Join(models, "libonnxruntime.so.1")); err != nil {
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatalf("models are missing (%v); run `make models`", err)
		}
		tb.Skipf("models are missing (%v): run `make models` for inference tests", err)
	}
	return models
}
