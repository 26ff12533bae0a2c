package jobs_test

import (
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/wasmjobs/wasmjobs/jobs"
)

// TestIncludeVectors: the Go client refuses exactly the include globs the
// shared vectors call invalid (the Node client is tested with the same file).
func TestIncludeVectors(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/include_vectors.json")
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
		err := jobs.ValidateInclude(v.Pattern)
		if (err == nil) != v.Valid {
			t.Errorf("ValidateInclude(%q) = %v, want valid %v", v.Pattern, err, v.Valid)
		}
		_, err = jobs.BatchSpec{Guest: "wordcount", Type: "text", Input: "s3://data/in/", Include: v.Pattern}.WithDefaults()
		if (err == nil) != v.Valid || (err != nil && !errors.Is(err, jobs.ErrInvalidPayload)) {
			t.Errorf("spec with include %q: %v, want valid %v", v.Pattern, err, v.Valid)
		}
	}
}
