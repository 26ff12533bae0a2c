package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wasmjobs/wasmjobs/internal/batch"
	"github.com/wasmjobs/wasmjobs/internal/blob"
	"github.com/wasmjobs/wasmjobs/internal/s3url"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// The reliability scenarios run real processes on their own Redis (AOF on,
// as the deploy files configure it) and MinIO, which they stop, kill and
// restart: a `wasmjobs batch run` of small text objects through the
// wordcount guest, with workers as separate `wasmjobs worker` processes.
// Each scenario checks that nothing was lost (every object done, one
// manifest line each, every output present) and counts the work done twice
// from the workers' own records (a task id a worker reported done more than
// once, across all the workers' logs, kills included). `make reliability`
// writes the table to RELIABILITY.md (WASMJOBS_RELIABILITY_OUT); `make test`
// runs the same scenarios and checks them.

// relEnv is one scenario's services and binary.
type relEnv struct {
	t     *testing.T
	dir   string
	bin   string
	redis *relService
	minio *relService
	// redisURL is what the commands are given; with Sentinel it names the
	// sentinel, and redis is the primary (replica is its replica).
	redisURL string
	redisOpt asynq.RedisConnOpt
	replica  *relService
	sentinel *relService
	s3       blob.Config
	// cliS3 is the S3 endpoint the commands are given: MinIO, or a proxy
	// in front of it (s3Fault).
	cliS3    string
	store    *blob.Store
	bucket   string
	batches  *batch.Client
	workers  []*relWorker
	logsMu   sync.Mutex
	workerID int
}

// relService is a server process the scenario can stop and start again on
// the same port and data directory.
type relService struct {
	name string
	addr string
	args []string
	env  []string
	log  string
	cmd  *exec.Cmd
}

func (s *relService) start(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	s.cmd.Env = append(os.Environ(), s.env...)
	s.cmd.Stdout, s.cmd.Stderr = f, f
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(s.log)
			t.Fatalf("%s did not listen on %s within 30 s:\n%s", s.name, s.addr, tail(string(log), 2000))
		}
	}
}

// stop ends the process as its service manager would (SIGTERM), and waits.
func (s *relService) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// sentinelMaster is the name the scenario's Sentinel monitors.
const sentinelMaster = "relmaster"

// newRelEnv starts the scenario's services: Redis alone, or with
// withSentinel a primary, its replica and a Sentinel monitoring them
// (quorum 1, down after 1 s), which the commands connect through.
func newRelEnv(t *testing.T, withSentinel ...bool) *relEnv {
	t.Helper()
	minioBin := filepath.Join(testenv.RepoRoot(t), ".tools", "bin", "minio")
	if _, err := os.Stat(minioBin); err != nil {
		if os.Getenv(testenv.EnvRequire) == "1" {
			t.Fatalf("%s: %v (make tools installs it)", minioBin, err)
		}
		t.Skipf("no MinIO at %s: run `make test`", minioBin)
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv(testenv.EnvRequire) == "1" {
			t.Fatal("redis-server not found (make tools installs it)")
		}
		t.Skip("no redis-server: run `make test`")
	}
	e := &relEnv{t: t, dir: t.TempDir()}
	redisAddr, minioAddr, consoleAddr := freeLoopbackAddr(t), freeLoopbackAddr(t), freeLoopbackAddr(t)
	_, redisPort, _ := net.SplitHostPort(redisAddr)
	e.redis = &relService{name: "redis", addr: redisAddr, log: filepath.Join(e.dir, "redis.log"), args: []string{
		"redis-server", "--port", redisPort, "--bind", "127.0.0.1", "--dir", e.dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--loglevel", "warning"}}
	e.s3 = blob.Config{Endpoint: minioAddr, AccessKey: "reliability", SecretKey: "reliability-secret"}
	e.cliS3 = minioAddr
	e.minio = &relService{name: "minio", addr: minioAddr, log: filepath.Join(e.dir, "minio.log"),
		args: []string{minioBin, "server", filepath.Join(e.dir, "minio"), "--address", minioAddr, "--console-address", consoleAddr, "--quiet"},
		env:  []string{"MINIO_ROOT_USER=" + e.s3.AccessKey, "MINIO_ROOT_PASSWORD=" + e.s3.SecretKey, "MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CALLHOME_ENABLE=off"}}
	e.redis.start(t)
	e.redisURL, e.redisOpt = "redis://"+redisAddr+"/0", asynq.RedisClientOpt{Addr: redisAddr}
	if len(withSentinel) > 0 && withSentinel[0] {
		e.startSentinel(t, redisPort)
	}
	e.minio.start(t)
	t.Cleanup(func() {
		for _, w := range e.workers {
			w.kill()
		}
		for _, s := range []*relService{e.sentinel, e.replica, e.redis, e.minio} {
			if s != nil {
				s.stop()
			}
		}
	})
	var err error
	if e.store, err = blob.New(e.s3); err != nil {
		t.Fatal(err)
	}
	e.bucket = testenv.NewBucket(t, e.store)
	if e.batches, err = batch.NewClient(e.redisOpt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.batches.Close() })
	e.bin = filepath.Join(e.dir, "wasmjobs")
	build := exec.Command("go", "build", "-o", e.bin, "./cmd/wasmjobs")
	build.Dir = testenv.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	e.cli(pushBuiltin(t)...)
	return e
}

// startSentinel starts a replica of the Redis on primaryPort and a Sentinel
// monitoring the two, and waits until the Sentinel knows the replica.
func (e *relEnv) startSentinel(t *testing.T, primaryPort string) {
	t.Helper()
	replicaAddr, sentinelAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	_, replicaPort, _ := net.SplitHostPort(replicaAddr)
	_, sentinelPort, _ := net.SplitHostPort(sentinelAddr)
	rdir, sdir := filepath.Join(e.dir, "replica"), filepath.Join(e.dir, "sentinel")
	for _, d := range []string{rdir, sdir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.replica = &relService{name: "redis replica", addr: replicaAddr, log: filepath.Join(e.dir, "replica.log"), args: []string{
		"redis-server", "--port", replicaPort, "--bind", "127.0.0.1", "--dir", rdir, "--replicaof", "127.0.0.1", primaryPort,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--loglevel", "warning"}}
	e.replica.start(t)
	conf := filepath.Join(sdir, "sentinel.conf")
	body := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %s 1\n"+
		"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 10000\n",
		sentinelPort, sdir, sentinelMaster, primaryPort, sentinelMaster, sentinelMaster)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	e.sentinel = &relService{name: "sentinel", addr: sentinelAddr, log: filepath.Join(e.dir, "sentinel.log"), args: []string{"redis-server", conf, "--sentinel"}}
	e.sentinel.start(t)
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinelAddr})
	defer sc.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		reps, err := sc.Replicas(context.Background(), sentinelMaster).Result()
		if err == nil && len(reps) == 1 && reps[0]["master-link-status"] == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Sentinel did not see a synced replica within 30 s: %v %v", reps, err)
		}
	}
	e.redisURL = "redis-sentinel://" + sentinelAddr + "?master=" + sentinelMaster
	e.redisOpt = asynq.RedisFailoverClientOpt{MasterName: sentinelMaster, SentinelAddrs: []string{sentinelAddr}}
}

