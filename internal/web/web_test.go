package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/guests/guesttest"
	"github.com/wasmjobs/wasmjobs/internal/httpguard"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/internal/testworker"
	"github.com/wasmjobs/wasmjobs/internal/web"
	"github.com/wasmjobs/wasmjobs/internal/worker"
	"github.com/wasmjobs/wasmjobs/jobs"
)

const token = "test-token-0123456789"

type env struct {
	redis  asynq.RedisClientOpt
	bucket string
	client *jobs.Client
	url    string
	srv    *web.Server
}

func newEnv(t *testing.T, cfg web.Config) *env {
	t.Helper()
	e := &env{redis: testenv.Redis(t)}
	store, bucket := testenv.Store(t)
	e.bucket = bucket
	var err error
	if e.client, err = jobs.NewClient(e.redis); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.client.Close() })
	cfg.Redis, cfg.Store = e.redis, store
	if e.srv, err = web.New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.srv.Stop)
	hs := httptest.NewServer(e.srv.Handler())
	t.Cleanup(hs.Close)
	e.url = hs.URL
	return e
}

// do sends a request; auth is the bearer token ("" for none).
func (e *env) do(t *testing.T, method, path, auth, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func errorCode(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not a JSON error: %s", body)
	}
	return e.Error.Code
}

var protected = []struct{ method, path string }{
	{"GET", "/"},
	{"GET", "/batches/x"},
	{"POST", "/batches"},
	{"GET", "/metrics"},
	{"GET", "/monitoring/"},
	{"GET", "/monitoring/api/queues"},
	{"POST", "/api/v1/jobs"},
	{"POST", "/api/v1/batches"},
	{"GET", "/api/v1/batches"},
	{"GET", "/api/v1/batches/x"},
	{"GET", "/api/v1/batches/x/failures"},
	{"GET", "/api/v1/tasks/default/x"},
	{"GET", "/jobs/default/x"},
	{"GET", "/jobs?queue=default&id=x"},
}

func TestAuth(t *testing.T) {
	e := newEnv(t, web.Config{Token: token})
	// /readyz answers a probe without the token, with its status only.
	if code, body, _ := e.do(t, "GET", "/readyz", "", ""); code != http.StatusOK || strings.Contains(body, "redis") || !strings.Contains(body, `"status":"ready"`) {
		t.Errorf("readyz without the token: %d %s, want 200 and no details", code, body)
	}
	if code, body, _ := e.do(t, "GET", "/readyz", token, ""); code != http.StatusOK || !strings.Contains(body, `"redis":"ok"`) {
		t.Errorf("readyz with the token: %d %s, want the checks", code, body)
	}
	for _, r := range protected {
		for _, auth := range []string{"", "wrong-token", token[:len(token)-1]} {
			code, body, hdr := e.do(t, r.method, r.path, auth, "")
			if code != http.StatusUnauthorized || errorCode(t, body) != "unauthorized" || hdr.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with token %q: %d %s, want 401", r.method, r.path, auth, code, body)
			}
		}
		if code, _, _ := e.do(t, r.method, r.path, token, ""); code == http.StatusUnauthorized {
			t.Errorf("%s %s with the token: 401", r.method, r.path)
		}
	}
	if code, _, _ := e.do(t, "GET", "/healthz", "", ""); code != http.StatusOK {
		t.Errorf("/healthz without token: %d, want 200", code)
	}

	// A browser is sent to the login page, signs in, and gets a cookie.
	req, _ := http.NewRequest("GET", e.url+"/batches/x", nil)
	req.Header.Set("Accept", "text/html")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
		t.Fatalf("browser without session: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = noFollow.PostForm(e.url+"/login", url.Values{"token": {"nope"}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong token login: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp, err = noFollow.PostForm(e.url+"/login", url.Values{"token": {token}, "next": {"//evil.example/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || len(cookies) != 1 {
		t.Fatalf("login: %d → %q, cookies %v", resp.StatusCode, resp.Header.Get("Location"), cookies)
	}
	c := cookies[0]
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || strings.Contains(c.Value, token) {
		t.Fatalf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict, not the token", c)
	}
	req, _ = http.NewRequest("GET", e.url+"/api/v1/batches", nil)
	req.AddCookie(c)
	resp, err = noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with session cookie: %d", resp.StatusCode)
	}
}

