package batch

import (
	"fmt"

	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

// Access applies the worker's allow-lists (s3url.Access, the one owner
// of the rule) to a batch: its input prefix must be readable and its
// output prefix, where the manifest and summary go, writable.
//
// # Notes
//
// The checks are on the spec's prefixes, before anything is listed: a
// batch on a prefix the worker may not touch ends failed with the reason
// instead of enqueueing jobs that would each be refused.
type Access struct {
	s3url.Access
	// GuestBucket is the guest registry's bucket: never an output, an
	// input only when Access.Inputs names it. Defaults to
	// s3url.DefaultGuestBucket.
	GuestBucket string
}

func (a Access) guestBucket() string {
	if a.GuestBucket == "" {
		return s3url.DefaultGuestBucket
	}
	return a.GuestBucket
}

// CheckSpec refuses a batch whose input the worker may not read or whose
// output it may not write; the error wraps s3url.ErrAccessDenied. spec
// must have its defaults (Spec.WithDefaults).
func (a Access) CheckSpec(spec Spec) error {
	in, err := s3url.ParsePrefixURL(spec.Input)
	if err != nil {
		return fmt.Errorf("%w: batch input: %w", queue.ErrInvalidPayload, err)
	}
	if err := a.CheckInput(in, a.guestBucket()); err != nil {
		return fmt.Errorf("batch %s: %w", spec.ID, err)
	}
	return a.checkOutputPrefix(spec)
}

// checkOutputPrefix refuses a batch whose output the worker may not write.
func (a Access) checkOutputPrefix(spec Spec) error {
	out, err := s3url.ParsePrefixURL(spec.Output)
	if err != nil {
		return fmt.Errorf("%w: batch output: %w", queue.ErrInvalidPayload, err)
	}
	// The manifest is written under s3url.Dir of the prefix, whether or
	// not the spec ends it with a slash (Spec.OutputObject).
	if err := a.CheckOutput(s3url.Dir(out), a.guestBucket()); err != nil {
		return fmt.Errorf("batch %s: %w", spec.ID, err)
	}
	return nil
}
