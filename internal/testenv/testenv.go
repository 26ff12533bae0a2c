// Package testenv connects tests to the real Redis and MinIO that `make test`
// starts, and gives each test its own Redis database and S3 bucket.
//
// Without the WASMJOBS_TEST_* variables the tests that need services are
// skipped; with WASMJOBS_TEST_REQUIRE=1 (set by `make test`) they fail
// instead, so a broken service setup can never pass silently.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
)

// Environment variables set by `make test`.
const (
	EnvRedis = "WASMJOBS_TEST_REDIS" // redis://host:port
	// EnvRedisCluster lists the masters of a Redis Cluster, host:port,…
	EnvRedisCluster = "WASMJOBS_TEST_REDIS_CLUSTER"
	EnvS3           = "WASMJOBS_TEST_S3"        // host:port
	EnvAccessKey    = "WASMJOBS_TEST_S3_ACCESS" // MinIO root user
	EnvSecretKey    = "WASMJOBS_TEST_S3_SECRET" // MinIO root password
	EnvRequire      = "WASMJOBS_TEST_REQUIRE"   // "1": missing services fail tests
)

func need(tb testing.TB, env string) string {
	tb.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatalf("%s is not set; run the tests with `make test`", env)
		}
		tb.Skipf("%s not set: run `make test` for tests against real services", env)
	}
	return v
}

// Redis returns connection options for a fresh, empty database of the test
// Redis, allocated for this test alone.
func Redis(tb testing.TB) asynq.RedisClientOpt {
	tb.Helper()
	url := need(tb, EnvRedis)
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("%s: %v", EnvRedis, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin := redis.NewClient(&redis.Options{Addr: opt.Addr, DB: 0})
	defer admin.Close()
	n, err := admin.Incr(ctx, "wasmjobs-test:next-db").Result()
	if err != nil {
		tb.Fatalf("test Redis at %s: %v", opt.Addr, err)
	}
	// The test Redis runs with 1024 databases; database 0 holds the counter.
	db := int(1 + (n-1)%1023)
	c := redis.NewClient(&redis.Options{Addr: opt.Addr, DB: db})
	defer c.Close()
	if err := c.FlushDB(ctx).Err(); err != nil {
		tb.Fatalf("flush test database %d: %v", db, err)
	}
	return asynq.RedisClientOpt{Addr: opt.Addr, DB: db}
}

// RedisCluster returns connection options for the test Redis Cluster
// (three masters). A cluster has one database, shared by every test that
// uses it: such tests keep apart by their own queue names and batch ids.
func RedisCluster(tb testing.TB) asynq.RedisClusterClientOpt {
	tb.Helper()
	addrs := strings.Split(need(tb, EnvRedisCluster), ",")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	if err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.Ping(ctx).Err() }); err != nil {
		tb.Fatalf("test Redis Cluster at %v: %v", addrs, err)
	}
	return asynq.RedisClusterClientOpt{Addrs: addrs}
}

// S3Config returns the test MinIO's configuration.
func S3Config(tb testing.TB) blob.Config {
	tb.Helper()
	return blob.Config{
		Endpoint:  need(tb, EnvS3),
		AccessKey: os.Getenv(EnvAccessKey),
		SecretKey: os.Getenv(EnvSecretKey),
	}
}

// Store returns a store on the test MinIO and a fresh bucket, removed from
// view by its random name (MinIO's data dir is deleted after the run).
func Store(tb testing.TB) (*blob.Store, string) {
	tb.Helper()
	store, err := blob.New(S3Config(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return store, NewBucket(tb, store)
}

// PutObjects writes objects 0..n-1, object i being obj(i): its URL and
// body, 16 at a time. Any failure fails tb.
func PutObjects(tb testing.TB, store *blob.Store, n int, obj func(i int) (s3url.ObjectURL, []byte)) {
	tb.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			u, body := obj(i)
			if err := store.Put(context.Background(), u, body, "text/plain", nil); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// NewBucket creates a bucket with a random name on store.
func NewBucket(tb testing.TB, store *blob.Store) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bucket := "t-" + RandomHex(8)
	var err error
	for range 60 { // MinIO may still be starting
		if err = store.EnsureBucket(ctx, bucket); err == nil {
			return bucket
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("create bucket %s: %v", bucket, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	tb.Fatalf("create bucket %s: %v", bucket, err)
	return ""
}

// RandomHex returns n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Context returns a context ended after d or at the test's end.
func Context(tb testing.TB, d time.Duration) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}