func TestRefusesOpenBindWithoutToken(t *testing.T) {
	e := newEnv(t, web.Config{}) // loopback default: fine
	_, err := web.New(web.Config{Addr: "0.0.0.0:0", Redis: e.redis, Store: mustStore(t)})
	if !errors.Is(err, httpguard.ErrInsecureBind) {
		t.Fatalf("err = %v, want ErrInsecureBind", err)
	}
	if _, err := web.New(web.Config{Addr: "0.0.0.0:0", Insecure: true, Redis: e.redis, Store: mustStore(t)}); err != nil {
		t.Fatalf("--insecure: %v", err)
	}
}

func mustStore(t *testing.T) *blob.Store {
	s, _ := testenv.Store(t)
	return s
}

func TestJobsAPI(t *testing.T) {
	e := newEnv(t, web.Config{Token: token})
	post := func(body string) (int, string) {
		code, b, _ := e.do(t, "POST", "/api/v1/jobs", token, body)
		return code, b
	}
	code, body := post(`{"type":"text","job":{"guest":"hello","data":"QWRh"},"options":{"queue":"web","task_id":"t1","max_retry":2}}`)
	if code != http.StatusCreated || !strings.Contains(body, `"id":"t1"`) || !strings.Contains(body, `"queue":"web"`) {
		t.Fatalf("POST job: %d %s", code, body)
	}
	insp := asynq.NewInspector(e.redis)
	defer insp.Close()
	info, err := insp.GetTaskInfo("web", "t1")
	if err != nil || info.MaxRetry != 2 || info.Type != jobs.TypeText {
		t.Fatalf("enqueued task: %+v, %v", info, err)
	}
	for _, c := range []struct {
		body, code string
		status     int
	}{
		{`{"type":"text","job":{"guest":"hello","data":"QWRh"},"options":{"queue":"web","task_id":"t1"}}`, "task_id_conflict", 409},
		{`{"type":"video","job":{"guest":"hello","data":"QWRh"}}`, "invalid_payload", 400},
		{`{"type":"text","job":{"guest":"","data":"QWRh"}}`, "invalid_payload", 400},
		{`{"type":"text","job":{"guest":"hello","input":"http://x/y"}}`, "invalid_payload", 400},
		{`{"type":"text","job":{"guest":"hello"}}`, "invalid_payload", 400},
		{`{"type":"text","job":{"guest":"hello","data":"QWRh"},"options":{"timeout_seconds":-1}}`, "invalid_payload", 400},
		{`{"type":"text","job":{"guest":"hello","data":"QWRh"},"bogus":1}`, "invalid_json", 400},
		{`{not json`, "invalid_json", 400},
	} {
		status, b := post(c.body)
		if status != c.status || errorCode(t, b) != c.code {
			t.Errorf("POST %s: %d %s, want %d %s", c.body, status, b, c.status, c.code)
		}
	}
	// Task view.
	code, body, _ = e.do(t, "GET", "/api/v1/tasks/web/t1", token, "")
	if code != 200 || !strings.Contains(body, `"state":"pending"`) || !strings.Contains(body, `"type":"wasm:text"`) {
		t.Fatalf("GET task: %d %s", code, body)
	}
	if code, body, _ = e.do(t, "GET", "/api/v1/tasks/web/nope", token, ""); code != 404 || errorCode(t, body) != "not_found" {
		t.Fatalf("GET unknown task: %d %s", code, body)
	}
	if code, body, _ = e.do(t, "GET", "/api/v1/nothing", token, ""); code != 404 || errorCode(t, body) != "not_found" {
		t.Fatalf("unknown route: %d %s", code, body)
	}
}

