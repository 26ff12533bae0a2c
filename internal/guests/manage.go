package guests

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

// Info is one registered guest name.
type Info struct {
	Name     string    `json:"name"`
	Digest   string    `json:"digest"`
	Bytes    int64     `json:"bytes"`
	Modified time.Time `json:"modified"`
	// Models are the models the guest declares it loads.
	Models []string `json:"models,omitempty"`
}

// BucketStore is the part of blob.Store that listing and removing guests
// use.
type BucketStore interface {
	List(ctx context.Context, prefix s3url.ObjectURL) iter.Seq2[blob.ObjectInfo, error]
	Stat(ctx context.Context, u s3url.ObjectURL) (blob.ObjectInfo, error)
	Delete(ctx context.Context, u s3url.ObjectURL) error
}

// List returns the guest names registered in bucket, in name order, with
// the digest each resolves to. The modules kept by digest (sha256/) are not
// names and are not listed.
func List(ctx context.Context, store BucketStore, bucket string) ([]Info, error) {
	var out []Info
	for obj, err := range store.List(ctx, s3url.ObjectURL{Bucket: bucket}) {
		if err != nil {
			return nil, fmt.Errorf("list guests in s3://%s: %w", bucket, err)
		}
		name, ok := strings.CutSuffix(obj.Key, ".wasm")
		if !ok || strings.Contains(name, "/") || queue.ValidateGuestRef(name) != nil {
			continue
		}
		// Listings carry no user metadata: the digest is in the object's.
		info, err := store.Stat(ctx, s3url.ObjectURL{Bucket: bucket, Key: obj.Key})
		if errors.Is(err, blob.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("guest %s: %w", name, err)
		}
		gi := Info{Name: name, Digest: info.Metadata[metaDigest], Bytes: info.Size, Modified: info.LastModified}
		if m := info.Metadata[metaModels]; m != "" {
			gi.Models = strings.Split(m, ",")
		}
		out = append(out, gi)
	}
	return out, nil
}

// Remove unregisters guest name from bucket: jobs naming it fail as unknown
// once workers' name caches expire (5 s). The module stays stored by its
// digest, so jobs that give the digest, and jobs already resolved, still
// run. Removing a name that is not registered wraps ErrUnknownGuest.
func Remove(ctx context.Context, store BucketStore, bucket, name string) error {
	if err := queue.ValidateGuestRef(name); err != nil || strings.HasPrefix(name, "sha256:") {
		return fmt.Errorf("guest name %q: want a registered name, not a digest", name)
	}
	u := s3url.ObjectURL{Bucket: bucket, Key: name + ".wasm"}
	if _, err := store.Stat(ctx, u); errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("%w %q: not registered in s3://%s", ErrUnknownGuest, name, bucket)
	} else if err != nil {
		return fmt.Errorf("guest %s: %w", name, err)
	}
	if err := store.Delete(ctx, u); err != nil {
		return fmt.Errorf("remove guest %s: %w", name, err)
	}
	return nil
}