// cliEnv is the environment of every wasmjobs command of the scenario.
func (e *relEnv) cliEnv() []string {
	return append(os.Environ(), "REDIS_URL="+e.redisURL, "S3_ENDPOINT="+e.cliS3,
		"S3_ACCESS_KEY="+e.s3.AccessKey, "S3_SECRET_KEY="+e.s3.SecretKey, "WASMJOBS_GUEST_BUCKET=guests",
		"WASMJOBS_CACHE_DIR="+filepath.Join(e.dir, "cache"), "WASMJOBS_TOKEN=")
}

func (e *relEnv) cli(args ...string) string {
	e.t.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Env = e.cliEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("wasmjobs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// relWorker is one `wasmjobs worker` process; its log (debug level, which
// names every job done) is kept in a file, so a killed process's records
// survive it.
type relWorker struct {
	id  int
	cmd *exec.Cmd
	log string
}

func (e *relEnv) startWorker(args ...string) *relWorker {
	e.t.Helper()
	e.logsMu.Lock()
	e.workerID++
	w := &relWorker{id: e.workerID, log: filepath.Join(e.dir, fmt.Sprintf("worker-%d.log", e.workerID))}
	e.workers = append(e.workers, w)
	e.logsMu.Unlock()
	f, err := os.Create(w.log)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	w.cmd = exec.Command(e.bin, append([]string{"worker", "--log-level", "debug", "--poll-interval", "200ms"}, args...)...)
	w.cmd.Env = e.cliEnv()
	w.cmd.Dir = testenv.RepoRoot(e.t) // where models.json's paths start
	w.cmd.Stdout, w.cmd.Stderr = f, f
	if err := w.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	return w
}

func (w *relWorker) kill() {
	if w.cmd != nil && w.cmd.ProcessState == nil {
		_ = w.cmd.Process.Kill()
		_ = w.cmd.Wait()
	}
}

var jobDoneRE = regexp.MustCompile(`msg="job done" task=(\S+)`)

// jobsDone counts, per worker, the jobs its log reports done, and the task
// ids reported more than once across all workers.
func (e *relEnv) jobsDone() (perWorker []int, twice int) {
	e.t.Helper()
	perWorker, seen := e.tasksDone()
	for _, k := range seen {
		if k > 1 {
			twice += k - 1
		}
	}
	return perWorker, twice
}

// tasksDone counts, per worker, the jobs its log reports done, and per
// task id how often any worker reported it done.
func (e *relEnv) tasksDone() (perWorker []int, seen map[string]int) {
	e.t.Helper()
	seen = map[string]int{}
	for _, w := range e.workers {
		b, err := os.ReadFile(w.log)
		if err != nil {
			e.t.Fatal(err)
		}
		n := 0
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := jobDoneRE.FindStringSubmatch(sc.Text()); m != nil {
				seen[m[1]]++
				n++
			}
		}
		perWorker = append(perWorker, n)
	}
	return perWorker, seen
}

// seed puts n small text objects under ds/.
func (e *relEnv) seed(n int) {
	e.t.Helper()
	testenv.PutObjects(e.t, e.store, n, func(i int) (s3url.ObjectURL, []byte) {
		return s3url.ObjectURL{Bucket: e.bucket, Key: fmt.Sprintf("ds/%06d.txt", i)}, fmt.Appendf(nil, "object %d of the reliability dataset, word %d", i, i%97)
	})
}

// relRun is a batch in progress: its id and the progress samples taken.
type relRun struct {
	e       *relEnv
	id      string
	n       int
	start   time.Time
	samples []relSample
}

type relSample struct {
	at   time.Time
	done int64
}

// startBatch runs `wasmjobs batch run` (enqueueing all n jobs) for the
// dataset.
func (e *relEnv) startBatch(n int) *relRun {
	e.t.Helper()
	return e.startBatchID(n, "rel")
}

// startBatchID is startBatch with batch id id and more batch run flags.
func (e *relEnv) startBatchID(n int, id string, extra ...string) *relRun {
	e.t.Helper()
	r := &relRun{e: e, n: n, start: time.Now(), id: id}
	e.cli(append([]string{"batch", "run", "s3://" + e.bucket + "/ds/", "--guest", "wordcount", "--type", "text", "--id", id}, extra...)...)
	return r
}

// waitDone polls the batch until done reaches at least n (or the batch
// finished), recording progress; Redis may be away for a while.
func (r *relRun) waitDone(n int64, limit time.Duration) {
	r.e.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(limit)
	for {
		st, err := r.e.batches.BatchStatus(ctx, r.id)
		if err == nil {
			r.samples = append(r.samples, relSample{time.Now(), st.Done + st.Failed})
			if st.Done+st.Failed >= n || !st.Finished.IsZero() {
				return
			}
		}
		if time.Now().After(deadline) {
			r.e.t.Fatalf("batch %s: %d of %d jobs ended after %s (status err %v)", r.id, r.last(), n, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sampleWhile records the batch's progress while f runs.
func (r *relRun) sampleWhile(f func()) {
	stop := make(chan struct{})
	got := make(chan []relSample)
	go func() {
		var samples []relSample
		for {
			if st, err := r.e.batches.BatchStatus(context.Background(), r.id); err == nil {
				samples = append(samples, relSample{time.Now(), st.Done + st.Failed})
			}
			select {
			case <-stop:
				got <- samples
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	defer func() {
		close(stop)
		r.samples = append(r.samples, <-got...)
	}()
	f()
}

func (r *relRun) last() int64 {
	if len(r.samples) == 0 {
		return 0
	}
	return r.samples[len(r.samples)-1].done
}

// longestStall is the longest time the batch made no progress.
func (r *relRun) longestStall() time.Duration {
	var worst time.Duration
	from := r.start
	var prev int64
	for _, s := range r.samples {
		if s.done > prev {
			worst = max(worst, s.at.Sub(from))
			from, prev = s.at, s.done
		}
	}
	return worst
}

// relRow is one line of RELIABILITY.md.
type relRow struct {
	scenario, done      string
	in, ok, lost, twice int
	// allowTwice is how much work done twice the scenario tolerates: none,
	// but where a Redis failover may lose the record of jobs that had just
	// ended (see relSentinelFailover).
	allowTwice  int
	took, stall time.Duration
	bound       string
}

// finish waits for the batch to end and checks it: every object done,
// the manifest one line each, every output present.
func (r *relRun) finish(limit time.Duration) relRow {
	r.e.t.Helper()
	r.waitDone(int64(r.n), limit)
	ctx := context.Background()
	st := r.waitManifest(limit)
	took := time.Since(r.start)
	items := r.manifest(st)
	lines := map[string]int{}
	nLines, okLines := len(items), 0
	for _, it := range items {
		lines[it.Key]++
		if it.Status == batch.ItemDone {
			okLines++
		}
	}
	out, _ := s3url.ParsePrefixURL(st.Spec.Output)
	outputs := 0
	for obj, err := range r.e.store.List(ctx, out) {
		if err != nil {
			r.e.t.Fatal(err)
		}
		if !s3url.IsBatchFile(obj.Key) {
			outputs++
		}
	}
	_, twice := r.e.jobsDone()
	row := relRow{in: r.n, ok: int(st.Done), lost: r.n - min(okLines, outputs), twice: twice, took: took, stall: r.longestStall()}
	if st.Done != int64(r.n) || st.Failed != 0 || nLines != r.n || len(lines) != r.n || okLines != r.n || outputs != r.n {
		r.e.t.Errorf("batch %+v: %d manifest lines (%d distinct, %d done), %d outputs; want %d of each", st, nLines, len(lines), okLines, outputs, r.n)
	}
	return row
}

// waitManifest waits up to limit for the batch's manifest to be written.
func (r *relRun) waitManifest(limit time.Duration) *batch.Status {
	r.e.t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(100 * time.Millisecond) {
		st, err := r.e.batches.BatchStatus(context.Background(), r.id)
		if err == nil && st.ManifestWritten {
			return st
		}
		if time.Now().After(deadline) {
			r.e.t.Fatalf("no manifest within %s: %+v %v", limit, st, err)
		}
	}
}

// manifest reads the batch's manifest.
func (r *relRun) manifest(st *batch.Status) []batch.Item {
	r.e.t.Helper()
	b, _, err := r.e.store.Get(context.Background(), st.Spec.OutputObject(s3url.ManifestName), 64<<20)
	if err != nil {
		r.e.t.Fatalf("manifest: %v", err)
	}
	var items []batch.Item
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var it batch.Item
		if err := json.Unmarshal(l, &it); err != nil {
			r.e.t.Fatalf("manifest line %q: %v", l, err)
		}
		items = append(items, it)
	}
	return items
}

// relTable collects the rows and writes RELIABILITY.md when asked.
var relTable struct {
	sync.Mutex
	rows []relRow
}

func addRelRow(t *testing.T, row relRow) {
	t.Logf("%s: %d in, %d done, %d lost, %d done twice, took %s, longest stall %s", row.scenario, row.in, row.ok, row.lost, row.twice, row.took.Round(time.Millisecond), row.stall.Round(time.Millisecond))
	if row.lost != 0 || row.twice > row.allowTwice {
		t.Errorf("%d jobs lost and %d done twice, want none", row.lost, row.twice)
	}
	relTable.Lock()
	defer relTable.Unlock()
	relTable.rows = append(relTable.rows, row)
}

// TestReliability runs the scenarios one after another (they time
// recovery, which parallel tests would stretch), then writes the table.
func TestReliability(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes for minutes")
	}
	t.Run("kill-9", relKill)
	t.Run("kill-9-chosen", relChosenKills)
	t.Run("kill-9-mid-shard", relShardKills)
	t.Run("three-workers", relThreeWorkers)
	t.Run("redis-restart", relRedisRestart)
	t.Run("minio-stopped", relMinioStopped)
	t.Run("sentinel-failover", relSentinelFailover)
	t.Run("s3-faults", relS3Faults)
	t.Run("redis-unreachable", relRedisUnreachable)
	t.Run("redis-cluster", relCluster)
	t.Run("hostile-under-load", relHostile)
	if out := os.Getenv("WASMJOBS_RELIABILITY_OUT"); out != "" && !t.Failed() {
		writeReliability(t, out)
	}
}

// startRel seeds n objects on a fresh scenario's services, starts workers
// (concurrency 4 each) and the batch over the objects.
func startRel(t *testing.T, n, workers int) (*relEnv, *relRun, []*relWorker) {
	e := newRelEnv(t)
	e.seed(n)
	var ws []*relWorker
	for range workers {
		ws = append(ws, e.startWorker("--concurrency", "4"))
	}
	return e, e.startBatch(n), ws
}

// done finishes the run (see finish) and adds its row.
func (r *relRun) done(t *testing.T, scenario, bound string) {
	row := r.finish(5 * time.Minute)
	row.scenario, row.bound = scenario, bound
	addRelRow(t, row)
}

// relKill: kill -9 of the only worker three times at random moments of a
// 1,000-job batch, restarted at once each time.
func relKill(t *testing.T) {
	const n = 1000
	e, r, ws := startRel(t, n, 1)
	w := ws[0]
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for k := range 3 {
		r.waitDone(int64(n*(k+1)/5+rng.IntN(n/8)), 5*time.Minute)
		w.kill()
		w = e.startWorker("--concurrency", "4")
	}
	r.done(t, "kill -9 of the only worker, 3 times at random moments (restarted at once)",
		"a killed worker's jobs wait for their lease (30 s) plus asynq's allowance for clock skew (30 s), then the next run of asynq's recoverer (every minute); they then run at once (no backoff for an expired lease)")
}

// relChosenKills: kill -9 of the only worker at three chosen moments of a
// batch whose jobs have one attempt each (--max-retry 0), so every kill
// lands on final attempts: right after an output PUT succeeded, before the
// worker sees the answer (so before its ack); during the manifest write of
// the reconciler that finished the batch; and, after retry-failed, during
// the manifest write of the handler of the batch's last job. The S3 proxy
// in front of MinIO kills the worker at these requests. The batch must
// finish without a manual step, with the killed jobs' items failed and
// their reason, and retry-failed must then complete it.
func relChosenKills(t *testing.T) {
	const n = 1000
	e := newRelEnv(t)
	fault := e.startS3Fault(t)
	e.seed(n)
	k := e.newRelKiller(fault, "--concurrency", "4")
	killAt, restart := k.killAt, k.restart
	isManifest := func(r *http.Request) bool {
		return r.Method != http.MethodGet && r.Method != http.MethodHead && strings.HasSuffix(r.URL.Path, "/"+s3url.ManifestName)
	}
	r := e.startBatchID(n, "rel", "--max-retry", "0")
	r.waitDone(n/3, 5*time.Minute)
	killAt(func(r *http.Request, answered bool) bool {
		return answered && r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/wasmjobs-results/") && !s3url.IsBatchFile(r.URL.Path)
	})
	restart("after an output PUT", time.Minute)
	killAt(func(r *http.Request, answered bool) bool { return !answered && isManifest(r) })
	restart("during the reconciler's manifest write", 5*time.Minute)

	// Finished without a manual step: the killed jobs' items failed, with
	// the reason, the rest done.
	st := r.waitManifest(5 * time.Minute)
	failed := 0
	for _, it := range r.manifest(st) {
		if it.Status == batch.ItemFailed {
			failed++
			if !strings.Contains(it.Error, "archived without its outcome recorded") {
				t.Errorf("failed item %s: reason %q, want the reconciler's", it.Key, it.Error)
			}
		}
	}
	if failed == 0 || st.Failed != int64(failed) || st.Done != int64(n-failed) {
		t.Fatalf("after the kills: %+v with %d failed manifest lines; want the killed jobs failed and the rest done", st, failed)
	}
	killAt(func(r *http.Request, answered bool) bool { return !answered && isManifest(r) })
	e.cli("batch", "retry-failed", r.id)
	restart("during the last job's manifest write", 2*time.Minute)
	r.done(t, fmt.Sprintf("kill -9 of the only worker at chosen moments, jobs with one attempt each: after an output PUT before its ack, "+
		"during the reconciler's manifest write, and during the last job's manifest write after retry-failed (%d items failed by the kills, then retried)", failed),
		"a job killed on its final attempt is archived by asynq's recoverer once its lease expires (as after any kill); the workers' reconciler, every 15 s, "+
			"then fails its item with the reason and finishes the batch; a manifest whose writer died is written by the reconciler 30 s after the batch finished")
}

// relKiller is the only worker of a scenario, killed at a request the S3
// proxy in front of MinIO chooses and then replaced.
type relKiller struct {
	e      *relEnv
	fault  *s3Fault
	args   []string
	w      *relWorker
	killed chan struct{}
}

// newRelKiller starts the worker (with args) that killAt kills.
func (e *relEnv) newRelKiller(fault *s3Fault, args ...string) *relKiller {
	e.t.Helper()
	return &relKiller{e: e, fault: fault, args: args, w: e.startWorker(args...), killed: make(chan struct{}, 1)}
}

// killAt arms the trap: the first request match takes kills the worker
// and gets no answer; restart waits for that and starts a new worker.
func (k *relKiller) killAt(match func(r *http.Request, answered bool) bool) {
	victim := k.w
	var once sync.Once
	trap := func(r *http.Request, answered bool) bool {
		hit := false
		if match(r, answered) {
			once.Do(func() {
				victim.kill()
				hit = true
				k.killed <- struct{}{}
			})
		}
		return hit
	}
	k.fault.trap.Store(&trap)
}

// restart waits up to limit for the trap to kill the worker, disarms it
// and starts the worker's replacement.
func (k *relKiller) restart(what string, limit time.Duration) {
	k.e.t.Helper()
	select {
	case <-k.killed:
	case <-time.After(limit):
		k.e.t.Fatalf("the worker was not killed %s within %s", what, limit)
	}
	k.fault.trap.Store(nil)
	k.w = k.e.startWorker(k.args...)
}

// killNow kills the worker at once and starts its replacement.
func (k *relKiller) killNow() {
	k.w.kill()
	k.w = k.e.startWorker(k.args...)
}

// relThreeWorkers: three workers share 3,000 jobs; one gets SIGTERM mid-run
// and drains (its jobs finish or go back); another gets two SIGTERMs and
// exits at once.
func relThreeWorkers(t *testing.T) {
	const n = 3000
	e, r, ws := startRel(t, n, 3)
	r.waitDone(n/3, 5*time.Minute)
	drained := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		_ = ws[0].cmd.Process.Signal(syscall.SIGTERM)
		_ = ws[0].cmd.Wait()
		drained <- time.Since(start)
	}()
	r.waitDone(n/2, 5*time.Minute)
	start := time.Now()
	_ = ws[1].cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(50 * time.Millisecond)
	_ = ws[1].cmd.Process.Signal(syscall.SIGTERM)
	_ = ws[1].cmd.Wait()
	forced := time.Since(start)
	if forced > 5*time.Second {
		t.Errorf("a worker signalled twice took %s to exit, want at once", forced)
	}
	if d := <-drained; d > 35*time.Second {
		t.Errorf("a worker draining took %s, more than its 30 s shutdown timeout", d)
	}
	r.waitDone(n, 5*time.Minute)
	per, _ := e.jobsDone()
	for i, k := range per {
		if k == 0 {
			t.Errorf("worker %d did no job: %v", i+1, per)
		}
	}
	r.done(t, fmt.Sprintf("3 workers (jobs done each: %v); one drained by SIGTERM mid-run, one stopped by a second SIGTERM", per),
		"the drained worker's jobs finish before it exits; the force-stopped one's wait out their lease as after a kill")
}

// relRedisRestart: Redis (AOF on) restarted mid-batch, then away for 10 s.
func relRedisRestart(t *testing.T) {
	const n = 1000
	e, r, _ := startRel(t, n, 1)
	r.waitDone(n/4, 5*time.Minute)
	e.redis.stop()
	e.redis.start(t)
	r.waitDone(n/2, 5*time.Minute)
	e.redis.stop()
	time.Sleep(10 * time.Second)
	e.redis.start(t)
	r.done(t, "Redis (AOF, fsync every second) restarted mid-batch, then down for 10 s; the worker stays up",
		"the outage itself: the worker holds a Redis call that could not be sent for up to 30 s, so the outcomes of jobs that ended meanwhile are written as soon as Redis answers "+
			"(without the hold, asynq's queued retry of such a write runs with a canceled context and never lands, and the job waits one to two minutes for its lease to be recovered)")
}

// relMinioStopped: MinIO stopped for 10 s mid-batch.
func relMinioStopped(t *testing.T) {
	const n = 1000
	e, r, _ := startRel(t, n, 1)
	r.waitDone(n/3, 5*time.Minute)
	e.minio.stop()
	time.Sleep(10 * time.Second)
	e.minio.start(t)
	r.done(t, "MinIO stopped for 10 s mid-batch",
		"jobs that failed to read or write meanwhile retry after 1 s, doubling (not asynq's first 15 to 45 s), so the batch goes on seconds after MinIO is back")
}

// relSentinelFailover: the primary, behind a Sentinel, killed mid-batch;
// the Sentinel promotes its replica and everything reconnects through it.
// Two producers go through the same Sentinel: the wasmjobs command starts
// one batch, and a Node producer another over the same objects, then
// enqueues inline jobs one by one across the failover and waits for each.
func relSentinelFailover(t *testing.T) {
	const n, inline = 1000, 500
	e := newRelEnv(t, true)
	e.seed(n)
	e.startWorker("--concurrency", "4")
	r := e.startBatch(n)
	node := e.startNodeProducer(t, "relnode", inline)
	r.waitDone(n/3, 5*time.Minute)
	node.waitEnqueued(t, inline/5)
	_ = e.redis.cmd.Process.Kill()
	_ = e.redis.cmd.Wait()
	e.redis.cmd = nil
	sc := redis.NewSentinelClient(&redis.Options{Addr: e.sentinel.addr})
	defer sc.Close()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		addr, err := sc.GetMasterAddrByName(context.Background(), sentinelMaster).Result()
		if err == nil && len(addr) == 2 && net.JoinHostPort(addr[0], addr[1]) == e.replica.addr {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Sentinel did not promote the replica within a minute: %v %v", addr, err)
		}
	}
	row, sum := r.finishWithNode(node, "relnode", inline)
	// The primary's last writes before the kill may not have reached the
	// replica: at most the jobs in flight then (the worker's concurrency)
	// can have their completion lost with it and run again.
	row.allowTwice = 4
	row.scenario = fmt.Sprintf("Redis primary behind a Sentinel killed (kill -9) mid-batch; the Sentinel promotes its replica. Producers: a batch from the wasmjobs command, "+
		"a batch and %d inline jobs one by one from Node (redis-sentinel:// URL; %d enqueues and %d waits tried again, %d jobs enqueued again after the failover lost them)",
		inline, sum.EnqueueRetries, sum.WaitRetries, sum.EnqueuedAgain)
	row.bound = "the Sentinel's failover (down after 1 s here, then the promotion); writes the replica had not received yet are lost with the primary: " +
		"their jobs run again once their leases expire, and a producer enqueues again a job its wait no longer finds"
	addRelRow(t, row)
}

// finishWithNode finishes the run's batch, the Node producer's batch
// (nodeBatch, over the same objects) and its inline jobs, and returns one
// row counting all three, with the producer's summary.
func (r *relRun) finishWithNode(node *nodeProducer, nodeBatch string, inline int) (relRow, nodeSummary) {
	row := r.finish(5 * time.Minute)
	nrow := (&relRun{e: r.e, id: nodeBatch, n: r.n, start: r.start}).finish(5 * time.Minute)
	sum := node.finish(r.e.t)
	row.in += nrow.in + inline
	row.ok += nrow.ok + sum.Done
	row.lost += nrow.lost + inline - sum.Done
	row.took = max(row.took, nrow.took) // the stall is the first batch's, sampled throughout
	return row, sum
}

// nodeProducer is jobs/node/test/failover-producer.mjs running against the
// scenario's Redis: it starts a batch over the dataset, then enqueues inline
// jobs and waits for their results.
type nodeProducer struct {
	cmd      *exec.Cmd
	enqueued atomic.Int64
	out      chan string // the summary line, once it exits
	err      chan error
	log      string // its stderr, a file as the workers' logs are
}

// nodeSummary is the producer's last line.
type nodeSummary struct {
	Jobs           int `json:"jobs"`
	Done           int `json:"done"`
	Wrong          int `json:"wrong"`
	EnqueueRetries int `json:"enqueueRetries"`
	WaitRetries    int `json:"waitRetries"`
	EnqueuedAgain  int `json:"enqueuedAgain"`
}

func (e *relEnv) startNodeProducer(t *testing.T, batchID string, jobs int, env ...string) *nodeProducer {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv(testenv.EnvRequire) == "1" {
			t.Fatal("node not found")
		}
		t.Skip("no node")
	}
	p := &nodeProducer{out: make(chan string, 1), err: make(chan error, 1), log: filepath.Join(e.dir, "node-producer-"+batchID+".log")}
	p.cmd = exec.Command("node", filepath.Join(testenv.RepoRoot(t), "jobs", "node", "test", "failover-producer.mjs"))
	p.cmd.Env = append(e.cliEnv(), "BATCH_ID="+batchID, "BATCH_INPUT=s3://"+e.bucket+"/ds/", fmt.Sprintf("JOBS=%d", jobs), "PACE_MS=10", "TASK_PREFIX="+batchID+"-")
	p.cmd.Env = append(p.cmd.Env, env...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	p.cmd.Stderr = logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	go func() {
		sc := bufio.NewScanner(stdout)
		last := ""
		for sc.Scan() {
			var k int64
			if _, err := fmt.Sscanf(sc.Text(), "enqueued %d", &k); err == nil {
				p.enqueued.Store(k)
			}
			last = sc.Text()
		}
		p.out <- last
		p.err <- p.cmd.Wait()
	}()
	return p
}

// waitEnqueued waits until the producer has enqueued at least k jobs.
func (p *nodeProducer) waitEnqueued(t *testing.T, k int64) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); p.enqueued.Load() < k; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the Node producer enqueued %d jobs in a minute, want %d:\n%s", p.enqueued.Load(), k, p.stderr())
		}
	}
}

