package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

var (
	// ErrNotFound means the object or its bucket does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrTooLarge means the object is larger than the caller's limit.
	ErrTooLarge = errors.New("object too large")
	// ErrInvalidObject means the store refuses the object itself (its name
	// or size): writing it again will not help.
	ErrInvalidObject = errors.New("object refused by the store")
)

// Config says where the store is and how to sign in.
type Config struct {
	// Endpoint is host:port of the S3 API, without scheme. Required.
	Endpoint string
	// AccessKey and SecretKey are static credentials. When both are empty
	// the store looks for credentials as AWS's tools do (see
	// credentialChain), and without any signs its requests anonymously.
	AccessKey, SecretKey string
	// IAM lets the store ask the instance metadata service for the role's
	// credentials (an EC2 instance profile) when nothing else gives any.
	// IAM roles for service accounts (AWS_WEB_IDENTITY_TOKEN_FILE) and
	// container credentials (AWS_CONTAINER_CREDENTIALS_*) are used without
	// it.
	IAM bool
	// Region defaults to "us-east-1".
	Region string
	// UseSSL selects https. Defaults to false (plain http), as for a local
	// MinIO.
	UseSSL bool
	// UnsignedStreams sends the parts of streamed uploads (PutStream)
	// with an unsigned payload instead of aws-chunked signed streams, for
	// servers that do not decode those in multipart parts (the in-process
	// S3 of `wasmjobs dev`).
	UnsignedStreams bool
}

// Store reads and writes objects. It is safe for concurrent use.
type Store struct {
	mc              *minio.Client
	unsignedStreams bool
}

// New returns a Store for cfg. It does not contact the server.
func New(cfg Config) (*Store, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("blob: no S3 endpoint configured (set --s3-endpoint or S3_ENDPOINT)")
	}
	if strings.Contains(cfg.Endpoint, "://") {
		return nil, fmt.Errorf("blob: S3 endpoint %q: give host:port without a scheme (use S3_USE_SSL for https)", cfg.Endpoint)
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		creds = credentials.NewChainCredentials(credentialChain(cfg.IAM))
	}
	tr, err := minio.DefaultTransport(cfg.UseSSL)
	if err != nil {
		return nil, fmt.Errorf("blob: transport: %w", err)
	}
	tr.MaxIdleConnsPerHost = 256
	mc, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     creds,
		Secure:    cfg.UseSSL,
		Region:    region,
		Transport: tr,
		// Our callers classify failures and retry whole jobs through the
		// queue; a couple of quick retries here is enough.
		MaxRetries: 2,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	return &Store{mc: mc, unsignedStreams: cfg.UnsignedStreams}, nil
}

// credentialChain is where a store without static keys finds credentials,
// first hit wins, as AWS's SDKs look: AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; MinIO's MINIO_ROOT_USER
// style variables; the shared credentials file (AWS_SHARED_CREDENTIALS_FILE
// or ~/.aws/credentials, profile AWS_PROFILE); then, for a pod with an IAM
// role for its service account, a container with task credentials, or with
// iam an EC2 instance, AWS's credential endpoints. The metadata service is
// only asked when one of those is configured, so a store elsewhere never
// waits on a link-local address. Without any, requests go unsigned.
func credentialChain(iam bool) []credentials.Provider {
	chain := []credentials.Provider{&credentials.EnvAWS{}, &credentials.EnvMinio{}, &credentials.FileAWSCredentials{}}
	roleEnv := os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE") != "" || os.Getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != "" ||
		os.Getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI") != ""
	if iam || roleEnv {
		chain = append(chain, &credentials.IAM{})
	}
	return append(chain, &credentials.Static{})
}

// ObjectInfo is what Stat, Get and List report about an object.
type ObjectInfo struct {
	Key          string
	Size         int64
	ETag         string
	ContentType  string
	LastModified time.Time
	// Metadata holds user metadata with lowercase keys, without the
	// x-amz-meta- prefix.
	Metadata map[string]string
}

func toInfo(oi minio.ObjectInfo) ObjectInfo {
	md := make(map[string]string, len(oi.UserMetadata))
	for k, v := range oi.UserMetadata {
		md[strings.ToLower(strings.TrimPrefix(strings.ToLower(k), "x-amz-meta-"))] = v
	}
	return ObjectInfo{
		Key:          oi.Key,
		Size:         oi.Size,
		ETag:         oi.ETag,
		ContentType:  oi.ContentType,
		LastModified: oi.LastModified,
		Metadata:     md,
	}
}

