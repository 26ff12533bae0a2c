package blob_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// TestStoreMinIO runs the shared suite against the test MinIO.
//
// Not parallel: the List goroutine check counts goroutines of the whole
// process, so no other top-level test may run beside the suite.
func TestStoreMinIO(t *testing.T) {
	testenv.S3Config(t) // skip once here, not in every subtest
	runStoreSuite(t, func(t *testing.T) (*blob.Store, string) {
		t.Helper()
		return testenv.Store(t)
	})
}

// TestStoreFake runs the shared suite against an in-process gofakes3.
// Not parallel, for the same reason as TestStoreMinIO.
func TestStoreFake(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) (*blob.Store, string) {
		t.Helper()
		return newFakeStore(t)
	})
}

// newFakeStore starts gofakes3 with an in-memory backend on a loopback port,
// stopped when the test ends, and returns a Store for it with a fresh bucket.
func newFakeStore(tb testing.TB) (*blob.Store, string) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	srv := &http.Server{
		Handler:           gofakes3.New(s3mem.New()).Server(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("gofakes3 server: %v", err)
		}
	})
	store, err := blob.New(blob.Config{
		Endpoint:  ln.Addr().String(),
		AccessKey: "fake-access",
		SecretKey: "fake-secret",
	})
	if err != nil {
		tb.Fatal(err)
	}
	return store, testenv.NewBucket(tb, store)
}

// testContext returns a context that ends after 30 s or with the test.
func testContext(tb testing.TB) context.Context {
	tb.Helper()
	return testenv.Context(tb, 30*time.Second)
}

func mustPut(tb testing.TB, s *blob.Store, u s3url.ObjectURL, data []byte, contentType string, md map[string]string) {
	tb.Helper()
	if err := s.Put(testContext(tb), u, data, contentType, md); err != nil {
		tb.Fatalf("put %s: %v", u, err)
	}
}

func mustGet(tb testing.TB, s *blob.Store, u s3url.ObjectURL, limit int64) ([]byte, blob.ObjectInfo) {
	tb.Helper()
	data, info, err := s.Get(testContext(tb), u, limit)
	if err != nil {
		tb.Fatalf("get %s: %v", u, err)
	}
	return data, info
}

func wantNotFound(tb testing.TB, what string, err error) {
	tb.Helper()
	if !errors.Is(err, blob.ErrNotFound) {
		tb.Fatalf("%s: got error %v, want blob.ErrNotFound", what, err)
	}
}

// listAll collects a whole listing, failing the test on an error.
func listAll(tb testing.TB, s *blob.Store, prefix s3url.ObjectURL) []blob.ObjectInfo {
	tb.Helper()
	var all []blob.ObjectInfo
	for oi, err := range s.List(testContext(tb), prefix) {
		if err != nil {
			tb.Fatalf("list %s: %v", prefix, err)
		}
		all = append(all, oi)
	}
	return all
}

