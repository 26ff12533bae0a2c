package sandbox

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBudgetAcceptsShippedGuests(t *testing.T) {
	t.Parallel()
	paths, _ := filepath.Glob("../../guest/wasm/*.wasm")
	more, _ := filepath.Glob("../../guest/guesttest/wasm/*.wasm")
	paths = append(paths, more...)
	if len(paths) == 0 {
		t.Fatal("no guests found")
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
