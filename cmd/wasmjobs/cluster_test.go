package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// TestCLIOnRedisCluster runs the commands as a user would against a real
// three-master Redis Cluster, given as a redis-cluster:// URL: a worker, a
// single job waited for, a batch run to the end with its manifest, and the
// batch deleted. The cluster is shared by the tests that use it, so
// everything runs on a queue of its own.
func TestCLIOnRedisCluster(t *testing.T) {
	cluster := testenv.RedisCluster(t)
	e := newBatchEnv(t)
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t, 3*time.Minute)
	queue := "cluster-" + testenv.RandomHex(6)
	args := append([]string(nil), e.globalArgs...)
	args[1] = "redis-cluster://" + strings.Join(cluster.Addrs, ",")
	run := func(stdin string, cmdArgs ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, append(cmdArgs, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("wasmjobs %s: %v\n%s", strings.Join(cmdArgs, " "), err, out)
		}
		return string(out)
	}
	run("", "guest", "push", "--builtin", "--no-model-check")

	w := exec.CommandContext(ctx, bin, append([]string{"worker", "--queues", queue + "=1"}, args...)...)
	var logs bytes.Buffer
	w.Stdout, w.Stderr = &logs, &logs
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = w.Process.Kill()
		_ = w.Wait()
		if t.Failed() {
			t.Logf("worker log:\n%s", logs.String())
		}
	})

	if out := run("one two three", "enqueue", "text", "--guest", "wordcount", "--queue", queue, "--data-file", "-", "--wait", "30s"); !strings.Contains(out, `"words":3`) {
		t.Errorf("enqueue --wait printed %q, want the wordcount result", out)
	}

	const n = 60
	e.seed(t, "ds/", n)
	run("", "batch", "run", "s3://"+e.bucket+"/ds/", "--guest", "wordcount", "--type", "text", "--queue", queue, "--wait")
	spec, _ := batch.Spec{Guest: "wordcount", Type: "text", Input: "s3://" + e.bucket + "/ds/", Queue: queue}.WithDefaults()
	clusterBatches, err := batch.NewClient(cluster)
	if err != nil {
		t.Fatal(err)
	}
	defer clusterBatches.Close()
	st, err := clusterBatches.BatchStatus(context.Background(), spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Done != n || st.Failed != 0 || !st.ManifestWritten {
		t.Fatalf("batch status %+v, want %d done and a manifest", st, n)
	}
	if out := run("", "batch", "delete", spec.ID); !strings.Contains(out, "deleted") {
		t.Errorf("batch delete printed %q", out)
	}
	if _, err := clusterBatches.BatchStatus(context.Background(), spec.ID); !errors.Is(err, batch.ErrNotFound) {
		t.Fatalf("status after batch delete: %v, want ErrNotFound", err)
	}
}
