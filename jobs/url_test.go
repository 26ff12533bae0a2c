package jobs_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/wasmjobs/wasmjobs/jobs"
)

func TestParseObjectURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    jobs.ObjectURL
		wantErr string // substring; empty means success
	}{
		{in: "s3://data/a.txt", want: jobs.ObjectURL{Bucket: "data", Key: "a.txt"}},
		{in: "s3://data/dir/sub/a.txt", want: jobs.ObjectURL{Bucket: "data", Key: "dir/sub/a.txt"}},
		{in: "s3://data//leading-slash", want: jobs.ObjectURL{Bucket: "data", Key: "/leading-slash"}},
		{in: "s3://data/dir/", want: jobs.ObjectURL{Bucket: "data", Key: "dir/"}},
		{in: "s3://my.data-1/k", want: jobs.ObjectURL{Bucket: "my.data-1", Key: "k"}},
		{in: "s3://data/café 日本 ?#%20", want: jobs.ObjectURL{Bucket: "data", Key: "café 日本 ?#%20"}},
		{in: "s3://data/" + strings.Repeat("k", 1024), want: jobs.ObjectURL{Bucket: "data", Key: strings.Repeat("k", 1024)}},
		{in: "s3://data/\u0080", want: jobs.ObjectURL{Bucket: "data", Key: "\u0080"}}, // C1 controls are allowed

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
		got, err := jobs.ParseObjectURL(tt.in)
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
		want    jobs.ObjectURL
		wantErr string
	}{
		{in: "s3://data", want: jobs.ObjectURL{Bucket: "data"}},
		{in: "s3://data/", want: jobs.ObjectURL{Bucket: "data"}},
		{in: "s3://data/scans/2024/", want: jobs.ObjectURL{Bucket: "data", Key: "scans/2024/"}},
		{in: "s3://data/scans/page-", want: jobs.ObjectURL{Bucket: "data", Key: "scans/page-"}},

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
		got, err := jobs.ParsePrefixURL(tt.in)
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
		err := jobs.ValidateBucket(tt.bucket)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ValidateBucket(%q) = %v, want nil", tt.bucket, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ValidateBucket(%q) = %v, want error containing %q", tt.bucket, err, tt.wantErr)
		}
	}
}

func TestValidateGuestRef(t *testing.T) {
	t.Parallel()
	digest := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		ref     string
		wantErr string
	}{
		{ref: "ocr"},
		{ref: "a"},
		{ref: "0"},
		{ref: "langid-v2.1_beta"},
		{ref: strings.Repeat("a", 63)},
		{ref: digest},
		{ref: "sha256"}, // a plain name; only the "sha256:" prefix makes a digest

		{ref: "", wantErr: "guest is empty"},
		{ref: "OCR", wantErr: "guest name"},
		{ref: "my guest", wantErr: "guest name"},
		{ref: strings.Repeat("a", 64), wantErr: "guest name"},
		{ref: "-ocr", wantErr: "guest name"},
		{ref: ".ocr", wantErr: "guest name"},
		{ref: "ocr/v2", wantErr: "guest name"},
		{ref: "ocr\n", wantErr: "guest name"},
		{ref: "sha256:", wantErr: "guest digest"},
		{ref: "sha256:0123abcd", wantErr: "guest digest"},
		{ref: digest + "0", wantErr: "guest digest"},
		{ref: strings.ToUpper(digest[:7]) + digest[7:], wantErr: "guest name"},
		{ref: digest[:7] + strings.ToUpper(digest[7:]), wantErr: "guest digest"},
		{ref: digest[:len(digest)-1] + "g", wantErr: "guest digest"},
		{ref: digest + "\n", wantErr: "guest digest"},
	}
	for _, tt := range tests {
		err := jobs.ValidateGuestRef(tt.ref)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ValidateGuestRef(%q) = %v, want nil", tt.ref, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ValidateGuestRef(%q) = %v, want error containing %q", tt.ref, err, tt.wantErr)
		case tt.wantErr != "" && !errors.Is(err, jobs.ErrInvalidPayload):
			t.Errorf("ValidateGuestRef(%q) = %v, does not wrap ErrInvalidPayload", tt.ref, err)
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
		if got := jobs.OutputKey(tt.prefix, tt.rel, tt.guest); got != tt.want {
			t.Errorf("OutputKey(%q, %q, %q) = %q, want %q", tt.prefix, tt.rel, tt.guest, got, tt.want)
		}
	}
}
