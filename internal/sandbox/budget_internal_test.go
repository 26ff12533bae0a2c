package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
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
		out, _, err := budget(wasm, lim, 4096)
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
	out, _, err := budget(wasm, lim, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{}, wasmHeader...), secTable, 9, 2, 0x70, 0x01, 2, 100, 0x70, 0x01, 3, 100)
	if string(out) != string(want) {
		t.Fatalf("budget = % x, want % x", out, want)
	}
	if _, _, err := budget(want, lim, 0); err != nil {
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
		out, _, err := budget(wasm, lim, 4096)
		if err != nil {
			return
		}
		// What passes once passes again unchanged.
		again, _, err := budget(out, lim, 4096)
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

// withCustom appends a custom section named name holding body to wasm.
func withCustom(wasm []byte, name, body string) []byte {
	sec := appendU32(nil, uint32(len(name)))
	sec = append(append(sec, name...), body...)
	return appendSection(append([]byte{}, wasm...), secCustom, sec)
}

func TestDeclaredModels(t *testing.T) {
	t.Parallel()
	lim := ModuleLimits{}.WithDefaults()
	empty := append([]byte{}, wasmHeader...)
	many := ""
	for i := range maxDeclaredModels + 1 {
		many += fmt.Sprintf("m%d\n", i)
	}
	for _, tc := range []struct {
		name     string
		sections []string // bodies of ModelsSection sections, in order
		want     []string
		err      string
	}{
		{name: "none"},
		{name: "one", sections: []string{"langid\n"}, want: []string{"langid"}},
		{name: "no final newline", sections: []string{"ocr-det\nocr-rec"}, want: []string{"ocr-det", "ocr-rec"}},
		{name: "sections add up without repeats", sections: []string{"ocr-det\nocr-rec\n", "ocr-rec\nocr-keys\n"}, want: []string{"ocr-det", "ocr-rec", "ocr-keys"}},
		{name: "empty section", sections: []string{""}},
		{name: "empty line", sections: []string{"a\n\nb\n"}, err: "want 1-128 bytes"},
		{name: "space", sections: []string{"my model\n"}, err: "byte 0x20"},
		{name: "too long", sections: []string{strings.Repeat("x", 129) + "\n"}, err: "want 1-128 bytes"},
		{name: "too many", sections: []string{many}, err: "more than 64 models"},
	} {
		wasm := empty
		for _, b := range tc.sections {
			wasm = withCustom(wasm, ModelsSection, b)
		}
		wasm = withCustom(wasm, "wasmjobs:other", "ignored\n")
		if tc.name == "one" {
			wasm = withCustom(wasm, ABISection, "future\nrecords\n")
		}
		code, d, err := budget(wasm, lim, 0)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), ModelsSection) {
				t.Errorf("%s: err = %v, want one naming %s and %q", tc.name, err, ModelsSection, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if d.records != (tc.name == "one") {
			t.Errorf("%s: records ABI = %v", tc.name, d.records)
		}
		if models := d.models; !slices.Equal(models, tc.want) {
			t.Errorf("%s: models = %q, want %q", tc.name, models, tc.want)
		}
		if string(code) != string(empty) {
			t.Errorf("%s: the custom sections were not dropped from the code: % x", tc.name, code)
		}
	}
}
