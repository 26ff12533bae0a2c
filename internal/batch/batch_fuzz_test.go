package batch_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

// FuzzBatchSpec drives the decoding of batch plan payloads (the body of a
// wasm:batch task, which any producer can enqueue): it never panics, and a
// spec it accepts is complete and consistent.
func FuzzBatchSpec(f *testing.F) {
	for _, s := range []string{
		`{"guest":"wordcount","type":"text","input":"s3://data/books/"}`,
		`{"id":"b1","guest":"ocr","type":"wasm:image","input":"s3://scans","output":"s3://out/x/","include":"*.png","max_size":1000,"queue":"img","params":{"a":"1"},"max_retry":3}`,
		`{"guest":"wordcount","type":"text","input":"s3://data/in/","output":"s3://data/in/out/"}`,
		`{"guest":"","type":"text","input":"s3://data/"}`,
		`{"guest":"x","type":"text","input":"s3://data/","include":"[a"}`,
		`{}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var spec batch.Spec
		if json.Unmarshal(b, &spec) != nil {
			return
		}
		got, err := spec.WithDefaults()
		if err != nil {
			return
		}
		if got.ID == "" || got.Queue == "" || (got.Type != queue.TypeImage && got.Type != queue.TypeText) {
			t.Fatalf("accepted an incomplete spec: %+v", got)
		}
		in, err1 := s3url.ParsePrefixURL(got.Input)
		out, err2 := s3url.ParsePrefixURL(got.Output)
		if err1 != nil || err2 != nil {
			t.Fatalf("accepted spec has bad URLs: %v %v", err1, err2)
		}
		if in.Bucket == out.Bucket && strings.HasPrefix(out.Key, in.Key) {
			t.Fatalf("accepted output %s under input %s", got.Output, got.Input)
		}
		again, err := got.WithDefaults()
		if err != nil || again.ID != got.ID || again.Output != got.Output {
			t.Fatalf("WithDefaults is not idempotent: %+v → %+v (%v)", got, again, err)
		}
	})
}
