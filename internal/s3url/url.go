package s3url

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ObjectURL names one object in S3-compatible storage.
type ObjectURL struct {
	Bucket string
	Key    string
}

// String returns the s3://bucket/key form.
func (u ObjectURL) String() string { return "s3://" + u.Bucket + "/" + u.Key }

// ParseObjectURL parses "s3://bucket/key". The bucket must be a valid S3
// bucket name and the key non-empty valid UTF-8 of at most 1024 bytes.
func ParseObjectURL(s string) (ObjectURL, error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return ObjectURL{}, fmt.Errorf("%q is not an s3://bucket/key URL", s)
	}
	bucket, key, ok := strings.Cut(rest, "/")
	if !ok || key == "" {
		return ObjectURL{}, fmt.Errorf("%q has no object key: want s3://bucket/key", s)
	}
	if err := ValidateBucket(bucket); err != nil {
		return ObjectURL{}, fmt.Errorf("%q: %w", s, err)
	}
	if err := validateKey(key); err != nil {
		return ObjectURL{}, fmt.Errorf("%q: %w", s, err)
	}
	return ObjectURL{Bucket: bucket, Key: key}, nil
}

// ParsePrefixURL parses "s3://bucket" or "s3://bucket/prefix"; the prefix
// may be empty.
func ParsePrefixURL(s string) (ObjectURL, error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return ObjectURL{}, fmt.Errorf("%q is not an s3://bucket/prefix URL", s)
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if err := ValidateBucket(bucket); err != nil {
		return ObjectURL{}, fmt.Errorf("%q: %w", s, err)
	}
	if prefix != "" {
		if err := validateKey(prefix); err != nil {
			return ObjectURL{}, fmt.Errorf("%q: %w", s, err)
		}
	}
	return ObjectURL{Bucket: bucket, Key: prefix}, nil
}

// ValidateBucket checks the S3 bucket naming rules: 3-63 characters of
// lowercase letters, digits, '.' and '-', starting and ending with a letter
// or digit.
func ValidateBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters", b)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-'
		if !ok {
			return fmt.Errorf("bucket name %q has %q; use lowercase letters, digits, '.' and '-'", b, c)
		}
	}
	if first, last := b[0], b[len(b)-1]; first == '.' || first == '-' || last == '.' || last == '-' {
		return fmt.Errorf("bucket name %q must start and end with a letter or digit", b)
	}
	if strings.Contains(b, "..") {
		return fmt.Errorf("bucket name %q must not contain \"..\"", b)
	}
	return nil
}

func validateKey(k string) error {
	if len(k) > 1024 {
		return fmt.Errorf("object key is %d bytes, at most 1024 allowed", len(k))
	}
	if !utf8.ValidString(k) {
		return fmt.Errorf("object key is not valid UTF-8")
	}
	for _, r := range k {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("object key contains control character %U", r)
		}
	}
	return nil
}