func (p *nodeProducer) stderr() string {
	b, _ := os.ReadFile(p.log)
	return tail(string(b), 4000)
}

// finish waits for the producer to exit and checks its summary: every job
// done, each with the right result.
func (p *nodeProducer) finish(t *testing.T) nodeSummary {
	t.Helper()
	var last string
	select {
	case last = <-p.out:
	case <-time.After(5 * time.Minute):
		t.Fatalf("the Node producer did not finish within 5 minutes:\n%s", p.stderr())
	}
	if err := <-p.err; err != nil {
		t.Fatalf("the Node producer: %v (last line %q):\n%s", err, last, p.stderr())
	}
	var sum nodeSummary
	if err := json.Unmarshal([]byte(last), &sum); err != nil {
		t.Fatalf("the Node producer's summary %q: %v", last, err)
	}
	if sum.Done != sum.Jobs || sum.Wrong != 0 {
		t.Errorf("the Node producer: %+v, want every job done with the right result", sum)
	}
	return sum
}

// s3Fault is a proxy in front of MinIO that passes requests on, answers
// them 503 SlowDown (as S3 does when it throttles), or passes them on late.
// A trap, when set, sees each request before it is passed on (answered
// false) and again once MinIO answered it, before the answer is passed back
// (answered true); when it returns true the request gets a 502 instead.
type s3Fault struct {
	mode atomic.Int32
	trap atomic.Pointer[func(r *http.Request, answered bool) bool]
}

