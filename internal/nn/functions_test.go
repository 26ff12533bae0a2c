package nn

import (
	"bytes"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite guest/README.md's wasi_ephemeral_nn function table from hostFuncs")

const (
	readmePath  = "../../guest/README.md"
	tableStart  = "<!-- wasi_ephemeral_nn functions: generated from internal/nn hostFuncs by go test ./internal/nn -run TestFunctionsDoc -update -->\n"
	tableEnd    = "<!-- end of generated wasi_ephemeral_nn functions -->\n"
	tableHeader = "| function | params (i32) | notes |\n|---|---|---|\n"
)

// functionsDoc is the Markdown table of hostFuncs.
func functionsDoc() string {
	var b strings.Builder
	b.WriteString(tableHeader)
	for _, f := range hostFuncs {
		b.WriteString("| `" + f.name + "` | " + strings.Join(f.params, ", ") + " | " + f.doc + " |\n")
	}
	return b.String()
}

// TestFunctionsDoc checks that guest/README.md documents the functions the
// module defines (go test -run TestFunctionsDoc -update rewrites it).
func TestFunctionsDoc(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := bytes.Cut(readme, []byte(tableStart))
	_, after, ok2 := bytes.Cut(rest, []byte(tableEnd))
	if !ok || !ok2 {
		t.Fatalf("%s has no generated function table between %q and %q", readmePath, tableStart, tableEnd)
	}
	want := tableStart + functionsDoc() + tableEnd
	got := readme[len(before) : len(readme)-len(after)]
	if string(got) == want {
		return
	}
	if !*update {
		t.Fatalf("%s's function table is stale; run go test ./internal/nn -run TestFunctionsDoc -update\nwant:\n%s", readmePath, want)
	}
	out := slices.Concat(before, []byte(want), after)
	if err := os.WriteFile(readmePath, out, 0o644); err != nil {
		t.Fatal(err)
	}
}
