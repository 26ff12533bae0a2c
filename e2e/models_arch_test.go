package e2e_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// TestModelsForArm64: `make models` (scripts/models.sh) for an arm64 image
// (MODELS_ARCH=arm64, as the Dockerfile passes Docker's TARGETARCH) puts the
// arm64 ONNX Runtime library in place, checksummed, from the same npm
// package; an architecture without a library is refused with its name.
func TestModelsForArm64(t *testing.T) {
	root := testenv.RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, ".tools", "npm-packs", "onnxruntime-node-1.30.0.tgz")); err != nil {
		if os.Getenv(testenv.EnvRequire) == "1" {
			t.Fatalf("no cached npm packs (make models fetches them): %v", err)
		}
		t.Skip("no cached npm packs: run make models")
	}
	run := func(arch string) (string, string, error) {
		dest := t.TempDir()
		cmd := exec.Command("bash", "scripts/models.sh")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "MODELS_ARCH="+arch, "MODELS_DEST="+dest)
		out, err := cmd.CombinedOutput()
		return dest, string(out), err
	}
	dest, out, err := run("arm64")
	if err != nil {
		t.Fatalf("models.sh for arm64: %v\n%s", err, out)
	}
	f, err := elf.Open(filepath.Join(dest, "libonnxruntime.so.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("the arm64 library is built for %v", f.Machine)
	}
	if _, err := os.Stat(filepath.Join(dest, "models.json")); err != nil {
		t.Error(err)
	}
	if _, out, err := run("riscv64"); err == nil || !strings.Contains(out, "riscv64") {
		t.Errorf("models.sh for riscv64: %v %s, want a refusal naming it", err, out)
	}
}