// sprung reports whether the trap, if any, takes the request.
func (f *s3Fault) sprung(r *http.Request, answered bool) bool {
	trap := f.trap.Load()
	return trap != nil && (*trap)(r, answered)
}

const (
	faultNone int32 = iota
	fault503
	faultSlow
)

// startS3Fault puts a fault proxy between the commands and MinIO.
func (e *relEnv) startS3Fault(t *testing.T) *s3Fault {
	t.Helper()
	f := &s3Fault{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The proxy keeps the request's Host, which the client signed.
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: e.s3.Endpoint})
	proxy.ModifyResponse = func(resp *http.Response) error {
		if f.sprung(resp.Request, true) {
			return errors.New("trapped after the answer")
		}
		return nil
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.sprung(r, false) {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		switch f.mode.Load() {
		case fault503:
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
			return
		case faultSlow:
			time.Sleep(300 * time.Millisecond)
		}
		proxy.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	e.cliS3 = ln.Addr().String()
	return f
}

// relS3Faults: S3 answering 503 SlowDown to everything for 10 s, then
// taking 300 ms per request for 10 s.
func relS3Faults(t *testing.T) {
	const n = 1000
	e := newRelEnv(t)
	fault := e.startS3Fault(t)
	e.seed(n)
	e.startWorker("--concurrency", "4")
	r := e.startBatch(n)
	r.waitDone(n/3, 5*time.Minute)
	fault.mode.Store(fault503)
	time.Sleep(10 * time.Second)
	fault.mode.Store(faultNone)
	r.waitDone(2*n/3, 5*time.Minute)
	fault.mode.Store(faultSlow)
	time.Sleep(10 * time.Second)
	fault.mode.Store(faultNone)
	r.done(t, "S3 answering 503 SlowDown to every request for 10 s, later taking 300 ms per request for 10 s",
		"minio-go retries a 503 itself a few times, then the job retries after 1 s, doubling; slow answers only slow the jobs")
}

// tcpFault is a TCP proxy in front of a server that can stop passing bytes:
// in blackhole mode, connections stay open but nothing goes through either
// way, as when a network path drops packets (clients see timeouts, not a
// refused connection).
type tcpFault struct {
	target string
	addr   string
	holed  atomic.Bool
}

// startTCPFault puts a proxy in front of target and returns it.
func startTCPFault(t *testing.T, target string) *tcpFault {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &tcpFault{target: target, addr: ln.Addr().String()}
	var conns sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		ln.Close()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer c.Close()
				up, err := net.DialTimeout("tcp", target, 5*time.Second)
				if err != nil {
					return
				}
				defer up.Close()
				stop := make(chan struct{})
				go func() { f.pipe(up, c, done); close(stop) }()
				f.pipe(c, up, done)
				<-stop
			}()
		}
	}()
	return f
}

