package s3url_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

func FuzzParseObjectURL(f *testing.F) {
	for _, s := range vectorURLs(f) {
		f.Add(s)
	}
	for _, s := range []string{"s3://", "s3://abc/", "s3://abc//", "s3://a/b/c", "s3://abc/\u0080", "s3://abc/\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := s3url.ParseObjectURL(s)
		if err != nil {
			if u != (s3url.ObjectURL{}) {
				t.Fatalf("ParseObjectURL(%q) returned both %+v and %v", s, u, err)
			}
			return
		}
		if u.Bucket == "" || u.Key == "" {
			t.Fatalf("ParseObjectURL(%q) = %+v: empty bucket or key", s, u)
		}
		str := u.String()
		if str != s {
			t.Fatalf("ParseObjectURL(%q).String() = %q", s, str)
		}
		v, err := s3url.ParseObjectURL(str)
		if err != nil || v != u {
			t.Fatalf("ParseObjectURL(%q) = %+v, %v; want %+v", str, v, err, u)
		}
		// Every object URL is also a prefix URL naming the same place.
		w, err := s3url.ParsePrefixURL(s)
		if err != nil || w != u {
			t.Fatalf("ParsePrefixURL(%q) = %+v, %v; want %+v", s, w, err, u)
		}
	})
}

// vectorURLs returns the input and output URLs of the payload vectors the
// Go and Node clients share (jobs/testdata/payload_vectors.json), as seeds.
func vectorURLs(tb testing.TB) []string {
	tb.Helper()
	b, err := os.ReadFile("../../jobs/testdata/payload_vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var file struct {
		Vectors []struct {
			Payload json.RawMessage `json:"payload"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		tb.Fatalf("payload_vectors.json: %v", err)
	}
	var urls []string
	for _, v := range file.Vectors {
		var p struct {
			Input  string `json:"input"`
			Output string `json:"output"`
		}
		_ = json.Unmarshal(v.Payload, &p) // wrong JSON types just add no seed
		for _, s := range []string{p.Input, p.Output} {
			if s != "" {
				urls = append(urls, s)
			}
		}
	}
	return urls
}
