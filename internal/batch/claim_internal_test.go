package batch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNodeBatchScripts: the Node client takes over an output prefix whose
// owner is gone, moves a failed item back to pending, and records the
// items a cancel deleted the jobs of, with the very scripts the Go client
// uses.
func TestNodeBatchScripts(t *testing.T) {
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
	if !strings.Contains(string(src), "export const finishItemScript = `"+finishItemSource+"`;") {
		t.Fatal("jobs/node/src/batch.js's finishItemScript differs from the Go client's finishItemSource")
	}
}