// pipe copies src to dst, holding bytes back while the fault is on.
func (f *tcpFault) pipe(dst, src net.Conn, done <-chan struct{}) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for n > 0 && f.holed.Load() {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// relCluster: a batch on the 3-master Redis Cluster of `make test`, a
// worker killed and restarted mid-run, with a Node producer on the same
// cluster starting a batch of its own and enqueueing inline jobs across
// the kill. The cluster is shared, so everything runs on a queue and ids
// of its own.
func relCluster(t *testing.T) {
	const n, inline = 1000, 500
	cluster := testenv.RedisCluster(t)
	e := newRelEnv(t)
	e.redisURL = "redis-cluster://" + strings.Join(cluster.Addrs, ",")
	bc, err := batch.NewClient(cluster)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bc.Close() })
	e.batches = bc
	queue := "rel-" + testenv.RandomHex(6)
	e.seed(n)
	w := e.startWorker("--concurrency", "4", "--queues", queue+"=1")
	r := e.startBatchID(n, queue, "--queue", queue)
	node := e.startNodeProducer(t, queue+"-node", inline, "QUEUE="+queue)
	r.waitDone(n/2, 5*time.Minute)
	node.waitEnqueued(t, inline/5)
	w.kill()
	e.startWorker("--concurrency", "4", "--queues", queue+"=1")
	row, sum := r.finishWithNode(node, queue+"-node", inline)
	row.scenario = fmt.Sprintf("a 3-master Redis Cluster (real redis-server in cluster mode), its worker killed (kill -9) and restarted mid-run. Producers: a batch from the wasmjobs command, "+
		"a batch and %d inline jobs one by one from Node (redis-cluster:// URL; %d enqueues and %d waits tried again)", inline, sum.EnqueueRetries, sum.WaitRetries)
	row.bound = "as after any kill: the killed worker's jobs wait for their lease and asynq's recoverer"
	addRelRow(t, row)
}

