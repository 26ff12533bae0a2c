package s3url

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// ErrAccessDenied is wrapped by the error of a job that names an object the
// worker does not let jobs read or write.
var ErrAccessDenied = errors.New("object not allowed")

// Access says which objects jobs may read (inputs) and write (outputs).
//
// # Notes
//
// The worker's S3 credentials reach every bucket of the operator, the guest
// registry included; a payload is written by whoever can enqueue. Without
// these lists a job could overwrite "hello.wasm" (every hello job then
// fails) or another batch's manifest.
//
// The guest registry is never an output, whatever the lists say. As an
// input it is refused unless an input entry names its bucket explicitly:
// guests are not secret, but no job has a reason to read the registry, and
// a private guest's bytes should not leak through a job that echoes its
// input.
type Access struct {
	// Inputs are the buckets or bucket/prefix locations jobs may read.
	// Empty means any bucket but the guest registry's.
	Inputs []ObjectURL
	// Outputs are the buckets or bucket/prefix locations jobs may write.
	// Empty means any bucket but the guest registry's.
	Outputs []ObjectURL
}

// ParseAccessList parses allow-list entries: "bucket", "bucket/prefix" or
// the same as s3:// URLs. A prefix matches keys that start with it; write
// "bucket/dir/" to allow a directory only.
func ParseAccessList(entries []string) ([]ObjectURL, error) {
	var out []ObjectURL
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		s := strings.TrimPrefix(e, "s3://")
		bucket, key, _ := strings.Cut(s, "/")
		if err := ValidateBucket(bucket); err != nil {
			return nil, fmt.Errorf("allow-list entry %q: %w", e, err)
		}
		out = append(out, ObjectURL{Bucket: bucket, Key: key})
	}
	return out, nil
}

// allowed reports whether u lies under one of list's entries; an empty list
// allows every bucket but guestBucket.
func allowed(list []ObjectURL, u ObjectURL, guestBucket string) bool {
	if len(list) == 0 {
		return u.Bucket != guestBucket
	}
	for _, a := range list {
		if a.Bucket == u.Bucket && strings.HasPrefix(u.Key, a.Key) {
			return true
		}
	}
	return false
}

// CheckInput refuses u unless jobs may read it. u is an object or a
// prefix; a prefix passes when every key under it would. guestBucket is
// the guest registry's, refused unless Inputs names it.
func (a Access) CheckInput(u ObjectURL, guestBucket string) error {
	if !allowed(a.Inputs, u, guestBucket) {
		return fmt.Errorf("%w: input %s is outside the worker's input allow-list%s", ErrAccessDenied, u, listHint(a.Inputs))
	}
	return nil
}

// CheckOutput refuses u unless jobs may write it: the guest registry
// (guestBucket) never, anything else when it lies under Outputs. u is an
// object or a prefix; a prefix passes when every key under it would.
func (a Access) CheckOutput(u ObjectURL, guestBucket string) error {
	if u.Bucket == guestBucket {
		return fmt.Errorf("%w: output %s is in the guest registry bucket, which jobs never write", ErrAccessDenied, u)
	}
	if !allowed(a.Outputs, u, guestBucket) {
		return fmt.Errorf("%w: output %s is outside the worker's output allow-list%s", ErrAccessDenied, u, listHint(a.Outputs))
	}
	return nil
}

// CheckJobOutput refuses an output object a job may not write: one with
// the name of a batch's manifest or summary (only the batch writes those),
// and whatever CheckOutput refuses.
func (a Access) CheckJobOutput(u ObjectURL, guestBucket string) error {
	if IsBatchFile(u.Key) {
		return fmt.Errorf("%w: output %s has the name of a batch's %s, which only the batch writes", ErrAccessDenied, u, path.Base(u.Key))
	}
	return a.CheckOutput(u, guestBucket)
}

// listHint names the allow-list in a refusal.
func listHint(list []ObjectURL) string {
	if len(list) == 0 {
		return " (any bucket but the guest registry's)"
	}
	names := make([]string, len(list))
	for i, a := range list {
		names[i] = a.String()
	}
	return " (" + strings.Join(names, ", ") + ")"
}
