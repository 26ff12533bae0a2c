package web_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

const prometheusPath = "/usr/bin/prometheus"

// scrapeJob is the job name the test Prometheus scrapes the web server as.
const scrapeJob = "wasmjobs-web"

// promClient bounds each request of the tests to Prometheus and to
// asynqmon's metrics endpoint.
var promClient = &http.Client{Timeout: 10 * time.Second}

// requirePrometheus skips the test without Debian's prometheus, or fails it
// when make test asked for every service.
func requirePrometheus(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(prometheusPath); err != nil {
		if os.Getenv(testenv.EnvRequire) == "1" {
			t.Fatalf("%s not installed (make test installs Debian's prometheus)", prometheusPath)
		}
		t.Skipf("%s not installed", prometheusPath)
	}
}

// testPrometheus is a real Prometheus server started for one test.
type testPrometheus struct {
	// URL is its base URL, http://127.0.0.1:port.
	URL string
	// queryLog is the file it logs every query it answers to, one JSON
	// object a line.
	queryLog string
	log      string
}

// startPrometheus starts Debian's prometheus on a free loopback port, with
// its data in a temporary directory, scraping target's /metrics every
// second with token as its bearer token; it is killed when the test ends.
// It returns once Prometheus is ready to answer queries.
func startPrometheus(t *testing.T, target, token string) *testPrometheus {
	t.Helper()
	dir := t.TempDir()
	p := &testPrometheus{queryLog: filepath.Join(dir, "queries.log"), log: filepath.Join(dir, "prometheus.log")}
	config := fmt.Sprintf(`global:
  query_log_file: %q
scrape_configs:
  - job_name: %q
    scrape_interval: 1s
    scrape_timeout: 1s
    authorization:
      credentials: %q
    static_configs:
      - targets: [%q]
`, p.queryLog, scrapeJob, token, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)
	p.URL = "http://" + addr
	logFile, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(prometheusPath,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := promClient.Get(p.URL + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-exited:
			t.Fatalf("prometheus exited before it was ready:\n%s", p.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus was not ready on %s within 30 s:\n%s", addr, p.logTail())
		}
	}
}

// freeLoopbackAddr returns a loopback address with a port free just now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (p *testPrometheus) logTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// promSample is one series of an instant query's answer.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query answers the instant PromQL query q.
func (p *testPrometheus) query(t *testing.T, q string) []promSample {
	t.Helper()
	resp, err := promClient.Get(p.URL + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "success" {
		t.Fatalf("prometheus query %s: %s %v %s", q, resp.Status, err, body.Error)
	}
	return body.Data.Result
}

// waitFor polls the instant query q until it answers a series whose value
// is want, and fails the test after limit.
func (p *testPrometheus) waitFor(t *testing.T, q, want string, limit time.Duration) {
	t.Helper()
	var got []promSample
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		got = p.query(t, q)
		for _, s := range got {
			if s.Value[1] == want {
				return
			}
		}
	}
	t.Fatalf("prometheus: %s is %v after %v, want %s; its log:\n%s", q, got, limit, want, p.logTail())
}

// rangeQueries counts the range queries Prometheus has answered whose
// PromQL mentions metric.
func (p *testPrometheus) rangeQueries(t *testing.T, metric string) int {
	t.Helper()
	b, err := os.ReadFile(p.queryLog)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		var entry struct {
			Params struct {
				Query string `json:"query"`
				Step  int    `json:"step"`
			} `json:"params"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Params.Step > 0 && strings.Contains(entry.Params.Query, metric) {
			n++
		}
	}
	return n
}