// waitGoroutines waits up to two seconds for the number of goroutines to
// drop to at most want, and fails the test with all stacks if it does not.
func waitGoroutines(tb testing.TB, want int) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			tb.Fatalf("%d goroutines, want at most %d; stacks:\n%s", n, want, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runStoreSuite checks the behaviour every Store backend must share. newStore
// returns a store and a fresh, empty bucket that belongs to one test alone.
func runStoreSuite(t *testing.T, newStore func(t *testing.T) (*blob.Store, string)) {
	t.Run("PutGetRoundTrip", func(t *testing.T) {
		t.Parallel()
		s, bucket := newStore(t)
		u := s3url.ObjectURL{Bucket: bucket, Key: "in/data.bin"}
		data := []byte("hello, \x00 wasmjobs \xff")
		mustPut(t, s, u, data, "application/x-test", map[string]string{
			"wasmjobs-task-id": "task-123",
			"Wasmjobs-Attempt": "2",
		})
		got, info := mustGet(t, s, u, 1<<20)
		if !bytes.Equal(got, data) {
			t.Errorf("data = %q, want %q", got, data)
		}
		if info.Key != u.Key {
			t.Errorf("Key = %q, want %q", info.Key, u.Key)
		}
		if info.Size != int64(len(data)) {
			t.Errorf("Size = %d, want %d", info.Size, len(data))
		}
		if info.ContentType != "application/x-test" {
			t.Errorf("ContentType = %q, want application/x-test", info.ContentType)
		}
		if v := info.Metadata["wasmjobs-task-id"]; v != "task-123" {
			t.Errorf("Metadata[wasmjobs-task-id] = %q, want task-123 (metadata %v)", v, info.Metadata)
		}
		if v := info.Metadata["wasmjobs-attempt"]; v != "2" {
			t.Errorf("Metadata[wasmjobs-attempt] = %q, want 2 (metadata %v)", v, info.Metadata)
		}
		if info.LastModified.IsZero() {
			t.Error("LastModified is zero")
		}
	})

	t.Run("Stat", func(t *testing.T) {
		t.Parallel()
		s, bucket := newStore(t)
		u := s3url.ObjectURL{Bucket: bucket, Key: "stat/me"}
		data := bytes.Repeat([]byte("x"), 1234)
		mustPut(t, s, u, data, "text/plain", map[string]string{"wasmjobs-task-id": "t1"})
		info, err := s.Stat(testContext(t), u)
		if err != nil {
			t.Fatalf("stat: %v", err)
		}
		if info.Size != 1234 {
			t.Errorf("Size = %d, want 1234", info.Size)
		}
		if info.ETag == "" {
			t.Error("ETag is empty")
		}
		if strings.Contains(info.ETag, `"`) {
			t.Errorf("ETag = %s, want it without quotes", info.ETag)
		}
		if info.ContentType != "text/plain" {
			t.Errorf("ContentType = %q, want text/plain", info.ContentType)
		}
		if v := info.Metadata["wasmjobs-task-id"]; v != "t1" {
			t.Errorf("Metadata[wasmjobs-task-id] = %q, want t1 (metadata %v)", v, info.Metadata)
		}
		_, got := mustGet(t, s, u, -1)
		if got.ETag != info.ETag {
			t.Errorf("Get ETag = %s, Stat ETag = %s", got.ETag, info.ETag)
		}
	})

	t.Run("MissingKey", func(t *testing.T) {
		t.Parallel()
		s, bucket := newStore(t)
		u := s3url.ObjectURL{Bucket: bucket, Key: "no/such/key"}
		_, _, err := s.Get(testContext(t), u, 1<<20)
		wantNotFound(t, "get", err)
		_, err = s.Stat(testContext(t), u)
		wantNotFound(t, "stat", err)
	})

	t.Run("MissingBucket", func(t *testing.T) {
		t.Parallel()
		s, _ := newStore(t)
		u := s3url.ObjectURL{Bucket: "missing-" + testenv.RandomHex(8), Key: "k"}
		_, _, err := s.Get(testContext(t), u, 1<<20)
		wantNotFound(t, "get", err)
		_, err = s.Stat(testContext(t), u)
		wantNotFound(t, "stat", err)
	})

	t.Run("GetLimit", func(t *testing.T) {
		t.Parallel()
		s, bucket := newStore(t)
		u := s3url.ObjectURL{Bucket: bucket, Key: "limited"}
		data := bytes.Repeat([]byte("ab"), 500) // 1000 bytes
		mustPut(t, s, u, data, "", nil)

		got, info, err := s.Get(testContext(t), u, 999)
		if !errors.Is(err, blob.ErrTooLarge) {
			t.Fatalf("get with limit 999: got error %v, want blob.ErrTooLarge", err)
		}
		if got != nil {
			t.Errorf("get with limit 999 returned %d bytes", len(got))
		}
		if info.Size != 1000 {
			t.Errorf("info.Size = %d, want 1000 alongside ErrTooLarge", info.Size)
		}
		for _, n := range []string{"1000", "999"} {
			if !strings.Contains(err.Error(), n) {
				t.Errorf("error %q does not mention %s", err, n)
			}
		}

		got, _ = mustGet(t, s, u, 1000)
		if !bytes.Equal(got, data) {
			t.Errorf("get with limit == size: %d bytes, want the %d put", len(got), len(data))
		}
	})

	t.Run("EmptyObject", func(t *testing.T) {
		t.Parallel()
		s, bucket := newStore(t)
		u := s3url.ObjectURL{Bucket: bucket, Key: "empty"}
		mustPut(t, s, u, nil, "application/octet-stream", nil)
		got, info := mustGet(t, s, u, 0)
		if len(got) != 0 || info.Size != 0 {
			t.Errorf("got %d bytes, Size %d; want an empty object", len(got), info.Size)
		}
		st, err := s.Stat(testContext(t), u)
		if err != nil || st.Size != 0 {
			t.Errorf("stat: Size %d, err %v; want 0, nil", st.Size, err)
		}
	})

	t.Run("UnicodeKey", func(t *testing.T) {
		t.Parallel()
		s, bucket := newStore(t)
		u := s3url.ObjectURL{Bucket: bucket, Key: "dir with spaces/ünïcödé ☃ 日本語 +&%?#.txt"}
		mustPut(t, s, u, []byte("snow"), "text/plain; charset=utf-8", nil)
		got, info := mustGet(t, s, u, 100)
		if string(got) != "snow" || info.Key != u.Key {
			t.Errorf("get: %q key %q; want %q key %q", got, info.Key, "snow", u.Key)
		}
		all := listAll(t, s, s3url.ObjectURL{Bucket: bucket, Key: "dir with spaces/"})
		if len(all) != 1 || all[0].Key != u.Key {
			t.Errorf("list: %v, want just %q", all, u.Key)
		}
	})

	t.Run("ListPrefix", func(t *testing.T) {
		t.Parallel()
		s, bucket := newStore(t)
		const n = 300
		var want []string
		for i := range n {
			// Not zero-padded, so that key order differs from put order.
			k := "batch/" + strconv.Itoa(i)
			want = append(want, k)
			mustPut(t, s, s3url.ObjectURL{Bucket: bucket, Key: k}, []byte(k), "", nil)
		}
		slices.Sort(want)
		// Siblings that share the string prefix "batch" but not "batch/".
		// Not an object named "batch" itself: MinIO keeps objects as files
		// and directories, and an object "batch" hides every "batch/..."
		// from listings (Get still finds them), so such key sets are
		// unsupported there.
		for _, k := range []string{"batch-other/1", "batcH/2", "batch0", "batch.txt", "other/batch/3"} {
			mustPut(t, s, s3url.ObjectURL{Bucket: bucket, Key: k}, []byte(k), "", nil)
		}

		all := listAll(t, s, s3url.ObjectURL{Bucket: bucket, Key: "batch/"})
		var got []string
		for _, oi := range all {
			got = append(got, oi.Key)
			if oi.Size != int64(len(oi.Key)) {
				t.Errorf("%s: Size = %d, want %d", oi.Key, oi.Size, len(oi.Key))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("list batch/: got %d keys %v\nwant %d keys %v", len(got), got, len(want), want)
		}

		all = listAll(t, s, s3url.ObjectURL{Bucket: bucket})
		if len(all) != n+5 {
			t.Errorf("list of the whole bucket: %d objects, want %d", len(all), n+5)
		}
	})

	t.Run("ListMissingBucket", func(t *testing.T) {
		t.Parallel()
		s, _ := newStore(t)
		prefix := s3url.ObjectURL{Bucket: "missing-" + testenv.RandomHex(8)}
		var errs int
		for _, err := range s.List(testContext(t), prefix) {
			wantNotFound(t, "list", err)
			errs++
		}
		if errs != 1 {
			t.Errorf("list yielded %d errors, want 1", errs)
		}
	})

	// Not parallel: it counts the goroutines of the process, so it runs while
	// the parallel siblings are still paused.
	t.Run("ListBreakEarly", func(t *testing.T) {
		s, bucket := newStore(t)
		for i := range 300 {
			k := fmt.Sprintf("many/%04d", i)
			mustPut(t, s, s3url.ObjectURL{Bucket: bucket, Key: k}, nil, "", nil)
		}
		prefix := s3url.ObjectURL{Bucket: bucket, Key: "many/"}
		// A first listing opens the HTTP connections that stay idle in the
		// pool, so that they count in the baseline.
		if all := listAll(t, s, prefix); len(all) != 300 {
			t.Fatalf("list: %d objects, want 300", len(all))
		}
		before := runtime.NumGoroutine()
		for range 3 {
			var keys []string
			for oi, err := range s.List(testContext(t), prefix) {
				if err != nil {
					t.Fatalf("list: %v", err)
				}
				keys = append(keys, oi.Key)
				if len(keys) == 5 {
					break
				}
			}
			if want := []string{"many/0000", "many/0001", "many/0002", "many/0003", "many/0004"}; !slices.Equal(keys, want) {
				t.Fatalf("first keys = %v, want %v", keys, want)
			}
		}
		waitGoroutines(t, before)
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		s, bucket := newStore(t)
		u := s3url.ObjectURL{Bucket: bucket, Key: "doomed"}
		mustPut(t, s, u, []byte("bye"), "", nil)
		if err := s.Delete(testContext(t), u); err != nil {
			t.Fatalf("delete: %v", err)
		}
		_, _, err := s.Get(testContext(t), u, 100)
		wantNotFound(t, "get after delete", err)
		if err := s.Delete(testContext(t), u); err != nil {
			t.Errorf("delete again: %v", err)
		}
		if err := s.Delete(testContext(t), s3url.ObjectURL{Bucket: bucket, Key: "never/existed"}); err != nil {
			t.Errorf("delete of a missing key: %v", err)
		}
	})

	t.Run("EnsureBucket", func(t *testing.T) {
		t.Parallel()
		s, bucket := newStore(t)
		ctx := testContext(t)
		if err := s.EnsureBucket(ctx, bucket); err != nil {
			t.Errorf("EnsureBucket of an existing bucket: %v", err)
		}
		fresh := "t-" + testenv.RandomHex(8)
		for i := range 2 {
			if err := s.EnsureBucket(ctx, fresh); err != nil {
				t.Fatalf("EnsureBucket #%d of %s: %v", i+1, fresh, err)
			}
		}
		u := s3url.ObjectURL{Bucket: fresh, Key: "k"}
		mustPut(t, s, u, []byte("v"), "", nil)
		// A second EnsureBucket must not empty the bucket.
		if err := s.EnsureBucket(ctx, fresh); err != nil {
			t.Fatal(err)
		}
		if got, _ := mustGet(t, s, u, 10); string(got) != "v" {
			t.Errorf("get after EnsureBucket = %q, want v", got)
		}
	})

	t.Run("EnsureBucketInvalid", func(t *testing.T) {
		t.Parallel()
		s, _ := newStore(t)
		for _, name := range []string{"", "ab", "Upper", "under_score", "-dash", "dot.", "a..b", strings.Repeat("a", 64)} {
			if err := s.EnsureBucket(testContext(t), name); err == nil {
				t.Errorf("EnsureBucket(%q) succeeded, want an error", name)
			}
		}
	})

	t.Run("Ping", func(t *testing.T) {
		t.Parallel()
		s, _ := newStore(t)
		if err := s.Ping(testContext(t)); err != nil {
			t.Errorf("ping: %v", err)
		}
	})
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     blob.Config
		wantErr []string // substrings of the error; nil means success
	}{
		{name: "empty endpoint", cfg: blob.Config{}, wantErr: []string{"no S3 endpoint"}},
		{name: "http scheme", cfg: blob.Config{Endpoint: "http://localhost:9000"}, wantErr: []string{"http://localhost:9000", "without a scheme"}},
		{name: "https scheme", cfg: blob.Config{Endpoint: "https://s3.example.com", UseSSL: true}, wantErr: []string{"without a scheme", "S3_USE_SSL"}},
		{name: "host and port", cfg: blob.Config{Endpoint: "localhost:9000", AccessKey: "a", SecretKey: "b"}},
		{name: "anonymous", cfg: blob.Config{Endpoint: "localhost:9000"}},
		{name: "ssl and region", cfg: blob.Config{Endpoint: "s3.example.com", UseSSL: true, Region: "eu-west-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := blob.New(tt.cfg)
			if tt.wantErr == nil {
				if err != nil || s == nil {
					t.Fatalf("New(%+v) = %v, %v; want a store", tt.cfg, s, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New(%+v) succeeded, want an error", tt.cfg)
			}
			for _, sub := range tt.wantErr {
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("error %q does not contain %q", err, sub)
				}
			}
		})
	}
}

func TestPingUnreachable(t *testing.T) {
	t.Parallel()
	s, err := blob.New(blob.Config{Endpoint: "127.0.0.1:1", AccessKey: "a", SecretKey: "b"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err = s.Ping(ctx)
	if err == nil {
		t.Fatal("ping of 127.0.0.1:1 succeeded")
	}
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("ping took %v, want it bounded by the 5 s context", took)
	}
	if !strings.Contains(err.Error(), "not reachable") {
		t.Errorf("error %q does not say the store is not reachable", err)
	}
}

func TestPingMinIOBadCredentials(t *testing.T) {
	t.Parallel()
	cfg := testenv.S3Config(t)
	cfg.SecretKey = "not-" + cfg.SecretKey
	s, err := blob.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(testContext(t)); err == nil {
		t.Error("ping with a wrong secret key succeeded")
	}
}

// TestBare404IsNotNotFound: a proxy's bodyless 404 (no S3 error document,
// no S3 request id) must not read as "object missing", which archives the
// job; an S3 error document with its request id still does.
func TestBare404IsNotNotFound(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/real-missing") {
			w.Header().Set("Content-Type", "application/xml")
			w.Header().Set("x-amz-request-id", "17F0A2B3C4D5E6F7")
			w.WriteHeader(http.StatusNotFound)
			if r.Method != http.MethodHead {
				fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>real-missing</Key><RequestId>17F0A2B3C4D5E6F7</RequestId></Error>`)
			}
			return
		}
		w.WriteHeader(http.StatusNotFound) // what a proxy without a route answers
	}))
	t.Cleanup(srv.Close)
	s, err := blob.New(blob.Config{Endpoint: strings.TrimPrefix(srv.URL, "http://"), AccessKey: "a", SecretKey: "b"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	bare := s3url.ObjectURL{Bucket: "data", Key: "in/a.png"}
	if _, err := s.Stat(ctx, bare); err == nil || errors.Is(err, blob.ErrNotFound) {
		t.Errorf("stat on a bare 404 = %v, want a retryable error, not ErrNotFound", err)
	}
	if _, _, err := s.Get(ctx, bare, -1); err == nil || errors.Is(err, blob.ErrNotFound) {
		t.Errorf("get on a bare 404 = %v, want a retryable error, not ErrNotFound", err)
	}
	for it, err := range s.List(ctx, s3url.ObjectURL{Bucket: "data", Key: "in/"}) {
		if err == nil || errors.Is(err, blob.ErrNotFound) {
			t.Errorf("list on a bare 404 = %v, %v; want a retryable error", it, err)
		}
		break
	}
	real := s3url.ObjectURL{Bucket: "data", Key: "real-missing"}
	if _, err := s.Stat(ctx, real); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("stat on an S3 404 = %v, want ErrNotFound", err)
	}
	if _, _, err := s.Get(ctx, real, -1); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("get on an S3 NoSuchKey = %v, want ErrNotFound", err)
	}
}

// TestCredentialChain: a store given no keys signs in as AWS's tools do,
// from AWS_* variables or a shared credentials file with a profile, and
// without any sends anonymous requests (which MinIO refuses here).
func TestCredentialChain(t *testing.T) {
	cfg := testenv.S3Config(t)
	keys := cfg
	cfg.AccessKey, cfg.SecretKey = "", ""
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY",
		"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "AWS_PROFILE"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	ping := func() error {
		s, err := blob.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s.Ping(testContext(t))
	}
	if err := ping(); err == nil {
		t.Fatal("a store with no credentials anywhere signed in")
	}

	t.Setenv("AWS_ACCESS_KEY_ID", keys.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", keys.SecretKey)
	if err := ping(); err != nil {
		t.Fatalf("with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: %v", err)
	}

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	file := filepath.Join(t.TempDir(), "credentials")
	body := "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[jobs]\naws_access_key_id = " + keys.AccessKey + "\naws_secret_access_key = " + keys.SecretKey + "\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", file)
	t.Setenv("AWS_PROFILE", "jobs")
	if err := ping(); err != nil {
		t.Fatalf("with a shared credentials file, profile jobs: %v", err)
	}
}
