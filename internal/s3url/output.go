package s3url

import (
	"path"
	"strings"
)

// The files a finished batch writes directly under its output prefix.
const (
	// ManifestName lists every input object: key, status, output, error.
	ManifestName = "_manifest.jsonl"
	// SummaryName holds the batch record.
	SummaryName = "_summary.json"
)

// OutputKey names an output object: "<prefix>/<rel>.<guest>.json", where rel
// is the input's key (relative to a batch's input prefix) and a digest guest
// reference is shortened to its first 12 hex digits. The key is not cleaned
// as a path: "a//b" and "a/b" are different objects and keep different
// outputs.
func OutputKey(prefix, rel, guest string) string {
	if hex, ok := strings.CutPrefix(guest, "sha256:"); ok && len(hex) > 12 {
		guest = hex[:12]
	}
	name := rel + "." + guest + ".json"
	if p := strings.Trim(prefix, "/"); p != "" {
		return p + "/" + name
	}
	return name
}

// DefaultOutput returns "<prefix>/<input key>.<guest>.json", in the input's
// bucket when prefix has none: where a job with an S3 input and no explicit
// output writes. A digest guest reference is shortened to its first 12 hex
// digits.
func DefaultOutput(prefix, in ObjectURL, guest string) ObjectURL {
	bucket := prefix.Bucket
	if bucket == "" {
		bucket = in.Bucket
	}
	return ObjectURL{Bucket: bucket, Key: OutputKey(prefix.Key, in.Key, guest)}
}

// BatchOutputPrefix is the default output prefix of batch id whose input
// lies in bucket: "s3://<bucket>/wasmjobs-results/<id>/".
func BatchOutputPrefix(bucket, id string) string {
	return "s3://" + bucket + "/wasmjobs-results/" + id + "/"
}

// BatchItemOutput names the output of the input object key of a batch
// reading prefix in and writing under prefix out.
func BatchItemOutput(in, out ObjectURL, key, guest string) ObjectURL {
	return ObjectURL{Bucket: out.Bucket, Key: OutputKey(out.Key, strings.TrimPrefix(key, in.Key), guest)}
}

// Dir returns prefix as a directory: its key ends in '/' unless it is
// empty. A batch's manifest and summary are written under "<prefix>/"
// whether or not its output prefix ends with a slash.
func Dir(prefix ObjectURL) ObjectURL {
	if prefix.Key != "" && !strings.HasSuffix(prefix.Key, "/") {
		prefix.Key += "/"
	}
	return prefix
}

// Child names the object called name directly under prefix (see [Dir]).
func Child(prefix ObjectURL, name string) ObjectURL {
	d := Dir(prefix)
	d.Key += name
	return d
}

// IsBatchFile reports whether key has the name of a batch's manifest or
// summary, which only the batch writes.
func IsBatchFile(key string) bool {
	base := path.Base(key)
	return base == ManifestName || base == SummaryName
}

// DefaultGuestBucket is where guests are registered unless configured.
const DefaultGuestBucket = "wasmjobs-guests"
