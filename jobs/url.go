package jobs

import "github.com/wasmjobs/wasmjobs/internal/s3url"

// ObjectURL names one object in S3-compatible storage.
type ObjectURL = s3url.ObjectURL

// ParseObjectURL parses "s3://bucket/key".
func ParseObjectURL(s string) (ObjectURL, error) { return s3url.ParseObjectURL(s) }

// ParsePrefixURL parses "s3://bucket" or "s3://bucket/prefix".
func ParsePrefixURL(s string) (ObjectURL, error) { return s3url.ParsePrefixURL(s) }

// OutputKey names an output object (see s3url.OutputKey).
func OutputKey(prefix, rel, guest string) string { return s3url.OutputKey(prefix, rel, guest) }