func TestBatchesAPI(t *testing.T) {
	e := newEnv(t, web.Config{Token: token})
	code, body, _ := e.do(t, "POST", "/api/v1/batches", token, `{"guest":"wordcount","type":"text","input":"s3://`+e.bucket+`/in/","id":"web-b1"}`)
	if code != http.StatusAccepted || !strings.Contains(body, `"id":"web-b1"`) {
		t.Fatalf("POST batch: %d %s", code, body)
	}
	if code, body, _ = e.do(t, "POST", "/api/v1/batches", token, `{"guest":"wordcount","type":"sound","input":"s3://`+e.bucket+`/in/"}`); code != 400 || errorCode(t, body) != "invalid_payload" {
		t.Fatalf("bad batch: %d %s", code, body)
	}
	if code, body, _ = e.do(t, "GET", "/api/v1/batches", token, ""); code != 200 || !strings.Contains(body, "web-b1") {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, body, _ = e.do(t, "GET", "/api/v1/batches/web-b1", token, ""); code != 200 || !strings.Contains(body, `"guest":"wordcount"`) {
		t.Fatalf("get: %d %s", code, body)
	}
	if code, body, _ = e.do(t, "GET", "/api/v1/batches/web-b1/failures", token, ""); code != 200 || !strings.Contains(body, `"failures":[]`) {
		t.Fatalf("failures: %d %s", code, body)
	}
	if code, body, _ = e.do(t, "GET", "/api/v1/batches/none", token, ""); code != 404 || errorCode(t, body) != "not_found" {
		t.Fatalf("unknown batch: %d %s", code, body)
	}
	if code, _, _ = e.do(t, "GET", "/batches/web-b1", token, ""); code != 200 {
		t.Fatalf("batch page: %d", code)
	}
	if code, body, _ = e.do(t, "GET", "/api/v1/openapi.json", token, ""); code != 200 || !strings.Contains(body, `"/api/v1/batches/{id}/cancel"`) {
		t.Fatalf("openapi.json: %d %.100s", code, body)
	}

	// Cancel and retry-failed a planned batch through the API.
	store, bucket := testenv.Store(t)
	testenv.PutObjects(t, store, 5, func(i int) (s3url.ObjectURL, []byte) {
		return s3url.ObjectURL{Bucket: bucket, Key: fmt.Sprintf("c/%d.txt", i)}, []byte("some words")
	})
	bc, err := batch.NewClient(e.redis)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	spec, _ := batch.Spec{ID: "web-cancel", Guest: "wordcount", Type: "text", Input: "s3://" + bucket + "/c/"}.WithDefaults()
	if _, err := bc.CreateBatch(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	if _, err := batch.Plan(context.Background(), bc, store, spec, batch.PlanConfig{}); err != nil {
		t.Fatal(err)
	}
	if code, body, _ = e.do(t, "POST", "/api/v1/batches/web-cancel/cancel", token, ""); code != 200 || !strings.Contains(body, `"canceled":5`) || !strings.Contains(body, `"finished":true`) {
		t.Fatalf("cancel: %d %s", code, body)
	}
	if code, body, _ = e.do(t, "GET", "/api/v1/batches/web-cancel", token, ""); code != 200 || !strings.Contains(body, `"canceled":5`) || !strings.Contains(body, `"manifest_written":true`) {
		t.Fatalf("after cancel: %d %s", code, body)
	}
	if code, body, _ = e.do(t, "POST", "/api/v1/batches/web-cancel/retry-failed", token, ""); code != 200 || !strings.Contains(body, `"retried":0`) {
		t.Fatalf("retry-failed: %d %s", code, body)
	}
	for _, p := range []string{"/api/v1/batches/none/cancel", "/api/v1/batches/none/retry-failed"} {
		if code, body, _ = e.do(t, "POST", p, token, ""); code != 404 || errorCode(t, body) != "not_found" {
			t.Errorf("POST %s: %d %s, want 404", p, code, body)
		}
	}
	if code, body, _ = e.do(t, "GET", "/", token, ""); code != 200 || !strings.Contains(body, "web-b1") {
		t.Fatalf("batches page: %d", code)
	}
}

// TestMetricsTab: with a Prometheus server configured, asynqmon's Metrics
// tab is on and its charts' data come from that server (a stand-in that
// answers query_range as Prometheus does).
func TestMetricsTab(t *testing.T) {
	var (
		mu      sync.Mutex
		queries []string
	)
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query_range" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		queries = append(queries, r.URL.Query().Get("query"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"queue":"default"},"values":[[1700000000,"3"]]}]}}`)
	}))
	defer prom.Close()
	e := newEnv(t, web.Config{PrometheusURL: prom.URL})
	code, body, _ := e.do(t, "GET", "/monitoring/", "", "")
	if code != 200 || !strings.Contains(body, strings.TrimPrefix(prom.URL, "http://")) {
		t.Fatalf("asynqmon's page does not name the Prometheus server: %d %.300s", code, body)
	}
	code, body, _ = e.do(t, "GET", "/monitoring/api/metrics?duration=3600", "", "")
	mu.Lock()
	defer mu.Unlock()
	if code != 200 || !strings.Contains(body, `"queue":"default"`) || len(queries) == 0 || !strings.Contains(strings.Join(queries, " "), "asynq_") {
		t.Fatalf("metrics through asynqmon: %d %.300s (queries %v)", code, body, queries)
	}
}

