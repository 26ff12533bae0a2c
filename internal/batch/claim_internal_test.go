package batch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNodeSwapClaimScript: the Node client takes over an output prefix
// whose owner is gone, and moves a failed item back to pending, with the
// very scripts the Go client uses.
func TestNodeSwapClaimScript(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "jobs", "node", "src", "batch.js"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "export const swapClaimScript = `"+swapClaimSource+"`;") {
		t.Fatal("jobs/node/src/batch.js's swapClaimScript differs from the Go client's swapClaimSource")
	}
	if !strings.Contains(string(src), "export const retryItemScript = `"+retryItemSource+"`;") {
		t.Fatal("jobs/node/src/batch.js's retryItemScript differs from the Go client's retryItemSource")
	}
}