// translate maps S3 "not found" answers to ErrNotFound.
//
// # Notes
//
// Only an answer from an S3 server counts as not found. minio-go invents a
// NoSuchKey or NoSuchBucket code for any 404 whose body is not an S3 error
// document, so a proxy or load balancer answering a bare 404 (a route
// missing, a backend restarting) would look like a missing object and
// archive every job. An S3 server names its request: the RequestId of the
// error document, or the x-amz-request-id header on a HEAD, whose answer
// has no body. A 404 without one is an ordinary, retryable failure.
func translate(op string, u s3url.ObjectURL, err error) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "NoSuchKey", "NoSuchBucket":
		if resp.RequestID == "" && resp.HostID == "" {
			return fmt.Errorf("%s %s: HTTP %d that names no S3 request (a proxy's answer?), will retry: %w", op, u, resp.StatusCode, err)
		}
		return fmt.Errorf("%s %s: %w (%s)", op, u, ErrNotFound, resp.Code)
	case "KeyTooLongError", "InvalidObjectName", "XMinioInvalidObjectName", "EntityTooLarge":
		return fmt.Errorf("%s %s: %w: %s (%s)", op, u, ErrInvalidObject, resp.Message, resp.Code)
	}
	return fmt.Errorf("%s %s: %w", op, u, err)
}

// Stat returns the object's info.
func (s *Store) Stat(ctx context.Context, u s3url.ObjectURL) (ObjectInfo, error) {
	oi, err := s.mc.StatObject(ctx, u.Bucket, u.Key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, translate("stat", u, err)
	}
	return toInfo(oi), nil
}

// Get reads a whole object of at most limit bytes. An object larger than
// limit is refused with ErrTooLarge before its body is read; a negative
// limit means no limit.
func (s *Store) Get(ctx context.Context, u s3url.ObjectURL, limit int64) ([]byte, ObjectInfo, error) {
	obj, err := s.mc.GetObject(ctx, u.Bucket, u.Key, minio.GetObjectOptions{})
	if err != nil {
		return nil, ObjectInfo{}, translate("get", u, err)
	}
	defer obj.Close()
	oi, err := obj.Stat()
	if err != nil {
		return nil, ObjectInfo{}, translate("get", u, err)
	}
	if limit >= 0 && oi.Size > limit {
		return nil, toInfo(oi), fmt.Errorf("get %s: %w: %d bytes, limit %d", u, ErrTooLarge, oi.Size, limit)
	}
	buf := bytes.NewBuffer(make([]byte, 0, oi.Size))
	n, err := io.Copy(buf, io.LimitReader(obj, oi.Size+1))
	if err != nil {
		return nil, toInfo(oi), translate("get", u, err)
	}
	if n != oi.Size {
		return nil, toInfo(oi), fmt.Errorf("get %s: object changed while reading: %d bytes, expected %d", u, n, oi.Size)
	}
	return buf.Bytes(), toInfo(oi), nil
}

// Open streams an object from its start; close the reader when done.
func (s *Store) Open(ctx context.Context, u s3url.ObjectURL) (io.ReadCloser, ObjectInfo, error) {
	obj, err := s.mc.GetObject(ctx, u.Bucket, u.Key, minio.GetObjectOptions{})
	if err != nil {
		return nil, ObjectInfo{}, translate("get", u, err)
	}
	oi, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, ObjectInfo{}, translate("get", u, err)
	}
	return obj, toInfo(oi), nil
}

// ErrChanged means an object is not the version a read asked for.
var ErrChanged = errors.New("object changed")

// GetRange reads bytes [start, end) of an object. A non-empty etag asks
// for that version: another one fails with ErrChanged.
func (s *Store) GetRange(ctx context.Context, u s3url.ObjectURL, start, end int64, etag string) ([]byte, error) {
	if start < 0 || end <= start {
		return nil, fmt.Errorf("get %s: empty byte range %d-%d", u, start, end)
	}
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(start, end-1); err != nil {
		return nil, fmt.Errorf("get %s: %w", u, err)
	}
	if etag != "" {
		if err := opts.SetMatchETag(etag); err != nil {
			return nil, fmt.Errorf("get %s: %w", u, err)
		}
	}
	obj, err := s.mc.GetObject(ctx, u.Bucket, u.Key, opts)
	if err != nil {
		return nil, translate("get", u, err)
	}
	defer obj.Close()
	buf := make([]byte, end-start)
	n, err := io.ReadFull(obj, buf)
	if err != nil {
		if r := minio.ToErrorResponse(err); r.StatusCode == 412 || r.Code == "PreconditionFailed" {
			return nil, fmt.Errorf("get %s: %w: its ETag is no longer %s", u, ErrChanged, etag)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("get %s: %w: %d bytes at %d, want %d", u, ErrChanged, n, start, end-start)
		}
		return nil, translate("get", u, err)
	}
	return buf, nil
}

// Put writes an object with a content type and user metadata (keys without
// the x-amz-meta- prefix).
func (s *Store) Put(ctx context.Context, u s3url.ObjectURL, data []byte, contentType string, metadata map[string]string) error {
	_, err := s.mc.PutObject(ctx, u.Bucket, u.Key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType:  contentType,
		UserMetadata: metadata,
		// minio-go signs an empty body as an aws-chunked stream but sends
		// it with Transfer-Encoding: chunked and no Content-Length, which
		// servers other than MinIO (gofakes3, some gateways) refuse with
		// MissingContentLength. Without the streaming signature an empty
		// put goes out with "Content-Length: 0"; there is no payload to
		// protect.
		DisableContentSha256: len(data) == 0,
	})
	return translate("put", u, err)
}