// relRedisUnreachable: the network path to Redis drops everything for 10 s
// (connections stay open, nothing gets through), as opposed to Redis
// refusing connections.
func relRedisUnreachable(t *testing.T) {
	const n = 1000
	e := newRelEnv(t)
	hole := startTCPFault(t, e.redis.addr)
	e.redisURL = "redis://" + hole.addr + "/0" // the commands; the checks read Redis directly
	e.seed(n)
	e.startWorker("--concurrency", "4")
	r := e.startBatch(n)
	r.waitDone(n/3, 5*time.Minute)
	hole.holed.Store(true)
	time.Sleep(10 * time.Second)
	hole.holed.Store(false)
	r.done(t, "Redis unreachable for 10 s mid-batch (connections stay open, nothing gets through: timeouts, not refusals)",
		"the worker's Redis calls time out and reconnect once the path is back; a job whose outcome write timed out after it was sent waits for asynq's lease recovery, as after a kill (none did here)")
}

// relHostile: the hostile-guest suite of the containment tests submitted to
// the only worker in the middle of a batch. Each hostile job must end
// archived, unretried, with its reason; the batch must lose nothing; the
// worker must stay up, its peak RSS under 1 GiB.
func relHostile(t *testing.T) {
	const n = 2000
	nnArgs := modelsArgs(t)
	guests := hostileGuests(t, nnArgs != nil)
	e := newRelEnv(t)
	ctx := testenv.Context(t, 8*time.Minute)
	pushHostile(t, ctx, e.store, "guests", guests)
	e.seed(n)
	// The hostile jobs go to a queue of their own, served as often as the
	// batch's, so that they run beside its jobs rather than after them.
	w := e.startWorker(append([]string{"--concurrency", "4", "--guest-timeout", "60s", "--queues", "default=1,hostile=1"}, nnArgs...)...)
	r := e.startBatch(n)
	r.waitDone(n/10, 5*time.Minute)
	from := r.last()
	r.sampleWhile(func() { checkHostile(t, ctx, e.redisOpt, "hostile", guests) })
	during := r.last()
	r.waitDone(n, 5*time.Minute)
	if w.cmd.ProcessState != nil {
		t.Fatalf("the worker exited: %v", w.cmd.ProcessState)
	}
	peak := procStatus(t, w.cmd.Process.Pid, "VmHWM")
	if peak >= 1<<30 {
		t.Errorf("worker peak RSS %d MiB, want under 1 GiB", peak>>20)
	}
	if during >= n {
		t.Errorf("the batch had finished before the last hostile job ended: they did not run side by side")
	}
	r.done(t, fmt.Sprintf("the %d hostile guests of the containment suite (malformed modules, memory and table bombs, endless loops and recursion, forbidden imports, hostile inference calls) "+
		"sent to the only worker mid-batch, on a queue served as often as the batch's: each archived on its first attempt with its reason "+
		"(the batch's jobs went from %d to %d done meanwhile), the worker up throughout (peak RSS %d MiB)", len(guests), from, during, peak>>20),
		"a hostile job fails on its first attempt, with no retry, within its own limits; the batch's jobs only share the worker's slots with it meanwhile")
}

