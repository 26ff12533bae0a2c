// Package hostile loads the hostile-guest suite in guest/testdata/hostile for
// tests: every module with the expectations its header states.
package hostile

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Guest is one hostile module and what running it must end with.
type Guest struct {
	// Name is the file name without its extension.
	Name string
	Wasm []byte
	// Expect is a substring of the reason the job is archived with.
	Expect string
	// Params and Input are the job's, from the ;; params: and ;; input: lines.
	Params map[string]string
	Input  string
}

// Dir returns guest/testdata/hostile in this checkout.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "guest", "testdata", "hostile")
}

// Load returns every guest of the suite, sorted by name; it fails tb when a
// module has no header with an expectation.
func Load(tb testing.TB) []Guest {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(Dir(), "*.wasm"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no hostile guests in %s (make hostile-guests builds them): %v", Dir(), err)
	}
	slices.Sort(paths)
	var out []Guest
	for _, p := range paths {
		g, err := load(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, g)
	}
	return out
}

func load(wasmPath string) (Guest, error) {
	base := strings.TrimSuffix(wasmPath, ".wasm")
	g := Guest{Name: filepath.Base(base)}
	var err error
	if g.Wasm, err = os.ReadFile(wasmPath); err != nil {
		return g, err
	}
	head, err := os.ReadFile(base + ".wat")
	if os.IsNotExist(err) {
		head, err = os.ReadFile(base + ".expect")
	}
	if err != nil {
		return g, fmt.Errorf("%s: no .wat or .expect beside it: %w", wasmPath, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(head))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, ";;")
		if !ok {
			break
		}
		key, val, _ := strings.Cut(strings.TrimSpace(rest), ":")
		val = strings.TrimSpace(val)
		switch strings.TrimSpace(key) {
		case "expect":
			g.Expect = val
		case "input":
			g.Input = val
		case "params":
			g.Params = map[string]string{}
			for _, kv := range strings.Fields(val) {
				k, v, _ := strings.Cut(kv, "=")
				g.Params[k] = v
			}
		}
	}
	if g.Expect == "" {
		return g, fmt.Errorf("%s: no ;; expect: line", wasmPath)
	}
	return g, nil
}
