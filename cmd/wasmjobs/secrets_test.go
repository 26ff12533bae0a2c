package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// envRunMain makes the test binary behave as the wasmjobs binary, so tests
// can run it as a process and see everything it prints, logs included.
const envRunMain = "WASMJOBS_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// cliRun is one run of the binary and everything it printed.
type cliRun struct {
	args []string
	out  string
	err  error
}

// runCLI runs the binary with args and extra env, stops it with SIGTERM
// after timeout (then kills it), and returns stdout and stderr together.
func runCLI(t *testing.T, env []string, timeout time.Duration, args ...string) cliRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return runCLIContext(ctx, t, env, args...)
}

func runCLIContext(ctx context.Context, t *testing.T, env []string, args ...string) cliRun {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), envRunMain+"=1"), env...)
	cmd.Stdin = strings.NewReader("some input")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return cliRun{args: args, out: out.String(), err: err}
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// commandPaths lists every subcommand as its arguments, e.g. ["batch", "run"].
func commandPaths(c *cobra.Command, prefix []string) [][]string {
	var out [][]string
	for _, sub := range c.Commands() {
		if sub.Hidden {
			continue
		}
		p := append(append([]string(nil), prefix...), sub.Name())
		out = append(out, p)
		out = append(out, commandPaths(sub, p)...)
	}
	return out
}

// TestNoSecretsInOutput sets recognisable secrets in the environment and
// runs the binary the ways an operator sees its output: every --help, bad
// and unreachable Redis and S3, and the web server through a failed and a
// good login, with debug logging. No secret may appear anywhere.
func TestNoSecretsInOutput(t *testing.T) {
	var (
		s3Secret = "s3SECRETq7Zk" + testenv.RandomHex(6)
		redisPW  = "redisPWx9Lm" + testenv.RandomHex(6)
		tokenVal = "tokenSECRETw4Np" + testenv.RandomHex(6)
	)
	deadRedis, deadS3 := closedPort(t), closedPort(t)
	base := []string{
		"S3_SECRET_KEY=" + s3Secret, "S3_ACCESS_KEY=wasmjobs-test-access", "S3_ENDPOINT=" + deadS3,
		"REDIS_URL=redis://ops:" + redisPW + "@" + deadRedis + "/0", "WASMJOBS_TOKEN=" + tokenVal,
		"WASMJOBS_LOG_LEVEL=debug", "WASMJOBS_CACHE_DIR=" + t.TempDir(),
	}
	with := func(kv ...string) []string { return append(append([]string(nil), base...), kv...) }
	var runs []cliRun

	// Every help page.
	help := runCLI(t, base, 30*time.Second, "--help")
	if !strings.Contains(help.out, "[$S3_SECRET_KEY]") || !strings.Contains(help.out, "--redis") {
		t.Fatalf("--help does not show the flags:\n%s", help.out)
	}
	runs = append(runs, help, runCLI(t, with("REDIS_URL=redis://h:6379/0?password="+redisPW), 30*time.Second, "--help"))
	for _, p := range commandPaths(newRootCmd(), nil) {
		runs = append(runs, runCLI(t, base, 30*time.Second, append(p, "--help")...))
	}

	// Redis URLs that do not parse, each with a password.
	for _, u := range []string{
		"redis://ops:" + redisPW + "@h:notaport/0",
		"redis://:" + redisPW + "@[::1",
		"rediss://ops:" + redisPW + "@h%zz",
		"http://ops:" + redisPW + "@h",
		"redis://ops:" + redisPW + "@h:6379/notadb",
		"redis-socket://ops:" + redisPW + "@/tmp/redis.sock?db=x",
		"redis-cluster://ops:" + redisPW + "@nohostport",
	} {
		for _, args := range [][]string{{"batch", "list"}, {"worker"}, {"web"}} {
			r := runCLI(t, with("REDIS_URL="+u), 30*time.Second, args...)
			if r.err == nil {
				t.Errorf("%v with REDIS_URL %s: no error", args, strings.ReplaceAll(u, redisPW, "…"))
			}
			runs = append(runs, r)
		}
	}

	// Unreachable Redis and S3.
	runs = append(runs,
		runCLI(t, base, 30*time.Second, "batch", "list"),
		runCLI(t, base, 30*time.Second, "batch", "status", "b1"),
		runCLI(t, base, 30*time.Second, "enqueue", "text", "--guest", "hello", "--data-file", "-", "--wait", "2s"),
		runCLI(t, base, 30*time.Second, "guest", "push", "--builtin"),
		runCLI(t, base, 30*time.Second, "batch", "run", "s3://data/in/", "--guest", "hello", "--type", "text"),
		runCLI(t, base, 4*time.Second, "worker", "--metrics-addr", closedPort(t)),
	)

	// Real services with wrong credentials, where they run.
	if os.Getenv(testenv.EnvRedis) != "" && os.Getenv(testenv.EnvS3) != "" {
		redis := testenv.Redis(t)
		s3 := testenv.S3Config(t)
		wrong := with("REDIS_URL=redis://ops:"+redisPW+"@"+redis.Addr+"/"+strconv.Itoa(redis.DB),
			"S3_ENDPOINT="+s3.Endpoint, "S3_ACCESS_KEY="+s3.AccessKey)
		runs = append(runs,
			runCLI(t, wrong, 30*time.Second, "batch", "list"),
			runCLI(t, wrong, 30*time.Second, "guest", "push", "--builtin"),
			runCLI(t, wrong, 4*time.Second, "worker"),
		)
	}

	// The web server: a failed login (with a near-miss of the token), a
	// good one, logout, bad bearer tokens and a readiness check that fails.
	addr := closedPort(t)
	ctx, cancel := context.WithCancel(context.Background())
	webDone := make(chan cliRun, 1)
	go func() { webDone <- runCLIContext(ctx, t, base, "web", "--addr", addr) }()
	var httpLog bytes.Buffer
	webRequests(t, addr, tokenVal, &httpLog)
	cancel()
	webRun := <-webDone
	if !strings.Contains(webRun.out, "web server listening") {
		t.Errorf("web did not start:\n%s", webRun.out)
	}
	runs = append(runs, webRun, cliRun{args: []string{"(HTTP responses of web)"}, out: httpLog.String()})

	for _, r := range runs {
		for name, secret := range map[string]string{"S3_SECRET_KEY": s3Secret, "REDIS_URL password": redisPW, "WASMJOBS_TOKEN": tokenVal} {
			if strings.Contains(r.out, secret) || strings.Contains(r.out, url.QueryEscape(secret)) {
				t.Errorf("wasmjobs %s prints the %s:\n%s", strings.Join(r.args, " "), name, r.out)
			}
		}
	}
	t.Logf("%d runs checked", len(runs))
}

