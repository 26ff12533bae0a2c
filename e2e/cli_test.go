package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// wasmjobsCLI is the wasmjobs binary built from this tree, configured for
// the test Redis and MinIO.
type wasmjobsCLI struct {
	bin  string
	root string // the repository root, where commands run
	env  []string
}

// buildCLI builds ./cmd/wasmjobs into a temporary directory. Its commands
// use redis, the test MinIO, guestBucket as the guest registry and a fresh
// compile cache, log warnings only and have no token (a worker's /metrics
// on loopback then answers without one).
func buildCLI(tb testing.TB, ctx context.Context, redis asynq.RedisClientOpt, guestBucket string) *wasmjobsCLI {
	tb.Helper()
	s3 := testenv.S3Config(tb)
	c := &wasmjobsCLI{bin: filepath.Join(tb.TempDir(), "wasmjobs"), root: testenv.RepoRoot(tb)}
	build := exec.CommandContext(ctx, "go", "build", "-o", c.bin, "./cmd/wasmjobs")
	build.Dir = c.root
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	c.env = append(os.Environ(),
		fmt.Sprintf("REDIS_URL=redis://%s/%d", redis.Addr, redis.DB),
		"S3_ENDPOINT="+s3.Endpoint, "S3_ACCESS_KEY="+s3.AccessKey, "S3_SECRET_KEY="+s3.SecretKey,
		"WASMJOBS_GUEST_BUCKET="+guestBucket, "WASMJOBS_CACHE_DIR="+tb.TempDir(), "WASMJOBS_LOG_LEVEL=warn", "WASMJOBS_TOKEN=")
	return c
}

// command returns `wasmjobs args...`, not started.
func (c *wasmjobsCLI) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env, cmd.Dir = c.env, c.root
	return cmd
}

// run runs `wasmjobs args...` and fails the test, with its output, if it
// fails.
func (c *wasmjobsCLI) run(tb testing.TB, ctx context.Context, args ...string) {
	tb.Helper()
	if out, err := c.command(ctx, args...).CombinedOutput(); err != nil {
		tb.Fatalf("wasmjobs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// startWorker starts `wasmjobs worker args...`. The test's cleanup stops it
// as SIGINT does (jobs in flight finish) and, if the test failed, logs the
// tail of its output.
func (c *wasmjobsCLI) startWorker(tb testing.TB, ctx context.Context, args ...string) *exec.Cmd {
	tb.Helper()
	var logs bytes.Buffer
	w := c.command(ctx, append([]string{"worker"}, args...)...)
	w.Stdout, w.Stderr = &logs, &logs
	if err := w.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = w.Process.Signal(os.Interrupt)
		_ = w.Wait()
		if tb.Failed() {
			tb.Logf("worker log (tail):\n%s", tail(logs.String(), 4000))
		}
	})
	return w
}

// modelsArgs are the worker flags registering the shipped models, or nil
// without models/models.json (`make models`).
func modelsArgs(tb testing.TB) []string {
	tb.Helper()
	config := filepath.Join(testenv.RepoRoot(tb), "models", "models.json")
	if _, err := os.Stat(config); err != nil {
		return nil
	}
	return []string{"--models-config", config}
}

// pushBuiltin is `guest push --builtin` with the workers' models to check
// the guests' declared models against, or without the check when there are
// no models.
func pushBuiltin(tb testing.TB) []string {
	tb.Helper()
	if m := modelsArgs(tb); m != nil {
		return append([]string{"guest", "push", "--builtin"}, m...)
	}
	return []string{"guest", "push", "--builtin", "--no-model-check"}
}

// procStatus reads a memory field of /proc/<pid>/status in bytes.
func procStatus(tb testing.TB, pid int, field string) int64 {
	tb.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