func writeReliability(t *testing.T, path string) {
	var b strings.Builder
	fmt.Fprintf(&b, "# Reliability\n\nWritten by `make reliability` on %s: real `wasmjobs worker` and `wasmjobs batch run` processes\n", time.Now().UTC().Format("2006-01-02"))
	b.WriteString("on their own Redis (AOF on) and MinIO on loopback, small text objects through the wordcount guest.\n")
	b.WriteString("*Lost* counts objects without a done manifest line or without an output; *done twice* counts jobs\n")
	b.WriteString("that some worker reported done more than once (from the workers' own logs, the killed ones' included),\n")
	b.WriteString("each of which may have written its output again (an attempt that finds its own task's output in S3, by the\n")
	b.WriteString("task id in the object's metadata, skips the guest instead, as after the kill between an output PUT and its ack).\n")
	b.WriteString("*Longest stall* is the longest time no job ended. The record batch's row counts records instead: *lost* is a record\n")
	b.WriteString("without its line (index, key, the guest's result or the record's error) in merged.jsonl or in its shard's output,\n")
	b.WriteString("*done twice* a record with two lines in either, or in a shard some worker reported done twice.\n\n")
	b.WriteString("| scenario | jobs in | done | lost | done twice | took | longest stall | what bounds the recovery |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range relTable.rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %.1f s | %.1f s | %s |\n", r.scenario, r.in, r.ok, r.lost, r.twice, r.took.Seconds(), r.stall.Seconds(), r.bound)
	}
	b.WriteString("\nThe Sentinel scenario runs a primary, its replica and one Sentinel (quorum 1), all real `redis-server`s;\n")
	b.WriteString("the commands and the Node producer (`jobs/node/test/failover-producer.mjs`) connect with a `redis-sentinel://` URL.\n")
	b.WriteString("The chosen-moment kills are made by the S3 proxy in front of MinIO, which kills the worker at the request named.\n")
	b.WriteString("The cluster scenario runs on the 3-master cluster `make test` starts. Besides it, the cluster runs batches, retries and cancels from Go\n")
	b.WriteString("(`internal/batch`'s TestBatchOnRedisCluster) and the CLI (`cmd/wasmjobs`'s TestCLIOnRedisCluster), and takes\n")
	b.WriteString("jobs and batches from the Node client, a job from Node run by the Go worker (`jobs/node/test/cluster.test.mjs`).\n")
	b.WriteString("Batch jobs that asynq archives without an outcome (a worker killed on a job's final attempt) are\n")
	b.WriteString("finished by the workers' reconciler within 15 s (TestReconcileStrandedItems, and the chosen-moment row above);\n")
	b.WriteString("items whose jobs were deleted from asynq by hand are failed once their batch has made no progress for 5 minutes\n")
	b.WriteString("(TestReconcileDeletedJobs); a manifest whose writer died is written 30 s after its batch finished.\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
