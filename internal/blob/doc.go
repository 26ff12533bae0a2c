// Package blob is wasmjobs' access to S3-compatible object storage, through
// minio-go. It owns every S3 call of the project: size-limited reads, puts
// with metadata, stat and listing, with missing objects translated to the
// single sentinel [ErrNotFound] at this boundary.
package blob
