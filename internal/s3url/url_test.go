package s3url_test

import (
	"strings"
	"testing"

	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

func TestParseObjectURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    s3url.ObjectURL
		wantErr string // substring; empty means success
	}{
		{in: "s3://data/a.txt", want: s3url.ObjectURL{Bucket: "data", Key: "a.txt"}},
		{in: "s3://data/dir/sub/a.txt", want: s3url.ObjectURL{Bucket: "data", Key: "dir/sub/a.txt"}},
		{in: "s3://data//leading-slash", want: s3url.ObjectURL{Bucket: "data", Key: "/leading-slash"}},
		{in: "s3://data/dir/", want: s3url.ObjectURL{Bucket: "data", Key: "dir/"}},
		{in: "s3://my.data-1/k", want: s3url.ObjectURL{Bucket: "my.data-1", Key: "k"}},
		{in: "s3://data/café 日本 ?#%20", want: s3url.ObjectURL{Bucket: "data", Key: "café 日本 ?#%20"}},
		{in: "s3://data/" + strings.Repeat("k", 1024), want: s3url.ObjectURL{Bucket: "data", Key: strings.Repeat("k", 1024)}},
		{in: "s3://data/\u0080", want: s3url.ObjectURL{Bucket: "data", Key: "\u0080"}}, // C1 controls are allowed

		{in: "", wantErr: "not an s3://bucket/key URL"},
		{in: "data/a.txt", wantErr: "not an s3://bucket/key URL"},
		{in: "S3://data/a.txt", wantErr: "not an s3://bucket/key URL"},
		{in: "https://data/a.txt", wantErr: "not an s3://bucket/key URL"},
		{in: "s3:/data/a.txt", wantErr: "not an s3://bucket/key URL"},
		{in: "s3://", wantErr: "no object key"},
		{in: "s3://data", wantErr: "no object key"},
		{in: "s3://data/", wantErr: "no object key"},
		{in: "s3:///a.txt", wantErr: "must be 3 to 63 characters"},
		{in: "s3://ab/a.txt", wantErr: "must be 3 to 63 characters"},
		{in: "s3://Data/a.txt", wantErr: "use lowercase letters"},
		{in: "s3://da_ta/a.txt", wantErr: "use lowercase letters"},
		{in: "s3://-data/a.txt", wantErr: "must start and end with a letter or digit"},
		{in: "s3://data./a.txt", wantErr: "must start and end with a letter or digit"},
		{in: "s3://da..ta/a.txt", wantErr: "must not contain"},
		{in: "s3://data/" + strings.Repeat("k", 1025), wantErr: "at most 1024 allowed"},
		{in: "s3://data/a\x00b", wantErr: "control character"},
		{in: "s3://data/a\tb", wantErr: "control character"},
		{in: "s3://data/a\x7fb", wantErr: "control character"},
		{in: "s3://data/a\xffb", wantErr: "not valid UTF-8"},
	}
	for _, tt := range tests {
		got, err := s3url.ParseObjectURL(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseObjectURL(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseObjectURL(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if s := got.String(); s != tt.in {
			t.Errorf("ParseObjectURL(%q).String() = %q", tt.in, s)
		}
	}
}

func TestParsePrefixURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    s3url.ObjectURL
		wantErr string
	}{
		{in: "s3://data", want: s3url.ObjectURL{Bucket: "data"}},
		{in: "s3://data/", want: s3url.ObjectURL{Bucket: "data"}},
		{in: "s3://data/scans/2024/", want: s3url.ObjectURL{Bucket: "data", Key: "scans/2024/"}},
		{in: "s3://data/scans/page-", want: s3url.ObjectURL{Bucket: "data", Key: "scans/page-"}},

		{in: "", wantErr: "not an s3://bucket/prefix URL"},
		{in: "data/scans", wantErr: "not an s3://bucket/prefix URL"},
		{in: "s3://", wantErr: "must be 3 to 63 characters"},
		{in: "s3://ab", wantErr: "must be 3 to 63 characters"},
		{in: "s3://Data/x", wantErr: "use lowercase letters"},
		{in: "s3://data-/x", wantErr: "must start and end with a letter or digit"},
		{in: "s3://data/a\nb", wantErr: "control character"},
		{in: "s3://data/" + strings.Repeat("p", 1025), wantErr: "at most 1024 allowed"},
	}
	for _, tt := range tests {
		got, err := s3url.ParsePrefixURL(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePrefixURL(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePrefixURL(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestValidateBucket(t *testing.T) {
	t.Parallel()
	tests := []struct {
		bucket  string
		wantErr string
	}{
		{bucket: "abc"},
		{bucket: "data"},
		{bucket: "my-data.2024"},
		{bucket: "0data9"},
		{bucket: strings.Repeat("b", 63)},

		{bucket: "", wantErr: "must be 3 to 63 characters"},
		{bucket: "ab", wantErr: "must be 3 to 63 characters"},
		{bucket: strings.Repeat("b", 64), wantErr: "must be 3 to 63 characters"},
		{bucket: "Data", wantErr: "use lowercase letters"},
		{bucket: "my_data", wantErr: "use lowercase letters"},
		{bucket: "my data", wantErr: "use lowercase letters"},
		{bucket: "my/data", wantErr: "use lowercase letters"},
		{bucket: "dätä", wantErr: "use lowercase letters"},
		{bucket: "-data", wantErr: "must start and end with a letter or digit"},
		{bucket: "data-", wantErr: "must start and end with a letter or digit"},
		{bucket: ".data", wantErr: "must start and end with a letter or digit"},
		{bucket: "data.", wantErr: "must start and end with a letter or digit"},
		{bucket: "my..data", wantErr: "must not contain"},
	}
	for _, tt := range tests {
		err := s3url.ValidateBucket(tt.bucket)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ValidateBucket(%q) = %v, want nil", tt.bucket, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ValidateBucket(%q) = %v, want error containing %q", tt.bucket, err, tt.wantErr)
		}
	}
}

func TestOutputKey(t *testing.T) {
	t.Parallel()
	digest := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct{ prefix, rel, guest, want string }{
		{"results", "a/b.txt", "wordcount", "results/a/b.txt.wordcount.json"},
		{"results/", "a/b.txt", "ocr", "results/a/b.txt.ocr.json"},
		{"", "a/b.txt", "ocr", "a/b.txt.ocr.json"},
		{"out/x", "b.png", digest, "out/x/b.png.abababababab.json"},
		// Keys are not paths: distinct inputs keep distinct outputs.
		{"out", "a//b", "ocr", "out/a//b.ocr.json"},
		{"out", "./a", "ocr", "out/./a.ocr.json"},
	}
	for _, tt := range tests {
		if got := s3url.OutputKey(tt.prefix, tt.rel, tt.guest); got != tt.want {
			t.Errorf("OutputKey(%q, %q, %q) = %q, want %q", tt.prefix, tt.rel, tt.guest, got, tt.want)
		}
	}
}

func TestDefaultOutput(t *testing.T) {
	t.Parallel()
	in := s3url.ObjectURL{Bucket: "data", Key: "a/b.txt"}
	tests := []struct {
		prefix s3url.ObjectURL
		guest  string
		want   string
	}{
		{s3url.ObjectURL{Key: "results"}, "wordcount", "s3://data/results/a/b.txt.wordcount.json"},
		{s3url.ObjectURL{Key: "results/"}, "ocr", "s3://data/results/a/b.txt.ocr.json"},
		{s3url.ObjectURL{Bucket: "out", Key: ""}, "ocr", "s3://out/a/b.txt.ocr.json"},
		{s3url.ObjectURL{Bucket: "out", Key: "x"}, "sha256:" + strings.Repeat("ab", 32), "s3://out/x/a/b.txt.abababababab.json"},
	}
	for _, tt := range tests {
		if got := s3url.DefaultOutput(tt.prefix, in, tt.guest).String(); got != tt.want {
			t.Errorf("DefaultOutput(%v, %s) = %s, want %s", tt.prefix, tt.guest, got, tt.want)
		}
	}
}
