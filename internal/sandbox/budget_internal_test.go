package sandbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tetratelabs/wazero"
)

func TestBudgetAcceptsShippedGuests(t *testing.T) {
	t.Parallel()
	paths, _ := filepath.Glob("../guests/wasm/*.wasm")
	more, _ := filepath.Glob("../guests/guesttest/wasm/*.wasm")
	paths = append(paths, more...)
	if len(paths) == 0 {
		t.Fatal("no guests found")
	}
	if hello := goHello(t); hello != "" {
		paths = append(paths, hello)
	}
	lim := ModuleLimits{}.WithDefaults()
	for _, p := range paths {
		wasm, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out, err := budget(wasm, lim, 4096)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		t.Logf("%s: %d → %d bytes", filepath.Base(p), len(wasm), len(out))
	}
}

// goHello builds an ordinary Go program for wasip1 with the local toolchain
// (fmt pulls in reflection, unicode tables and the whole runtime) and
// returns its path, or "" in -short mode.
func goHello(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		return ""
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module hello\n\ngo 1.22\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "gohello.wasm")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build hello for wasip1: %v\n%s", err, b)
	}
	return out
}

func TestBudgetCapsTableMaximum(t *testing.T) {
	t.Parallel()
	lim := ModuleLimits{MaxTableElements: 100}.WithDefaults()
	// (table 2 funcref) and (table 3 4096 funcref): both get maximum 100.
	wasm := append(append([]byte{}, wasmHeader...), secTable, 7, 2, 0x70, 0x00, 2, 0x70, 0x01, 3)
	wasm = append(wasm[:len(wasm)-1], 3, 0x80, 0x20) // max 4096 as LEB
	wasm[9] = byte(len(wasm) - 10)
	out, err := budget(wasm, lim, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{}, wasmHeader...), secTable, 9, 2, 0x70, 0x01, 2, 100, 0x70, 0x01, 3, 100)
	if string(out) != string(want) {
		t.Fatalf("budget = % x, want % x", out, want)
	}
	if _, err := budget(want, lim, 0); err != nil {
		t.Fatal(err)
	}
}

// fuzzCache shares compiled modules between FuzzBudget's runtimes.
var fuzzCache = wazero.NewCompilationCache()

func FuzzBudget(f *testing.F) {
	paths, _ := filepath.Glob("../../guest/testdata/hostile/*.wasm")
	paths = append(paths, "../guests/wasm/hello.wasm")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && len(b) < 1<<16 {
			f.Add(b)
		}
	}
	lim := ModuleLimits{}.WithDefaults()
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := budget(wasm, lim, 4096)
		if err != nil {
			return
		}
		// What passes once passes again unchanged.
		again, err := budget(out, lim, 4096)
		if err != nil {
			t.Fatalf("rewritten module fails the budget: %v", err)
		}
		if string(again) != string(out) {
			t.Fatalf("budget is not idempotent")
		}
		// Metering never fails on what wazero accepts, and what it
		// writes wazero accepts as well.
		metered, merr := meter(out, lim)
		ctx := context.Background()
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(fuzzCache))
		defer rt.Close(ctx)
		if _, err := rt.CompileModule(ctx, out); err != nil {
			return
		}
		if merr != nil {
			if !errors.Is(merr, errImport) { // the sandbox's own import
				t.Fatalf("meter refused a module wazero compiles: %v", merr)
			}
			return
		}
		if _, err := rt.CompileModule(ctx, metered); err != nil {
			t.Fatalf("metered module does not compile: %v", err)
		}
	})
}