// PutStream writes an object of unknown length from r (multipart upload
// for large ones).
func (s *Store) PutStream(ctx context.Context, u s3url.ObjectURL, r io.Reader, contentType string) error {
	_, err := s.mc.PutObject(ctx, u.Bucket, u.Key, r, -1, minio.PutObjectOptions{ContentType: contentType, PartSize: 16 << 20,
		DisableContentSha256: s.unsignedStreams})
	return translate("put", u, err)
}

// minComposePart is S3's smallest part but the last of a multipart copy.
const minComposePart = 5 << 20

// CanCompose reports whether objects of these sizes, in order, can be
// joined by the server (S3's multipart copy: every part but the last at
// least 5 MiB, at most 10,000 parts).
func CanCompose(sizes []int64) bool {
	if len(sizes) == 0 || len(sizes) > 10000 {
		return false
	}
	for _, n := range sizes[:len(sizes)-1] {
		if n < minComposePart {
			return false
		}
	}
	return true
}

// Compose joins srcs, in order, into dst on the server (ComposeObject:
// nothing is downloaded); see CanCompose for what S3 allows.
func (s *Store) Compose(ctx context.Context, dst s3url.ObjectURL, srcs []s3url.ObjectURL) error {
	opts := make([]minio.CopySrcOptions, len(srcs))
	for i, u := range srcs {
		opts[i] = minio.CopySrcOptions{Bucket: u.Bucket, Object: u.Key}
	}
	_, err := s.mc.ComposeObject(ctx, minio.CopyDestOptions{Bucket: dst.Bucket, Object: dst.Key, ReplaceMetadata: true,
		UserMetadata: map[string]string{}}, opts...)
	return translate("compose", dst, err)
}

// OpenReader streams an object (see Open) without its info.
func (s *Store) OpenReader(ctx context.Context, u s3url.ObjectURL) (io.ReadCloser, error) {
	rc, _, err := s.Open(ctx, u)
	return rc, err
}

// PresignGet returns a URL that reads the object without credentials until
// it expires.
func (s *Store) PresignGet(ctx context.Context, u s3url.ObjectURL, expiry time.Duration) (string, error) {
	url, err := s.mc.PresignedGetObject(ctx, u.Bucket, u.Key, expiry, nil)
	if err != nil {
		return "", translate("presign", u, err)
	}
	return url.String(), nil
}

// Delete removes an object; a missing object is not an error.
func (s *Store) Delete(ctx context.Context, u s3url.ObjectURL) error {
	return translate("delete", u, s.mc.RemoveObject(ctx, u.Bucket, u.Key, minio.RemoveObjectOptions{}))
}

// List streams the objects under prefix (recursively, in key order) without
// holding the listing in memory.
func (s *Store) List(ctx context.Context, prefix s3url.ObjectURL) iter.Seq2[ObjectInfo, error] {
	return s.ListAfter(ctx, prefix, "")
}

// ListAfter is List from the first key after after (S3's StartAfter): a
// listing resumed where an interrupted one got to.
func (s *Store) ListAfter(ctx context.Context, prefix s3url.ObjectURL, after string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		// ListObjectsIter, not ListObjects: the channel version feeds the
		// listing from a goroutine that, once the context is cancelled,
		// blocks forever sending ctx.Err() into its full channel unless the
		// caller drains it, so breaking out of the loop leaked a goroutine
		// and the page it held. The iterator runs in the caller's goroutine
		// and simply stops.
		for oi := range s.mc.ListObjectsIter(ctx, prefix.Bucket, minio.ListObjectsOptions{Prefix: prefix.Key, Recursive: true, StartAfter: after}) {
			if oi.Err != nil {
				yield(ObjectInfo{}, translate("list", prefix, oi.Err))
				return
			}
			if !yield(toInfo(oi), nil) {
				return
			}
		}
	}
}

// EnsureBucket creates the bucket if it does not exist.
func (s *Store) EnsureBucket(ctx context.Context, bucket string) error {
	if err := s3url.ValidateBucket(bucket); err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	ok, err := s.mc.BucketExists(ctx, bucket)
	if err != nil {
		return fmt.Errorf("blob: bucket %s: %w", bucket, err)
	}
	if ok {
		return nil
	}
	if err := s.mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		resp := minio.ToErrorResponse(err)
		if resp.Code == "BucketAlreadyOwnedByYou" || resp.Code == "BucketAlreadyExists" {
			return nil
		}
		return fmt.Errorf("blob: make bucket %s: %w", bucket, err)
	}
	return nil
}

// Ping checks that the S3 endpoint answers with valid credentials.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.mc.ListBuckets(ctx); err != nil {
		return fmt.Errorf("blob: S3 not reachable: %w", err)
	}
	return nil
}
