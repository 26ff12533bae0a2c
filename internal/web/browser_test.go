package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/internal/testworker"
	"github.com/wasmjobs/wasmjobs/internal/web"
	"github.com/wasmjobs/wasmjobs/internal/worker"
	"github.com/wasmjobs/wasmjobs/jobs"
)

const chromiumPath = "/usr/bin/chromium"

// screenshotDir is the git-ignored screenshots/ folder at the repository root.
func screenshotDir(t *testing.T) string {
	t.Helper()
	out := filepath.Join(testenv.RepoRoot(t), "screenshots")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// requireChromium skips the test without chromium, or fails it when
// make test asked for every service.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		if os.Getenv(testenv.EnvRequire) == "1" {
			t.Fatalf("%s not installed (make test installs Debian's chromium)", chromiumPath)
		}
		t.Skipf("%s not installed", chromiumPath)
	}
}

// newBrowser starts a headless chromium, closed when the test ends, and
// returns the context of its first tab.
func newBrowser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	return bctx
}

// screenshot saves the whole page as dir/name.
func screenshot(dir, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name), png, 0o644)
	})
}

// TestBrowser drives Debian's chromium headless: sign in, watch a running
// batch's progress move, and see the queue in the asynq dashboard.
func TestBrowser(t *testing.T) {
	requireChromium(t)
	redis := testenv.Redis(t)
	store, bucket := testenv.Store(t)
	client, err := jobs.NewClient(redis)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	batches, err := batch.NewClient(redis)
	if err != nil {
		t.Fatal(err)
	}
	defer batches.Close()
	ctx := testenv.Context(t, 3*time.Minute)

	srv, err := web.New(web.Config{Addr: "localhost:0", Redis: redis, Store: store, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	defer srv.Stop()
	base := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)

	// A batch that takes a few seconds: 400 objects, one slow-ish worker.
	// The first three are not UTF-8: the guest fails them, so the batch has
	// failures to retry from the page.
	for i := range 400 {
		u := s3url.ObjectURL{Bucket: bucket, Key: fmt.Sprintf("docs/%04d.txt", i)}
		body := fmt.Appendf(nil, "text number %d", i)
		if i < 3 {
			body = []byte{0xff, 0xfe}
		}
		if err := store.Put(ctx, u, body, "text/plain", nil); err != nil {
			t.Fatal(err)
		}
	}
	// Registered now, started once the page shows the batch waiting.
	w := testworker.New(t, worker.Config{Redis: redis, Store: store, Concurrency: 1,
		BatchRecorder: &batch.Recorder{Client: batches, Store: store}}, map[string][]byte{"wordcount": guests.Wordcount})
	spec, _ := jobs.BatchSpec{Guest: "wordcount", Type: "text", Input: "s3://" + bucket + "/docs/", ID: "browser-batch"}.WithDefaults()
	if _, err := batches.CreateBatch(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := batch.Plan(ctx, batches, store, spec, batch.PlanConfig{}); err != nil {
		t.Fatal(err)
	}

	bctx := newBrowser(t, ctx)
	shots := screenshotDir(t)
	shot := func(name string) chromedp.Action[chromedp.Void] { return screenshot(shots, name) }
	text := func(sel string) string {
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	noErrorPage := func(where string) {
		title, err := chromedp.Run(bctx, chromedp.Title())
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		body := text("body")
		for _, bad := range []string{"This site can’t be reached", "ERR_", "404 page not found", "Internal Server Error", "unauthorized"} {
			if strings.Contains(body, bad) {
				t.Fatalf("%s shows an error page (%q): %s", where, bad, body)
			}
		}
		if !strings.Contains(title, "wasmjobs") && !strings.Contains(strings.ToLower(title), "asynq") {
			t.Fatalf("%s: unexpected title %q", where, title)
		}
	}

	// Sign in.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/batches/"+spec.ID),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		shot("01-login.png"),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("[data-batch]")),
	); err != nil {
		t.Fatal(err)
	}
	noErrorPage("batch page")
	if h1 := text("h1"); h1 != "Batch "+spec.ID {
		t.Fatalf("after login the page says %q", h1)
	}

	// The worker starts now; the page's progress must move.
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(".counts"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	first := text(".counts")
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var moved string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		if now := text(".counts"); now != first && !strings.HasPrefix(now, "0 done") {
			moved = now
			break
		}
	}
	if moved == "" {
		t.Fatalf("progress did not move on the page: still %q", first)
	}
	t.Logf("progress moved: %q → %q", first, moved)
	if err := chromedp.Do(bctx, shot("02-batch-progress.png")); err != nil {
		t.Fatal(err)
	}

	// The picture of progress has points by now.
	points, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector(".spark polyline").getAttribute("points")`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(points, ",") < 2 {
		t.Errorf("the progress picture has points %q, want two or more", points)
	}
	// The page shows the rate and time left while it runs; Cancel stops it.
	if c := text(".counts"); !strings.Contains(c, "so far") {
		t.Errorf("a running batch's progress shows no elapsed time: %q", c)
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS("#cancel")), chromedp.WaitVisible(chromedp.CSS("#note"))); err != nil {
		t.Fatal(err)
	}
	if note := text("#note"); !strings.Contains(note, "Canceled") {
		t.Fatalf("after Cancel the page says %q", note)
	}
	var canceled *batch.Status
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if canceled, err = batches.BatchStatus(ctx, spec.ID); err == nil && !canceled.Finished.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the canceled batch did not finish: %+v %v", canceled, err)
		}
	}
	if canceled.Canceled == 0 || canceled.Failed != 3 {
		t.Fatalf("after Cancel: %+v, want canceled items and the 3 failures", canceled)
	}
	// The finished batch offers its failures again; the page stops polling.
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/batches/"+spec.ID), chromedp.WaitVisible(chromedp.CSS("#retry-failed")), shot("03-batch-canceled.png")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS("#retry-failed")), chromedp.WaitVisible(chromedp.CSS("#note"))); err != nil {
		t.Fatal(err)
	}
	if note := text("#note"); !strings.Contains(note, "3 failed jobs queued again") {
		t.Fatalf("after Retry failed the page says %q", note)
	}

	// The batch list shows it too.
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("table")), shot("04-batches.png")); err != nil {
		t.Fatal(err)
	}
	noErrorPage("batches page")
	if body := text("body"); !strings.Contains(body, spec.ID) {
		t.Fatalf("batches page lacks the batch: %s", body)
	}

	// The asynq dashboard lists the queue with its counts, and its page
	// shows the tasks by state.
	waitFor := func(page string, want ...string) {
		t.Helper()
		if err := chromedp.Do(bctx, chromedp.Navigate(base+page)); err != nil {
			t.Fatal(err)
		}
		var body string
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
			body = text("body")
			missing := false
			for _, w := range want {
				missing = missing || !strings.Contains(body, w)
			}
			if !missing {
				noErrorPage(page)
				return
			}
		}
		t.Fatalf("%s does not show %q: %s", page, want, body)
	}
	waitFor("/monitoring/", "default", "Size", "Processed")
	if err := chromedp.Do(bctx, shot("05-dashboard.png")); err != nil {
		t.Fatal(err)
	}
	waitFor("/monitoring/queues/default", "default", "Pending", "Processed")
	if err := chromedp.Do(bctx, shot("06-dashboard-queue.png")); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserMetrics opens asynqmon's Metrics tab against a real
// Prometheus that scrapes the web server's /metrics with the token, after
// a worker processed jobs, and waits for its charts to draw that data.
func TestBrowserMetrics(t *testing.T) {
	requireChromium(t)
	requirePrometheus(t)
	redis := testenv.Redis(t)
	store, _ := testenv.Store(t)
	client, err := jobs.NewClient(redis)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := testenv.Context(t, 3*time.Minute)

	// The web server's port comes first: Prometheus is told to scrape it,
	// and the server is told where Prometheus is.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	prom := startPrometheus(t, ln.Addr().String(), token)
	srv, err := web.New(web.Config{Addr: "localhost:0", Redis: redis, Store: store, Token: token, PrometheusURL: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	base := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)

	// Jobs on a queue of their own, three of them failing (not UTF-8).
	const queue, ok, bad = "charted", 30, 3
	for i := range ok + bad {
		body := fmt.Appendf(nil, "text number %d", i)
		if i >= ok {
			body = []byte{0xff, 0xfe}
		}
		if _, err := client.EnqueueText(ctx, jobs.Payload{Guest: "wordcount", Data: body}, jobs.Queue(queue), jobs.MaxRetry(0)); err != nil {
			t.Fatal(err)
		}
	}
	// The worker starts once Prometheus holds a sample from before it
	// (which also proves the scrape got past the token), so that rate()
	// sees the counter go up.
	prom.waitFor(t, fmt.Sprintf(`asynq_tasks_processed_total{job=%q,queue=%q}`, scrapeJob, queue), "0", 30*time.Second)
	w := testworker.New(t, worker.Config{Redis: redis, Store: store, Concurrency: 1, Queues: map[string]int{queue: 1}},
		map[string][]byte{"wordcount": guests.Wordcount})
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	prom.waitFor(t, fmt.Sprintf(`asynq_tasks_processed_total{job=%q,queue=%q}`, scrapeJob, queue), fmt.Sprint(ok+bad), 60*time.Second)

	// asynqmon's own endpoint answers from Prometheus: a processing rate
	// above zero at two points of the last minute or more (asynqmon asks
	// for a point every 10 s, so this takes up to about 20 s). The page
	// shows that minute too, so that its lines are long enough to see.
	var rates string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(time.Second) {
		var points int
		if points, rates = processedRatePoints(t, base, queue); points >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("asynqmon's /api/metrics has no processing rate for %s at two points of the last minute after 60 s: %s", queue, rates)
		}
	}
	asked := prom.rangeQueries(t, "asynq_tasks_processed_total")

	// The page: sign in, and the charts draw lines for the queue.
	bctx := newBrowser(t, ctx)
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/monitoring/q/metrics?duration=60"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#signin")),
	); err != nil {
		t.Fatal(err)
	}
	charts := map[string]chartLines{}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		js, err := chromedp.Run(bctx, chromedp.Evaluate[string](readChartsJS))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(js), &charts); err != nil {
			t.Fatalf("the charts read %q: %v", js, err)
		}
		if charts["Tasks Processed"].draws(queue) && charts["Tasks Failed"].draws(queue) && charts["Queue Size"].draws(queue) {
			break
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("the Metrics page draws no lines for %s after 60 s: %+v\n%s", queue, charts, body)
		}
	}
	if err := chromedp.Do(bctx, screenshot(screenshotDir(t), "07-dashboard-metrics.png")); err != nil {
		t.Fatal(err)
	}
	t.Logf("charts: Tasks Processed %d points, Tasks Failed %d, Queue Size %d; asynqmon /api/metrics: %s",
		charts["Tasks Processed"].points(), charts["Tasks Failed"].points(), charts["Queue Size"].points(), rates)
	// The page's own request went to our Prometheus.
	if n := prom.rangeQueries(t, "asynq_tasks_processed_total"); n <= asked {
		t.Errorf("prometheus answered %d range queries for asynq_tasks_processed_total, %d before the page opened: the page's did not reach it", n, asked)
	}
	if body, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body"))); strings.Contains(body, "Failed to get metrics data") {
		t.Errorf("the Metrics page reports an error: %s", body)
	}
}

// processedRatePoints asks asynqmon's metrics endpoint, as the Metrics page
// does, for the last minute, and returns at how many points queue's
// processing rate is above zero, with the answer's series for the queue.
func processedRatePoints(t *testing.T, base, queue string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/monitoring/api/metrics?duration=60", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := promClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Processed struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Values [][2]any          `json:"values"`
				} `json:"result"`
			} `json:"data"`
		} `json:"tasks_processed_per_second"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("asynqmon /api/metrics: %s %v", resp.Status, err)
	}
	n, seen := 0, ""
	for _, r := range body.Processed.Data.Result {
		if r.Metric["queue"] != queue {
			continue
		}
		seen = fmt.Sprint(r.Values)
		for _, v := range r.Values {
			if s, _ := v[1].(string); s != "" && s != "0" {
				n++
			}
		}
	}
	return n, body.Processed.Status + " " + seen
}

// chartLines is what a recharts chart on asynqmon's Metrics page draws:
// its lines and its legend's entries.
type chartLines struct {
	Lines  []chartLine `json:"lines"`
	Legend []string    `json:"legend"`
}

// chartLine is one line of a chart: its SVG path, and how much of it (in
// pixels) is still to be drawn: recharts draws a line in over 1.5 s by
// growing the dash of its stroke-dasharray to the path's length.
type chartLine struct {
	D       string  `json:"d"`
	Undrawn float64 `json:"undrawn"`
}

// points is the number of data points of the chart's longest line: its
// path's move, line and curve commands.
func (c chartLines) points() int {
	most := 0
	for _, l := range c.Lines {
		most = max(most, strings.Count(l.D, "M")+strings.Count(l.D, "L")+strings.Count(l.D, "C"))
	}
	return most
}

// draws reports whether the chart names queue in its legend and has drawn
// its lines in full, one of them through two points or more.
func (c chartLines) draws(queue string) bool {
	for _, l := range c.Lines {
		if l.Undrawn > 1 {
			return false
		}
	}
	return c.points() >= 2 && slices.Contains(c.Legend, queue)
}

// readChartsJS reads each chart of asynqmon's Metrics page by its title: a
// ChartRow is the title's box followed by the chart's container.
const readChartsJS = `(() => {
  const out = {};
  for (const p of document.querySelectorAll("p")) {
    const chart = p.parentElement && p.parentElement.nextElementSibling;
    if (!chart || !chart.classList.contains("recharts-responsive-container")) continue;
    out[p.textContent] = {
      lines: [...chart.querySelectorAll("path.recharts-line-curve")].map(e => ({
        d: e.getAttribute("d") || "",
        undrawn: e.hasAttribute("stroke-dasharray") ? e.getTotalLength() - (parseFloat(e.getAttribute("stroke-dasharray")) || 0) : 0,
      })),
      legend: [...chart.querySelectorAll(".recharts-legend-item-text")].map(e => e.textContent),
    };
  }
  return JSON.stringify(out);
})()`

// TestBrowserCrossSite is the attack in a real browser: the operator runs
// the token-less loopback server and visits another site, whose page posts
// a job as text/plain and presses asynqmon's pause. Nothing may happen.
func TestBrowserCrossSite(t *testing.T) {
	requireChromium(t)
	redis := testenv.Redis(t)
	store, _ := testenv.Store(t)
	client, err := jobs.NewClient(redis)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := testenv.Context(t, time.Minute)
	if _, err := client.EnqueueText(ctx, jobs.Payload{Guest: "hello", Data: []byte("x")}, jobs.Queue("victim")); err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(web.Config{Addr: "localhost:0", Redis: redis, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	victim := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)

	evil := http.NewServeMux()
	evil.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>evil</title><script>
const job = '{"type":"text","job":{"guest":"hello","data":"QWRh"},"options":{"queue":"evil"}}';
Promise.allSettled([
  fetch(%[1]q + "/api/v1/jobs", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: job}),
  fetch(%[1]q + "/monitoring/api/queues/victim:pause", {method: "POST", mode: "no-cors"}),
  fetch(%[1]q + "/monitoring/api/queues/victim/pending_tasks:delete_all", {method: "DELETE", mode: "no-cors"}),
]).then(() => { document.title = "done"; });
</script>`, victim)
	})
	eln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	es := &http.Server{Handler: evil, ReadHeaderTimeout: 5 * time.Second}
	go es.Serve(eln)
	defer es.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-background-networking", true),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+eln.Addr().String()+"/")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		title, err := chromedp.Run(bctx, chromedp.Title())
		if err != nil {
			t.Fatal(err)
		}
		if title == "done" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page's requests did not finish (title %q)", title)
		}
	}
	insp := asynq.NewInspector(redis)
	defer insp.Close()
	if info, err := insp.GetQueueInfo("evil"); err == nil {
		t.Errorf("a cross-site page enqueued a job: %+v", info)
	}
	info, err := insp.GetQueueInfo("victim")
	if err != nil || info.Paused || info.Pending != 1 {
		t.Errorf("victim queue after the cross-site page: %+v, %v; want unpaused with its task", info, err)
	}
}