// webRequests waits for the web server at addr and drives its login,
// writing every response (status, headers, body) to out.
func webRequests(t *testing.T, addr, token string, out io.Writer) {
	t.Helper()
	base := "http://" + addr
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web server did not come up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	do := func(req *http.Request) *http.Response {
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(out, "%s %s → %d %v\n%s\n", req.Method, req.URL, resp.StatusCode, resp.Header, b)
		return resp
	}
	form := func(vals url.Values) *http.Request {
		req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(vals.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	get := func(path, bearer string) *http.Request {
		req, _ := http.NewRequest("GET", base+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		return req
	}
	do(get("/login?next=/batches/x", ""))
	if resp := do(form(url.Values{"token": {"x" + token + "x"}, "next": {"/"}})); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("login with a wrong token: %d", resp.StatusCode)
	}
	good := do(form(url.Values{"token": {token}, "next": {"/"}}))
	if good.StatusCode != http.StatusSeeOther || len(good.Cookies()) != 1 {
		t.Fatalf("login with the token: %d %v", good.StatusCode, good.Cookies())
	}
	logout, _ := http.NewRequest("POST", base+"/logout", nil)
	logout.AddCookie(good.Cookies()[0])
	do(logout)
	do(get("/api/v1/batches", token+"x"))
	do(get("/api/v1/batches", token))
	do(get("/readyz", token))
	do(get("/metrics", token))
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://user:pw@h:6379/0", "redis://…@h:6379/0"},
		{"redis-sentinel://:p@w@h1:1,h2:2?master=m", "redis-sentinel://…@h1:1,h2:2?master=m"},
		{"redis://h/0?db=1&Password=pw&x=y", "redis://h/0?db=1&Password=…&x=y"},
		{"127.0.0.1:9000", "127.0.0.1:9000"},
	} {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	_, err := (&globalFlags{redisURL: "redis://u:p%40ss@h:x/0"}).redisOpt()
	if err == nil || strings.Contains(err.Error(), "p%40ss") || strings.Contains(err.Error(), "p@ss") || !strings.Contains(err.Error(), "invalid port") {
		t.Errorf("bad URL error = %v, want the reason without the password", err)
	}
}
