package batch_test

import (
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/queue"
)

// TestIncludeVectors: the Go client refuses exactly the include globs the
// shared vectors call invalid (the Node client is tested with the same file).
func TestIncludeVectors(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../jobs/testdata/include_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Comment []string `json:"comment"`
		Vectors []struct {
			Pattern string `json:"pattern"`
			Valid   bool   `json:"valid"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(b, &file); err != nil || len(file.Vectors) < 20 {
		t.Fatalf("include_vectors.json: %d vectors, %v", len(file.Vectors), err)
	}
	for _, v := range file.Vectors {
		err := batch.ValidateInclude(v.Pattern)
		if (err == nil) != v.Valid {
			t.Errorf("ValidateInclude(%q) = %v, want valid %v", v.Pattern, err, v.Valid)
		}
		_, err = batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://data/in/", Include: v.Pattern}.WithDefaults()
		if (err == nil) != v.Valid || (err != nil && !errors.Is(err, queue.ErrInvalidPayload)) {
			t.Errorf("spec with include %q: %v, want valid %v", v.Pattern, err, v.Valid)
		}
	}
}
