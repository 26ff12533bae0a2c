package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/guests/guesttest"
	"github.com/wasmjobs/wasmjobs/internal/httpguard"
	"github.com/wasmjobs/wasmjobs/internal/queue"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// execute runs the CLI with args and stdin, returning stdout.
func execute(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetArgs(append(args, "--cache-dir", t.TempDir()))
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func writeWasm(t *testing.T, wasm []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "g.wasm")
	if err := os.WriteFile(p, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDev is `make run`: everything in-process, every sample processed.
func TestDev(t *testing.T) {
	out, err := execute(t, "", "dev", "--web-addr", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dev: %v\n%s", err, out)
	}
	for _, want := range []string{
		"registered guest hello",
		"batch sample-texts: 5 objects, 5 done, 0 failed",
		"s3://samples/wasmjobs-results/sample-texts/poem.txt.wordcount.json",
		`{"lines":3,"words":14,`,
		`{"greeting":"Hello, NodeJS!"}`,
		"record batch sample-reviews (jsonl, guest ",
		"21 records in 3 shards, 1 with an error line\n  merged, in record order: s3://samples/wasmjobs-results/sample-reviews/merged.jsonl\n" +
			`    {"index":0,"key":"records/reviews/reviews.jsonl","result":`,
		"record batch sample-shards (tar, guest ",
		"4 records in 2 shards, 0 with an error line\n  merged, in record order: s3://samples/wasmjobs-results/sample-shards/merged.jsonl\n" +
			`    {"index":0,"key":"records/shards/shard-000000.tar","sample":"000000","result":`,
		"all sample jobs done",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dev output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunRecords(t *testing.T) {
	t.Parallel()
	out, err := execute(t, "\"a\"\n{\"b\":1}\n", "run", "--records", writeWasm(t, guesttest.Misbehave))
	if err != nil || out != "\"a\"\n{\"b\":1}\n" {
		t.Fatalf("run --records of a guest speaking the records ABI = %q, %v", out, err)
	}
	if _, err := execute(t, "", "run", "--records", writeWasm(t, guests.Hello)); err == nil || !strings.Contains(err.Error(), "does not declare the records ABI") {
		t.Fatalf("run --records of a guest without the records ABI: %v", err)
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	hello := writeWasm(t, guests.Hello)
	out, err := execute(t, "Ada", "run", hello)
	if err != nil || out != `{"greeting":"Hello, Ada!"}` {
		t.Fatalf("run hello = %q, %v", out, err)
	}
	out, err = execute(t, "", "run", hello, "--param", "name=Param")
	if err != nil || out != `{"greeting":"Hello, Param!"}` {
		t.Fatalf("run hello with param = %q, %v", out, err)
	}
	// Arguments after the module follow the params in argv (the guest's
	// own key=value parsing sees the later one).
	out, err = execute(t, "", "run", hello, "--param", "name=Param", "name=Positional")
	if err != nil || out != `{"greeting":"Hello, Positional!"}` {
		t.Fatalf("run hello with an argument = %q, %v", out, err)
	}
	for spec, want := range map[string]string{
		"det:GGML:CPU:x.gguf":  "not served here",
		"det:ONNX:CPU:x.ftz":   "wants a .onnx file",
		"det:ONNX:FPGA:x.onnx": "want CPU, GPU or AUTO",
		"det:ONNX:x.onnx":      "want name:ENCODING:TARGET:path",
	} {
		if _, err := execute(t, "", "run", hello, "--nn-preload", spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--nn-preload %s: %v, want %q", spec, err, want)
		}
	}
	// A guest's model registered in WasmEdge's syntax (fastText, found by
	// its extension under Autodetect; the path holds a colon-free prefix).
	models := testenv.ModelsDir(t)
	out, err = execute(t, "Der Zug fährt jeden Morgen um halb acht in die Stadt.", "run", writeWasm(t, guests.Langid),
		"--nn-preload", "langid:Autodetect:CPU:"+filepath.Join(models, "lid.176.ftz"))
	if err != nil || !strings.Contains(out, `"lang":"de"`) {
		t.Errorf("run langid with --nn-preload = %q, %v", out, err)
	}

	// The guest's exit code becomes ours, with its stderr shown.
	bad := writeWasm(t, guesttest.Misbehave)
	out, err = execute(t, "", "run", bad, "--param", "mode=exit")
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 3 || !strings.Contains(out, "asked to fail") {
		t.Fatalf("run misbehave exit = %q, %v; want exit code 3 and the stderr", out, err)
	}
	_, err = execute(t, "", "run", bad, "--param", "mode=loop", "--guest-timeout", "200ms")
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("run loop: %v, want a deadline error", err)
	}
	_, err = execute(t, "", "run", writeWasm(t, guesttest.BadImport))
	if err == nil || !strings.Contains(err.Error(), "env.steal_secrets") {
		t.Fatalf("run badimport: %v, want the import named", err)
	}
	_, err = execute(t, "", "run", hello, "--param", "novalue")
	if err == nil || !strings.Contains(err.Error(), "key=value") {
		t.Fatalf("bad --param: %v", err)
	}
}

func TestEnqueueValidatesBeforeConnecting(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: a validation error must come first.
	for _, args := range [][]string{
		{"enqueue", "text", "--guest", "hello", "--input", "http://x/y", "--redis", "redis://127.0.0.1:1"},
		{"enqueue", "text", "--guest", "Bad Name", "--input", "s3://data/a", "--redis", "redis://127.0.0.1:1"},
		{"enqueue", "video", "--guest", "hello", "--input", "s3://data/a"},
	} {
		_, err := execute(t, "", args...)
		if err == nil || strings.Contains(err.Error(), "connect") {
			t.Errorf("%v: err = %v, want a validation error", args, err)
		}
	}
}

// TestCLIAgainstServices pushes a guest, runs a worker and enqueues through
// the CLI against the real Redis and MinIO.
func TestCLIAgainstServices(t *testing.T) {
	redis := testenv.Redis(t)
	s3 := testenv.S3Config(t)
	_, bucket := testenv.Store(t)
	common := []string{
		"--redis", "redis://" + redis.Addr + "/" + strconv.Itoa(redis.DB),
		"--s3-endpoint", s3.Endpoint, "--s3-access-key", s3.AccessKey, "--s3-secret-key", s3.SecretKey,
		"--guest-bucket", bucket,
	}
	out, err := execute(t, "", append([]string{"guest", "push", writeWasm(t, guests.Hello), "--name", "hello"}, common...)...)
	if err != nil || !strings.Contains(out, "pushed hello sha256:") {
		t.Fatalf("guest push: %q, %v", out, err)
	}
	checkModelCheck(t, redis, common)
	out, err = execute(t, "", append([]string{"guest", "push", "--builtin"}, common...)...)
	if err != nil || !strings.Contains(out, "pushed wordcount sha256:") || !strings.Contains(out, "pushed ocr sha256:") {
		t.Fatalf("guest push --builtin: %q, %v", out, err)
	}
	if _, err := execute(t, "", append([]string{"guest", "push", writeWasm(t, guests.Hello)}, common...)...); err == nil || !strings.Contains(err.Error(), "--name") {
		t.Fatalf("push without --name: %v", err)
	}
	_, err = execute(t, "", append([]string{"guest", "push", writeWasm(t, guesttest.BadImport), "--name", "bad"}, common...)...)
	if err == nil || !strings.Contains(err.Error(), "env.steal_secrets") {
		t.Fatalf("push of a bad guest: %v, want it rejected", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		cmd := newRootCmd()
		cmd.SetArgs(append([]string{"worker", "--concurrency", "2", "--cache-dir", t.TempDir()}, common...))
		cmd.SetOut(&bytes.Buffer{})
		done <- cmd.ExecuteContext(ctx)
	}()
	out, err = execute(t, "Worker", append([]string{"enqueue", "text", "--guest", "hello", "--data-file", "-", "--wait", "30s"}, common...)...)
	if err != nil || out != `{"greeting":"Hello, Worker!"}` {
		t.Errorf("enqueue --wait = %q, %v", out, err)
	}
	checkJobCommands(t, common)
	cancel() // SIGTERM equivalent: the worker drains and returns
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("worker: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("worker did not stop")
	}
}

// checkModelCheck pushes the shipped guests, two of which declare their
// models, against the model flags, no workers, and announced workers that
// lack some of them. It leaves two workers announced that have them all.
func checkModelCheck(t *testing.T, ropt asynq.RedisClientOpt, common []string) {
	t.Helper()
	push := func(args ...string) (string, error) {
		return execute(t, "", append(append([]string{"guest", "push", "--builtin"}, args...), common...)...)
	}
	want := func(out string, err error, msgs ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("push = %q, want an error with %q", out, msgs)
		}
		for _, m := range msgs {
			if !strings.Contains(err.Error(), m) {
				t.Fatalf("push: %v, want it to say %q", err, m)
			}
		}
		if strings.Contains(out, "pushed") {
			t.Fatalf("a refused push registered guests: %q", out)
		}
	}
	out, err := push()
	want(out, err, "guest langid needs models langid", "no worker is running")
	out, err = push("--model", "langid=/m/lid.176.ftz", "--nn-preload", "ocr-det:ONNX:CPU:/m/det.onnx")
	want(out, err, "guest ocr needs models", "ocr-cls, ocr-rec, ocr-keys")
	cfg := filepath.Join(t.TempDir(), "models.json")
	all := `{"ocr-det": "d.onnx", "ocr-cls": "c.onnx", "ocr-rec": "r.onnx", "ocr-keys": "k.txt", "langid": "lid.176.ftz"}`
	if err := os.WriteFile(cfg, []byte(all), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err = push("--models-config", cfg); err != nil || !strings.Contains(out, "pushed ocr ") {
		t.Fatalf("push with every model configured: %q, %v", out, err)
	}
	if out, err = push("--no-model-check"); err != nil || !strings.Contains(out, "guest ocr needs models ocr-det, ocr-cls, ocr-rec, ocr-keys: not checked") {
		t.Fatalf("push --no-model-check: %q, %v", out, err)
	}

	rdb := redis.NewClient(&redis.Options{Addr: ropt.Addr, DB: ropt.DB, Password: ropt.Password})
	defer rdb.Close()
	ctx := context.Background()
	announce := func(id string, models ...string) {
		t.Helper()
		if err := queue.Announce(ctx, rdb, queue.WorkerInfo{ID: id, Host: "h", Queues: []string{"default"}, Models: models}); err != nil {
			t.Fatal(err)
		}
	}
	announce("text-1", "langid")
	out, err = push()
	want(out, err, "guest ocr needs models none of the 1 running workers has: ocr-det, ocr-cls, ocr-rec, ocr-keys")
	// A lapsed entry is a worker that died: it neither counts nor stays.
	dead, _ := json.Marshal(queue.WorkerInfo{ID: "dead", Models: []string{"ocr-det", "ocr-cls", "ocr-rec", "ocr-keys"}, Until: time.Now().Add(-time.Second)})
	rdb.HSet(ctx, queue.FleetKey, "dead", dead)
	out, err = push()
	want(out, err, "none of the 1 running workers")
	if rdb.HExists(ctx, queue.FleetKey, "dead").Val() {
		t.Fatal("the lapsed worker entry was not removed")
	}
	announce("ocr-1", "ocr-det", "ocr-cls", "ocr-rec", "ocr-keys", "langid")
	out, err = push()
	if err != nil || !strings.Contains(out, "pushed ocr ") ||
		!strings.Contains(out, "guest ocr: model ocr-det is missing on 1 of 2 workers (text-1); its jobs fail there") {
		t.Fatalf("push with one worker lacking the OCR models: %q, %v", out, err)
	}
	announce("text-1", "ocr-det", "ocr-cls", "ocr-rec", "ocr-keys", "langid")
	if out, err = push(); err != nil || strings.Contains(out, "missing") {
		t.Fatalf("push with every worker having the models: %q, %v", out, err)
	}
	out, err = execute(t, "", append([]string{"guest", "list"}, common...)...)
	if err != nil || !regexp.MustCompile(`(?m)^ocr .* models ocr-det,ocr-cls,ocr-rec,ocr-keys$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^langid .* models langid$`).MatchString(out) || strings.Contains(regexp.MustCompile(`(?m)^hello .*$`).FindString(out), "models") {
		t.Fatalf("guest list does not show the declared models: %q, %v", out, err)
	}
}

// checkJobCommands runs guest list/rm, enqueue --json, job status, result,
// cancel, retry and rm against a running worker, with their exit codes.
func checkJobCommands(t *testing.T, common []string) {
	t.Helper()
	run := func(stdin string, args ...string) (string, error) {
		return execute(t, stdin, append(args, common...)...)
	}
	code := func(err error) int {
		var ee exitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			return ee.code
		}
		return 1
	}

	out, err := run("", "guest", "list", "--json")
	var listed []guests.Info
	if err != nil || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 4 || listed[0].Name != "hello" || !strings.HasPrefix(listed[0].Digest, "sha256:") {
		t.Fatalf("guest list --json = %q, %v", out, err)
	}
	if out, err := run("", "guest", "list"); err != nil || !strings.Contains(out, "wordcount") || !strings.Contains(out, listed[0].Digest) {
		t.Errorf("guest list = %q, %v", out, err)
	}

	// A job through --json and the job commands.
	out, err = run("Ada", "enqueue", "text", "--guest", "hello", "--data-file", "-", "--json", "--wait", "30s")
	var done struct {
		ID, Queue, State string
		Result           map[string]string
	}
	if err != nil || json.Unmarshal([]byte(out), &done) != nil || done.State != "completed" || done.Result["greeting"] != "Hello, Ada!" {
		t.Fatalf("enqueue --json --wait = %q, %v", out, err)
	}
	if out, err := run("", "job", "status", done.Queue, done.ID); err != nil || !strings.Contains(out, "completed") {
		t.Errorf("job status = %q, %v", out, err)
	}
	if out, err := run("", "job", "result", done.Queue, done.ID); err != nil || out != `{"greeting":"Hello, Ada!"}` {
		t.Errorf("job result = %q, %v", out, err)
	}
	if out, err := run("", "job", "log", done.Queue, done.ID); err != nil || out != "" {
		t.Errorf("job log of a quiet guest = %q, %v", out, err)
	}
	// A guest that succeeds and writes to stderr: its log.
	if out, err := run("", "guest", "push", writeWasm(t, guesttest.Misbehave), "--name", "misbehave"); err != nil {
		t.Fatalf("push misbehave: %q, %v", out, err)
	}
	out, err = run("hi", "enqueue", "text", "--guest", "misbehave", "--param", "mode=warn", "--data-file", "-", "--json", "--wait", "30s")
	var warned struct{ ID, Queue string }
	if err != nil || json.Unmarshal([]byte(out), &warned) != nil {
		t.Fatalf("enqueue of a job that logs: %q, %v", out, err)
	}
	if out, err := run("", "job", "status", warned.Queue, warned.ID); err != nil || !strings.Contains(out, "log (the guest's stderr, last 2 KiB):\n…www") ||
		!strings.HasSuffix(out, "misbehave: warn marker\n") {
		t.Errorf("job status of a job that logged = %.200q, %v", out, err)
	}
	if out, err := run("", "job", "log", warned.Queue, warned.ID); err != nil || !strings.HasPrefix(out, "…www") || !strings.HasSuffix(out, "www\nmisbehave: warn marker\n") {
		t.Errorf("job log = %.200q, %v", out, err)
	}

	// A job on a queue nobody serves: not done (4), canceled, failed (2),
	// retried, removed; waiting on it times out (3).
	out, err = run("", "enqueue", "text", "--guest", "hello", "--data-file", "/dev/null", "--queue", "idle", "--json")
	var waiting struct{ ID, Queue string }
	if err != nil || json.Unmarshal([]byte(out), &waiting) != nil || waiting.ID == "" {
		t.Fatalf("enqueue --json = %q, %v", out, err)
	}
	if _, err := run("", "job", "result", "idle", waiting.ID); code(err) != exitNotDone {
		t.Errorf("job result of a pending job: %v (exit %d), want exit %d", err, code(err), exitNotDone)
	}
	if _, err := run("", "enqueue", "text", "--guest", "hello", "--data-file", "/dev/null", "--queue", "idle", "--wait", "300ms"); code(err) != exitTimeout {
		t.Errorf("enqueue --wait on an idle queue: %v (exit %d), want exit %d", err, code(err), exitTimeout)
	}
	if out, err := run("", "job", "cancel", "idle", waiting.ID); err != nil || !strings.Contains(out, "canceled") {
		t.Errorf("job cancel = %q, %v", out, err)
	}
	if _, err := run("", "job", "result", "idle", waiting.ID); code(err) != exitFailed || !strings.Contains(err.Error(), "archived before it ran (canceled") {
		t.Errorf("job result of a canceled job: %v (exit %d), want exit %d with the reason", err, code(err), exitFailed)
	}
	if out, err := run("", "job", "status", "idle", waiting.ID, "--json"); err != nil || !strings.Contains(out, `"state":"archived"`) {
		t.Errorf("job status --json = %q, %v", out, err)
	}
	if _, err := run("", "job", "log", "idle", waiting.ID); code(err) != 4 {
		t.Errorf("job log of a job not completed: %v, want exit code 4", err)
	}
	if out, err := run("", "job", "retry", "idle", waiting.ID); err != nil || !strings.Contains(out, "queued") {
		t.Errorf("job retry = %q, %v", out, err)
	}
	if out, err := run("", "job", "rm", "idle", waiting.ID); err != nil || !strings.Contains(out, "removed") {
		t.Errorf("job rm = %q, %v", out, err)
	}
	if _, err := run("", "job", "status", "idle", waiting.ID); code(err) != 1 || !errors.Is(err, jobs.ErrJobNotFound) {
		t.Errorf("job status of a removed job: %v, want not found", err)
	}

	if out, err := run("", "guest", "rm", "hello"); err != nil || !strings.Contains(out, "removed") {
		t.Errorf("guest rm = %q, %v", out, err)
	}
	if _, err := run("", "guest", "rm", "hello"); err == nil || !strings.Contains(err.Error(), "unknown guest") {
		t.Errorf("a second guest rm: %v, want unknown guest", err)
	}
	if out, err := run("", "guest", "list"); err != nil || strings.Contains(out, "hello ") {
		t.Errorf("guest list after rm = %q, %v", out, err)
	}
}

func TestRedisURLs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		url  string
		want string // %T of the option, "" for an error
	}{
		{"redis://127.0.0.1:6379/2", "asynq.RedisClientOpt"},
		{"rediss://user:pw@cache.internal:6380", "asynq.RedisClientOpt"},
		{"redis-sentinel://10.0.0.1:26379,10.0.0.2:26379?master=jobs", "asynq.RedisFailoverClientOpt"},
		{"redis-cluster://10.0.0.1:7000,10.0.0.2:7000", "asynq.RedisClusterClientOpt"},
		{"redis-cluster://:secret@10.0.0.1:7000", "asynq.RedisClusterClientOpt"},
		{"redis-cluster://nohostport", ""},
		{"redis-cluster://10.0.0.1:7000/0", "asynq.RedisClusterClientOpt"},
		{"redis-cluster://10.0.0.1:7000/3", ""},
		{"redis-sentinel://10.0.0.1:26379/2?master=jobs", ""},
		{"http://x", ""},
	} {
		opt, err := (&globalFlags{redisURL: tt.url}).redisOpt()
		got := ""
		if err == nil {
			got = fmt.Sprintf("%T", opt)
		}
		if got != tt.want {
			t.Errorf("%s: %s (%v), want %q", tt.url, got, err, tt.want)
		}
	}
}

// TestServeOps: the worker's /healthz is open, its /metrics needs the token,
// and without a token it does not listen beyond loopback.
func TestServeOps(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "wasmjobs_jobs_total 1\n") })
	stop, err := serveOps(context.Background(), addr, "ops-token", false, metrics, httpguard.Timeouts{Idle: 300 * time.Millisecond, Read: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	get := func(path, token string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("/healthz", ""); c != http.StatusOK {
		t.Errorf("/healthz: %d", c)
	}
	if c := get("/metrics", ""); c != http.StatusUnauthorized {
		t.Errorf("/metrics without token: %d", c)
	}
	if c := get("/metrics", "wrong"); c != http.StatusUnauthorized {
		t.Errorf("/metrics with a wrong token: %d", c)
	}
	if c := get("/metrics", "ops-token"); c != http.StatusOK {
		t.Errorf("/metrics with the token: %d", c)
	}
	if _, err := serveOps(context.Background(), ":0", "", false, metrics, httpguard.Timeouts{}); !errors.Is(err, httpguard.ErrInsecureBind) {
		t.Errorf("no token on all interfaces: %v, want ErrInsecureBind", err)
	}

	// An idle keep-alive connection is closed.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, conn); err != nil {
		t.Errorf("idle keep-alive connection not closed by the server: %v", err)
	}

	// Without a token, a rebound name cannot read the metrics.
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open := ln.Addr().String()
	ln.Close()
	stop2, err := serveOps(context.Background(), open, "", false, metrics, httpguard.Timeouts{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop2()
	for host, want := range map[string]int{"evil.example": http.StatusMisdirectedRequest, "localhost": http.StatusOK, open: http.StatusOK} {
		req, _ := http.NewRequest("GET", "http://"+open+"/metrics", nil)
		req.Host = host
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("worker /metrics with Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}
