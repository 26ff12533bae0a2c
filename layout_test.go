package wasmjobs_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/wasmjobs/wasmjobs/"

// layers ranks our packages: a package imports only packages of a lower
// layer (or its own tree's parent, as nn/onnx imports nn). Keep in step with
// the README's architecture section.
var layers = []struct {
	rank int
	pkgs []string
}{
	{0, []string{"internal/s3url", "internal/flight", "internal/httpguard", "internal/hostcall", "internal/records"}},
	{1, []string{"internal/blob", "internal/queue", "internal/sandbox", "internal/nn", "internal/nn/onnx", "internal/nn/fasttext"}},
	{2, []string{"internal/batch", "internal/guests"}},
	{3, []string{"internal/worker", "internal/web"}},
	{4, []string{"cmd/wasmjobs"}},
}

// public are the packages importable from outside this module.
var public = []string{"jobs"}

// testOnly are helpers for tests and benchmarks; no other package may
// import them.
var testOnly = []string{"internal/benchratio", "internal/testenv", "internal/testworker", "internal/hostile", "internal/guests/guesttest", "internal/nn/nntest"}

type pkg struct {
	path    string
	imports []string
}

func ours(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if f[0]+"/" == module {
			continue // this test
		}
		p := pkg{path: strings.TrimPrefix(f[0], module)}
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, module) {
				p.imports = append(p.imports, strings.TrimPrefix(imp, module))
			}
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rank(path string) (int, bool) {
	for _, l := range layers {
		if slices.Contains(l.pkgs, path) {
			return l.rank, true
		}
	}
	return 0, false
}

// TestImportsGoOneWay checks the layout the README describes.
func TestImportsGoOneWay(t *testing.T) {
	for _, p := range ours(t) {
		if !strings.HasPrefix(p.path, "internal/") && !strings.HasPrefix(p.path, "cmd/") &&
			!slices.Contains(public, p.path) && p.path != "e2e" {
			t.Errorf("%s is outside internal/: only %v may be imported by users", p.path, public)
		}
		r, ranked := rank(p.path)
		for _, imp := range p.imports {
			switch {
			case slices.Contains(testOnly, imp) && !slices.Contains(testOnly, p.path):
				t.Errorf("%s imports the test helper %s", p.path, imp)
			case imp == "internal/web" && p.path != "cmd/wasmjobs":
				t.Errorf("%s imports internal/web: only cmd may", p.path)
			case slices.Contains(public, imp) && strings.HasPrefix(p.path, "internal/") && !slices.Contains(testOnly, p.path):
				t.Errorf("%s imports the public %s: internal packages sit below it", p.path, imp)
			case ranked:
				ir, ok := rank(imp)
				if !ok {
					if !slices.Contains(public, imp) {
						t.Errorf("%s imports %s, which has no layer here", p.path, imp)
					}
					continue
				}
				if ir >= r && !strings.HasPrefix(p.path, imp+"/") {
					t.Errorf("%s (layer %d) imports %s (layer %d): imports go down only", p.path, r, imp, ir)
				}
			}
		}
		if strings.HasPrefix(p.path, "internal/") && !ranked && !slices.Contains(testOnly, p.path) {
			t.Errorf("%s has no layer: add it to layers", p.path)
		}
	}
}

// TestLeavesImportOnlyTheLeaf: the storage adapter and the URL package do
// not drag the queue, the sandbox or inference along.
func TestLeavesImportOnlyTheLeaf(t *testing.T) {
	allowed := map[string][]string{"internal/s3url": nil, "internal/blob": {"internal/s3url"}}
	for _, p := range ours(t) {
		want, ok := allowed[p.path]
		if !ok {
			continue
		}
		for _, imp := range p.imports {
			if !slices.Contains(want, imp) {
				t.Errorf("%s imports %s; it may import only %v of ours", p.path, imp, want)
			}
		}
	}
}
