package guests

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
)

// ErrUnknownGuest means no guest of that name or digest is registered.
var ErrUnknownGuest = errors.New("unknown guest")

// MaxGuestBytes bounds the size of a guest module.
const MaxGuestBytes = 64 << 20

// metaDigest is the user-metadata key recording a guest's digest.
const metaDigest = "wasmjobs-sha256"

// metaModels is the user-metadata key recording the models a guest
// declares (sandbox.ModelsSection), comma-separated.
const metaModels = "wasmjobs-models"

// ObjectStore is the part of blob.Store the registry uses.
type ObjectStore interface {
	Stat(ctx context.Context, u s3url.ObjectURL) (blob.ObjectInfo, error)
	Get(ctx context.Context, u s3url.ObjectURL, limit int64) ([]byte, blob.ObjectInfo, error)
	Put(ctx context.Context, u s3url.ObjectURL, data []byte, contentType string, metadata map[string]string) error
}

var _ ObjectStore = (*blob.Store)(nil)

// Registry stores guests in a bucket: "<name>.wasm" holds the current module
// of a name with its digest in metadata, and "sha256/<hex>.wasm" every pushed
// module by digest. Workers resolve names to digests and only run bytes that
// hash to the digest they resolved.
type Registry struct {
	store  ObjectStore
	bucket string
	rt     *sandbox.Runtime
	ttl    time.Duration

	mu    sync.Mutex
	names map[string]nameEntry
}

type nameEntry struct {
	digest  string
	expires time.Time
}

// NewRegistry returns a Registry on bucket (s3url.DefaultGuestBucket when empty)
// that compiles with rt. Name lookups are cached for nameTTL (0 means 5 s),
// so a push reaches running workers within that time.
func NewRegistry(store ObjectStore, bucket string, rt *sandbox.Runtime, nameTTL time.Duration) *Registry {
	if bucket == "" {
		bucket = s3url.DefaultGuestBucket
	}
	if nameTTL <= 0 {
		nameTTL = 5 * time.Second
	}
	return &Registry{store: store, bucket: bucket, rt: rt, ttl: nameTTL, names: map[string]nameEntry{}}
}

// Bucket returns the guest bucket.
func (g *Registry) Bucket() string { return g.bucket }

func (g *Registry) nameURL(name string) s3url.ObjectURL {
	return s3url.ObjectURL{Bucket: g.bucket, Key: name + ".wasm"}
}

func (g *Registry) digestURL(digest string) s3url.ObjectURL {
	return s3url.ObjectURL{Bucket: g.bucket, Key: "sha256/" + strings.TrimPrefix(digest, "sha256:") + ".wasm"}
}

// Push validates wasm as a guest (it must compile and import only what the
// sandbox provides) and registers it under name. It returns the digest.
func (g *Registry) Push(ctx context.Context, name string, wasm []byte) (string, error) {
	if err := queue.ValidateGuestRef(name); err != nil || strings.HasPrefix(name, "sha256:") {
		return "", fmt.Errorf("guest name %q: use 1-63 lowercase letters, digits, '.', '_' or '-'", name)
	}
	if len(wasm) > MaxGuestBytes {
		return "", fmt.Errorf("guest %s is %d bytes, at most %d allowed", name, len(wasm), MaxGuestBytes)
	}
	mod, err := g.rt.Compile(ctx, wasm, "")
	if err != nil {
		return "", fmt.Errorf("guest %s rejected: %w", name, err)
	}
	md := map[string]string{metaDigest: mod.Digest}
	if len(mod.Models) > 0 {
		md[metaModels] = strings.Join(mod.Models, ",")
	}
	if err := g.store.Put(ctx, g.digestURL(mod.Digest), wasm, "application/wasm", md); err != nil {
		return "", err
	}
	if err := g.store.Put(ctx, g.nameURL(name), wasm, "application/wasm", md); err != nil {
		return "", err
	}
	g.mu.Lock()
	delete(g.names, name)
	g.mu.Unlock()
	return mod.Digest, nil
}

// Resolve returns the compiled module for a guest name or digest, compiling
// it on first use. Unknown guests wrap ErrUnknownGuest; invalid modules are
// *sandbox.GuestError; anything else is an infrastructure error.
func (g *Registry) Resolve(ctx context.Context, ref string) (*sandbox.Module, error) {
	digest := ref
	if !strings.HasPrefix(ref, "sha256:") {
		var err error
		if digest, err = g.lookupName(ctx, ref); err != nil {
			return nil, err
		}
	}
	if m, ok := g.rt.Cached(digest); ok {
		return m, nil
	}
	wasm, _, err := g.store.Get(ctx, g.digestURL(digest), MaxGuestBytes)
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return nil, fmt.Errorf("%w %q: no module with digest %s in s3://%s", ErrUnknownGuest, ref, digest, g.bucket)
	case errors.Is(err, blob.ErrTooLarge):
		return nil, &sandbox.GuestError{Kind: sandbox.ErrInvalidModule, Detail: err.Error()}
	case err != nil:
		return nil, fmt.Errorf("fetch guest %s: %w", ref, err)
	}
	return g.rt.Compile(ctx, wasm, digest)
}

func (g *Registry) lookupName(ctx context.Context, name string) (string, error) {
	now := time.Now()
	g.mu.Lock()
	e, ok := g.names[name]
	g.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.digest, nil
	}
	info, err := g.store.Stat(ctx, g.nameURL(name))
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return "", fmt.Errorf("%w %q: not registered in s3://%s (push it with `wasmjobs guest push`)", ErrUnknownGuest, name, g.bucket)
	case err != nil:
		return "", fmt.Errorf("look up guest %s: %w", name, err)
	}
	digest := info.Metadata[metaDigest]
	if queue.ValidateGuestRef(digest) != nil || !strings.HasPrefix(digest, "sha256:") {
		return "", fmt.Errorf("%w %q: s3://%s/%s.wasm has no valid digest record", ErrUnknownGuest, name, g.bucket, name)
	}
	g.mu.Lock()
	g.names[name] = nameEntry{digest: digest, expires: now.Add(g.ttl)}
	g.mu.Unlock()
	return digest, nil
}
