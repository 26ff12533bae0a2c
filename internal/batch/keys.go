package batch

import (
	"strings"

	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

// Redis keys of a batch; the {id} hash tag keeps them in one cluster slot.
func batchKey(id string) string       { return "wasmjobs:batch:{" + id + "}" }
func batchStatusKey(id string) string { return "wasmjobs:batch:{" + id + "}:status" }
func batchItemsKey(id string) string  { return "wasmjobs:batch:{" + id + "}:items" }

const batchesKey = "wasmjobs:batches"

// batchOutputKey holds the id of the batch that owns an output prefix.
// The prefix is taken the way outputs are named (s3url.OutputKey): with
// surrounding slashes trimmed, so "out", "out/" and "/out/" are one claim.
// It is a single key, claimed with SETNX, so it needs no hash tag.
func batchOutputKey(out s3url.ObjectURL) string {
	return "wasmjobs:batch-output:" + out.Bucket + "/" + strings.Trim(out.Key, "/")
}