func TestReadOnly(t *testing.T) {
	e := newEnv(t, web.Config{ReadOnly: true})
	for _, p := range []string{"/api/v1/jobs", "/api/v1/batches", "/api/v1/batches/x/cancel", "/api/v1/batches/x/retry-failed"} {
		if code, body, _ := e.do(t, "POST", p, "", `{}`); code != http.StatusForbidden || errorCode(t, body) != "read_only" {
			t.Errorf("POST %s read-only: %d %s", p, code, body)
		}
	}
}

func TestReadyAndMonitoring(t *testing.T) {
	e := newEnv(t, web.Config{})
	if code, body, _ := e.do(t, "GET", "/readyz", "", ""); code != 200 || !strings.Contains(body, `"redis":"ok"`) || !strings.Contains(body, `"s3":"ok"`) {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if _, err := e.client.EnqueueText(context.Background(), jobs.Payload{Guest: "hello", Data: []byte("x")}, jobs.Queue("mon")); err != nil {
		t.Fatal(err)
	}
	code, body, _ := e.do(t, "GET", "/monitoring/api/queues", "", "")
	if code != 200 || !strings.Contains(body, `"queue":"mon"`) {
		t.Fatalf("asynqmon queues: %d %s", code, body)
	}
	if code, body, _ = e.do(t, "GET", "/monitoring/", "", ""); code != 200 || !strings.Contains(body, "<html") {
		t.Fatalf("asynqmon UI: %d", code)
	}
}

// TestMetrics: the web server's /metrics has the queue metrics and the
// worker's has the guest metrics, both in valid Prometheus text format,
// after a few jobs.
func TestMetrics(t *testing.T) {
	e := newEnv(t, web.Config{})
	ctx := testenv.Context(t, time.Minute)
	store, _ := testenv.Store(t)
	w := testworker.Start(t, worker.Config{Redis: e.redis, Store: store, Concurrency: 2}, map[string][]byte{"hello": guests.Hello})
	m := w.Metrics()
	for i := range 5 {
		if _, err := e.client.Run(ctx, jobs.TypeText, jobs.Payload{Guest: "hello", Data: []byte{byte('a' + i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.client.EnqueueText(ctx, jobs.Payload{Guest: "hello", Data: []byte("later")}, jobs.Queue("waiting")); err != nil {
		t.Fatal(err)
	}

	parse := func(name, body string) map[string]bool {
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s /metrics does not parse: %v", name, err)
		}
		names := map[string]bool{}
		for n := range fams {
			names[n] = true
		}
		return names
	}
	code, body, _ := e.do(t, "GET", "/metrics", "", "")
	if code != 200 {
		t.Fatalf("web /metrics: %d", code)
	}
	webNames := parse("web", body)
	for _, want := range []string{"asynq_queue_size", "asynq_tasks_enqueued_total", "asynq_queue_latency_seconds", "asynq_tasks_processed_total", "asynq_tasks_failed_total", "go_goroutines"} {
		if !webNames[want] {
			t.Errorf("web /metrics lacks %s", want)
		}
	}
	if !strings.Contains(body, `asynq_queue_size{queue="waiting"} 1`) {
		t.Errorf("web /metrics lacks the waiting queue's size:\n%s", grepLines(body, "asynq_queue_size"))
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	wbody := rec.Body.String()
	wNames := parse("worker", wbody)
	for _, want := range []string{"wasmjobs_guest_run_seconds", "wasmjobs_jobs_total", "wasmjobs_compile_cache_hits_total",
		"wasmjobs_compile_cache_misses_total", "wasmjobs_input_bytes_total", "wasmjobs_output_bytes_total"} {
		if !wNames[want] {
			t.Errorf("worker /metrics lacks %s", want)
		}
	}
	if !strings.Contains(wbody, `wasmjobs_guest_run_seconds_count{guest="hello",outcome="ok"} 5`) ||
		!strings.Contains(wbody, `wasmjobs_jobs_total{outcome="done",type="wasm:text"} 5`) {
		t.Errorf("worker metrics do not count the 5 jobs:\n%s", grepLines(wbody, "wasmjobs_"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestJobLogViews: a completed job's log (its guest's stderr tail) is in the
// API's task view and on the job's page, which the batches page's lookup
// and a batch's rows link to.
func TestJobLogViews(t *testing.T) {
	e := newEnv(t, web.Config{Token: token})
	ctx := testenv.Context(t, time.Minute)
	store, _ := testenv.Store(t)
	testworker.Start(t, worker.Config{Redis: e.redis, Store: store, Concurrency: 2, Queues: map[string]int{"logs": 1}}, map[string][]byte{"misbehave": guesttest.Misbehave})
	info, err := e.client.EnqueueText(ctx, jobs.Payload{Guest: "misbehave", Data: []byte(`{"ok":true}`), Params: map[string]string{"mode": "warn"}}, jobs.Queue("logs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Wait(ctx, info.Queue, info.ID); err != nil {
		t.Fatal(err)
	}
	code, body, _ := e.do(t, "GET", "/api/v1/tasks/logs/"+info.ID, token, "")
	var v web.TaskView
	if code != 200 || json.Unmarshal([]byte(body), &v) != nil || !strings.HasSuffix(v.Log, "www\nmisbehave: warn marker") || len(v.Log) > 2<<10+3 ||
		string(v.Result) != `{"ok":true}` {
		t.Fatalf("GET task: %d %.300s", code, body)
	}
	code, page, _ := e.do(t, "GET", "/jobs/logs/"+info.ID, token, "")
	if code != 200 || !strings.Contains(page, `<pre id="log">…www`) || !strings.Contains(page, "misbehave: warn marker</pre>") ||
		!strings.Contains(page, `<span id="state">completed</span>`) {
		t.Fatalf("job page: %d %.600s", code, page)
	}
	code, _, h := e.do(t, "GET", "/jobs?queue=logs&id="+info.ID, token, "")
	if code != http.StatusSeeOther || h.Get("Location") != "/jobs/logs/"+info.ID {
		t.Fatalf("job lookup: %d, Location %q", code, h.Get("Location"))
	}
	if code, _, _ = e.do(t, "GET", "/jobs/logs/nope", token, ""); code != 404 {
		t.Fatalf("page of an unknown job: %d", code)
	}
	if code, _, _ = e.do(t, "GET", "/jobs/logs/"+info.ID, "", ""); code != http.StatusUnauthorized && code != http.StatusSeeOther {
		t.Fatalf("job page without a token: %d, want it refused", code)
	}
	if _, page, _ = e.do(t, "GET", "/", token, ""); !strings.Contains(page, `id="find-job"`) {
		t.Fatal("the batches page has no job lookup")
	}
}
