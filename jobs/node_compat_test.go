package jobs_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wasmjobs/wasmjobs/internal/testenv"
	"github.com/wasmjobs/wasmjobs/jobs"
)

// nodeCommand returns the node binary for tests that drive the Node client
// in jobs/node. Without node (or its installed dependencies) the test is
// skipped, unless WASMJOBS_TEST_REQUIRE=1, where it fails.
func nodeCommand(tb testing.TB) string {
	tb.Helper()
	skip := func(format string, args ...any) {
		tb.Helper()
		if os.Getenv(testenv.EnvRequire) == "1" {
			tb.Fatalf(format, args...)
		}
		tb.Skipf(format, args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node not found: the Node client tests need Node.js 20+")
	}
	if _, err := os.Stat(filepath.Join("node", "node_modules", "ioredis")); err != nil {
		skip("jobs/node/node_modules is missing: run `make node-deps` (npm ci in jobs/node)")
	}
	return node
}

// redisURL is the URL of the test Redis database opt names, for node.
func redisURL(tb testing.TB, opt asynq.RedisClientOpt) string {
	tb.Helper()
	base := strings.TrimRight(os.Getenv(testenv.EnvRedis), "/")
	if i := strings.LastIndex(base, "/"); i > len("redis://") {
		base = base[:i] // drop a database number
	}
	return fmt.Sprintf("%s/%d", base, opt.DB)
}

// compatJob is a job as compat-enqueue.mjs takes it: data in base64.
type compatJob struct {
	Guest   string            `json:"guest"`
	Input   string            `json:"input,omitempty"`
	DataB64 *string           `json:"data_b64,omitempty"`
	Output  string            `json:"output,omitempty"`
	Params  map[string]string `json:"params,omitempty"`
	Batch   string            `json:"batch,omitempty"`
}

func (j compatJob) payload(tb testing.TB) jobs.Payload {
	p := jobs.Payload{Guest: j.Guest, Input: j.Input, Output: j.Output, Params: j.Params, Batch: j.Batch}
	if j.DataB64 != nil {
		b, err := base64.StdEncoding.DecodeString(*j.DataB64)
		if err != nil {
			tb.Fatal(err)
		}
		p.Data = append([]byte{}, b...) // non-nil even when empty
	}
	return p
}

// compatOptions are the Node client's options; durations and instants in
// milliseconds.
type compatOptions struct {
	Queue     string `json:"queue,omitempty"`
	MaxRetry  *int   `json:"maxRetry,omitempty"`
	Timeout   *int64 `json:"timeout,omitempty"`
	Deadline  *int64 `json:"deadline,omitempty"`
	Unique    *int64 `json:"unique,omitempty"`
	ProcessAt *int64 `json:"processAt,omitempty"`
	ProcessIn *int64 `json:"processIn,omitempty"`
	Retention *int64 `json:"retention,omitempty"`
	TaskID    string `json:"taskId,omitempty"`
	Group     string `json:"group,omitempty"`
}

func (o compatOptions) goOptions() []jobs.Option {
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	var opts []jobs.Option
	if o.Queue != "" {
		opts = append(opts, jobs.Queue(o.Queue))
	}
	if o.MaxRetry != nil {
		opts = append(opts, jobs.MaxRetry(*o.MaxRetry))
	}
	if o.Timeout != nil {
		opts = append(opts, jobs.Timeout(ms(*o.Timeout)))
	}
	if o.Deadline != nil {
		opts = append(opts, jobs.Deadline(time.UnixMilli(*o.Deadline)))
	}
	if o.Unique != nil {
		opts = append(opts, jobs.Unique(ms(*o.Unique)))
	}
	if o.ProcessAt != nil {
		opts = append(opts, jobs.ProcessAt(time.UnixMilli(*o.ProcessAt)))
	}
	if o.ProcessIn != nil {
		opts = append(opts, jobs.ProcessIn(ms(*o.ProcessIn)))
	}
	if o.Retention != nil {
		opts = append(opts, jobs.Retention(ms(*o.Retention)))
	}
	if o.TaskID != "" {
		opts = append(opts, jobs.TaskID(o.TaskID))
	}
	if o.Group != "" {
		opts = append(opts, asynq.Group(o.Group)) // refused by both clients
	}
	return opts
}

type compatCase struct {
	Name    string        `json:"-"`
	Type    string        `json:"type"`
	Job     compatJob     `json:"job"`
	Options compatOptions `json:"options"`
}

type compatOutput struct {
	Results []struct {
		ID    string `json:"id"`
		Queue string `json:"queue"`
		State string `json:"state"`
		Error string `json:"error"`
		Name  string `json:"name"`
	} `json:"results"`
	Scripts map[string]string `json:"scripts"`
}

// runCompatEnqueue runs jobs/node/test/compat-enqueue.mjs on the database opt.
func runCompatEnqueue(tb testing.TB, node string, opt asynq.RedisClientOpt, cases []compatCase) compatOutput {
	tb.Helper()
	spec, err := json.Marshal(cases)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("node", "test", "compat-enqueue.mjs"), redisURL(tb, opt), string(spec))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		tb.Fatalf("compat-enqueue.mjs: %v\n%s", err, stderr.Bytes())
	}
	var out compatOutput
	if err := json.Unmarshal(stdout, &out); err != nil {
		tb.Fatalf("compat-enqueue.mjs output %q: %v", stdout, err)
	}
	if len(out.Results) != len(cases) {
		tb.Fatalf("compat-enqueue.mjs: %d results for %d jobs", len(out.Results), len(cases))
	}
	return out
}

// TestNodeClientWritesWhatAsynqWrites enqueues the same jobs, with the same
// ids and options, from the Go client into one Redis database and from the
// Node client into another, and compares everything asynq stores for them.
func TestNodeClientWritesWhatAsynqWrites(t *testing.T) {
	node := nodeCommand(t)
	viaGo, viaNode := testenv.Redis(t), testenv.Redis(t)
	goClient := newClient(t, viaGo)
	ctx := testenv.Context(t, 2*time.Minute)

	ptr := func(v int64) *int64 { return &v }
	intp := func(v int) *int { return &v }
	str := func(s string) *string { return &s }
	hourAhead := time.Now().Add(time.Hour).Truncate(time.Second).UnixMilli() + 250
	deadline := time.Unix(1900000000, 0).UnixMilli() + 999 // Go floors to the second; so must Node
	cases := []compatCase{
		{Name: "plain defaults", Type: jobs.TypeText, Job: compatJob{Guest: "wordcount", Input: "s3://data/a.txt"}},
		{Name: "every plain option", Type: jobs.TypeImage,
			Job: compatJob{Guest: "sha256:" + strings.Repeat("0f", 32), Input: "s3://scans/dir/café 日本.png", Output: "s3://out/r<1>&2.json",
				Params: map[string]string{"z": "last", "a": "<b>&\"q\"\\ \b\f\x01\x7f é \u2028\u2029 😀", "lang": "en"}, Batch: "run-42"},
			Options: compatOptions{Queue: "q1", MaxRetry: intp(3), Timeout: ptr(90_000), Deadline: ptr(deadline), Retention: ptr(3_600_000)}},
		{Name: "deadline only", Type: jobs.TypeText, Job: compatJob{Guest: "wordcount", Input: "s3://data/b.txt"}, Options: compatOptions{Deadline: ptr(deadline)}},
		{Name: "inline, default retention", Type: jobs.TypeText, Job: compatJob{Guest: "hello", DataB64: str("QWRh")}},
		{Name: "empty inline data", Type: jobs.TypeText, Job: compatJob{Guest: "hello", DataB64: str("")}, Options: compatOptions{Queue: "q2"}},
		{Name: "inline with output, zero retry", Type: jobs.TypeText, Job: compatJob{Guest: "hello", DataB64: str("AAEC/w=="), Output: "s3://out/x.json"},
			Options: compatOptions{MaxRetry: intp(0)}},
		{Name: "negative retry, sub-second durations", Type: jobs.TypeText, Job: compatJob{Guest: "wordcount", Input: "s3://data/c.txt"},
			Options: compatOptions{MaxRetry: intp(-5), Timeout: ptr(1_500), Retention: ptr(2_999)}},
		{Name: "sub-second timeout", Type: jobs.TypeText, Job: compatJob{Guest: "wordcount", Input: "s3://data/d.txt"}, Options: compatOptions{Timeout: ptr(500)}},
		{Name: "unique", Type: jobs.TypeText, Job: compatJob{Guest: "wordcount", Input: "s3://data/unique.txt"}, Options: compatOptions{Unique: ptr(60_000)}},
		{Name: "unique in a queue, inline", Type: jobs.TypeText, Job: compatJob{Guest: "hello", DataB64: str("dW5pcXVl")},
			Options: compatOptions{Queue: "q1", Unique: ptr(90_500), Timeout: ptr(10_000)}},
		{Name: "scheduled", Type: jobs.TypeImage, Job: compatJob{Guest: "ocr", Input: "s3://scans/1.png"}, Options: compatOptions{ProcessAt: ptr(hourAhead)}},
		{Name: "scheduled in", Type: jobs.TypeImage, Job: compatJob{Guest: "ocr", Input: "s3://scans/2.png"}, Options: compatOptions{ProcessIn: ptr(7_200_000)}},
		{Name: "scheduled unique", Type: jobs.TypeText, Job: compatJob{Guest: "wordcount", Input: "s3://data/sched-unique.txt"},
			Options: compatOptions{ProcessAt: ptr(hourAhead), Unique: ptr(600_000)}},
		{Name: "past process-at enqueues now", Type: jobs.TypeText, Job: compatJob{Guest: "wordcount", Input: "s3://data/past.txt"},
			Options: compatOptions{ProcessAt: ptr(time.Now().Add(-time.Hour).UnixMilli())}},
	}
	for i := range cases {
		cases[i].Options.TaskID = fmt.Sprintf("compat-%02d", i)
	}
	wantState := map[string]asynq.TaskState{}
	for _, c := range cases {
		info, err := goClient.Enqueue(ctx, c.Type, c.Job.payload(t), c.Options.goOptions()...)
		if err != nil {
			t.Fatalf("%s: Go enqueue: %v", c.Name, err)
		}
		wantState[c.Name] = info.State
	}
	// Both clients refuse groups: no worker aggregates them, so a grouped
	// job would stay "aggregating" forever.
	grouped := compatCase{Name: "grouped", Type: jobs.TypeText, Job: compatJob{Guest: "wordcount", Input: "s3://data/g1.txt"},
		Options: compatOptions{Group: "g1", TaskID: "compat-grouped"}}
	if _, err := goClient.Enqueue(ctx, grouped.Type, grouped.Job.payload(t), grouped.Options.goOptions()...); !errors.Is(err, jobs.ErrGroupUnsupported) {
		t.Errorf("Go enqueue with a group: %v, want ErrGroupUnsupported", err)
	}
	// The Node client must also refuse what asynq refuses, with its own errors.
	again := []compatCase{cases[0], cases[8], grouped}
	again[1].Options.TaskID = "compat-other-id"
	out := runCompatEnqueue(t, node, viaNode, append(cases, again...))
	if r := out.Results[len(cases)+2]; r.Name != "InvalidOptionError" || !strings.Contains(r.Error, "group option is not supported") {
		t.Errorf("Node enqueue with a group: %+v, want InvalidOptionError", r)
	}
	if r := out.Results[len(cases)]; r.Name != "TaskIdConflictError" {
		t.Errorf("second enqueue with the same task id: %+v, want TaskIdConflictError", r)
	}
	if r := out.Results[len(cases)+1]; r.Name != "DuplicateTaskError" {
		t.Errorf("second enqueue of a unique job: %+v, want DuplicateTaskError", r)
	}
	checkScriptDigests(t, out.Scripts)

	rg, rn := rawRedis(t, viaGo), rawRedis(t, viaNode)
	inG, inN := newInspector(t, viaGo), newInspector(t, viaNode)
	now := time.Now()
	for i, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := out.Results[i]
			if r.Error != "" {
				t.Fatalf("Node enqueue: %s: %s", r.Name, r.Error)
			}
			queue := cmpOr(c.Options.Queue, "default")
			if r.ID != c.Options.TaskID || r.Queue != queue || r.State != wantState[c.Name].String() {
				t.Errorf("Node returned %s/%s %s, want %s/%s %s", r.Queue, r.ID, r.State, queue, c.Options.TaskID, wantState[c.Name])
			}
			key := "asynq:{" + queue + "}:t:" + r.ID
			hg, hn := rg.HGetAll(ctx, key).Val(), rn.HGetAll(ctx, key).Val()
			mg, errG := decodeTaskMessage([]byte(hg["msg"]))
			mn, errN := decodeTaskMessage([]byte(hn["msg"]))
			if errG != nil || errN != nil {
				t.Fatalf("decode: Go %v, Node %v", errG, errN)
			}
			if !reflect.DeepEqual(mg, mn) {
				t.Errorf("TaskMessages differ:\nGo   %+v\nNode %+v", mg, mn)
			}
			if hg["msg"] != hn["msg"] {
				t.Errorf("encoded TaskMessages differ:\nGo   %x\nNode %x", hg["msg"], hn["msg"])
			}
			if mg.ID != r.ID || mg.Queue != queue || mg.Type != c.Type {
				t.Errorf("message names %s/%s type %s", mg.Queue, mg.ID, mg.Type)
			}
			if !sameKeys(hg, hn) {
				t.Errorf("hash fields differ: Go %v, Node %v", keysOf(hg), keysOf(hn))
			}
			for _, f := range []string{"state", "unique_key", "group"} {
				if hg[f] != hn[f] {
					t.Errorf("hash field %s: Go %q, Node %q", f, hg[f], hn[f])
				}
			}
			if _, ok := hg["pending_since"]; ok {
				for who, h := range map[string]map[string]string{"Go": hg, "Node": hn} {
					ns, err := strconv.ParseInt(h["pending_since"], 10, 64)
					if err != nil || math.Abs(float64(now.UnixNano()-ns)) > float64(time.Minute) {
						t.Errorf("%s pending_since %q is not a unix time in ns near now", who, h["pending_since"])
					}
				}
				checkMember(t, "pending list", rg.LRange(ctx, "asynq:{"+queue+"}:pending", 0, -1).Val(), rn.LRange(ctx, "asynq:{"+queue+"}:pending", 0, -1).Val(), r.ID)
			}
			if uk := hg["unique_key"]; uk != "" {
				if vg, vn := rg.Get(ctx, uk).Val(), rn.Get(ctx, uk).Val(); vg != r.ID || vn != r.ID {
					t.Errorf("unique lock %s holds Go %q, Node %q; want %q", uk, vg, vn, r.ID)
				}
				tg, tn := rg.TTL(ctx, uk).Val(), rn.TTL(ctx, uk).Val()
				if tg <= 0 || (tg-tn).Abs() > 2*time.Second {
					t.Errorf("unique lock TTL: Go %v, Node %v", tg, tn)
				}
			}
			if hg["state"] == "scheduled" {
				sk := "asynq:{" + queue + "}:scheduled"
				sg, sn := rg.ZScore(ctx, sk, r.ID).Val(), rn.ZScore(ctx, sk, r.ID).Val()
				tolerance := 0.0
				if c.Options.ProcessIn != nil {
					tolerance = 2 // computed from each client's clock
				}
				if sg == 0 || math.Abs(sg-sn) > tolerance {
					t.Errorf("scheduled score: Go %v, Node %v", sg, sn)
				}
			}
			if g := hg["group"]; g != "" {
				gk := "asynq:{" + queue + "}:g:" + g
				sg, sn := rg.ZScore(ctx, gk, r.ID).Val(), rn.ZScore(ctx, gk, r.ID).Val()
				if sg == 0 || math.Abs(sg-sn) > 2 {
					t.Errorf("group %s score: Go %v, Node %v", gk, sg, sn)
				}
				if !rn.SIsMember(ctx, "asynq:{"+queue+"}:groups", g).Val() {
					t.Errorf("group %s not in asynq:{%s}:groups", g, queue)
				}
			}
			if !rn.SIsMember(ctx, "asynq:queues", queue).Val() {
				t.Errorf("queue %s not in asynq:queues", queue)
			}
			// asynq's Inspector reads both alike.
			ig, err := inG.GetTaskInfo(queue, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			in, err := inN.GetTaskInfo(queue, r.ID)
			if err != nil {
				t.Fatalf("Inspector on the Node-enqueued task: %v", err)
			}
			if in.Queue != ig.Queue || in.Type != ig.Type || in.MaxRetry != ig.MaxRetry || in.Timeout != ig.Timeout ||
				!in.Deadline.Equal(ig.Deadline) || in.Retention != ig.Retention || in.State != ig.State || in.Group != ig.Group ||
				!bytes.Equal(in.Payload, ig.Payload) || in.NextProcessAt.Sub(ig.NextProcessAt).Abs() > 2*time.Second {
				t.Errorf("Inspector sees\nGo   %+v\nNode %+v", ig, in)
			}
		})
	}
	// Both databases hold the same keys.
	kg, kn := rg.Keys(ctx, "*").Val(), rn.Keys(ctx, "*").Val()
	if !sameSet(kg, kn) {
		t.Errorf("Redis keys differ:\nGo   %v\nNode %v", kg, kn)
	}
}

func rawRedis(tb testing.TB, opt asynq.RedisClientOpt) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: opt.Addr, DB: opt.DB})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func checkMember(tb testing.TB, what string, viaGo, viaNode []string, id string) {
	tb.Helper()
	in := func(s []string) bool {
		for _, v := range s {
			if v == id {
				return true
			}
		}
		return false
	}
	if !in(viaGo) || !in(viaNode) {
		tb.Errorf("%s: %s in Go's %v, Node's %v", what, id, viaGo, viaNode)
	}
}

func keysOf(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func sameKeys(a, b map[string]string) bool { return sameSet(keysOf(a), keysOf(b)) }

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		if seen[s]--; seen[s] < 0 {
			return false
		}
	}
	return true
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// checkScriptDigests compares the SHA1 of each Lua script the Node client
// runs with the script text in asynq's own source, so that EVALSHA finds the
// scripts asynq's Go client loaded and vice versa.
func checkScriptDigests(tb testing.TB, node map[string]string) {
	tb.Helper()
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/hibiken/asynq").Output()
	if err != nil {
		tb.Fatalf("locate asynq's source: %v", err)
	}
	var src []byte
	for _, file := range []string{"rdb.go", "inspect.go"} {
		b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(dir)), "internal", "rdb", file))
		if err != nil {
			tb.Fatalf("read asynq's %s: %v", file, err)
		}
		src = append(src, b...)
	}
	want := []string{"enqueueCmd", "enqueueUniqueCmd", "scheduleCmd", "scheduleUniqueCmd", "addToGroupCmd", "addToGroupUniqueCmd",
		"deleteTaskCmd", "runTaskCmd", "archiveTaskCmd"}
	if len(node) != len(want) {
		tb.Errorf("Node client has scripts %v, want %v", node, want)
	}
	for _, name := range want {
		m := regexp.MustCompile(`(?s)var ` + name + " = redis\\.NewScript\\(`(.*?)`\\)").FindSubmatch(src)
		if m == nil {
			tb.Errorf("script %s not found in asynq's rdb.go or inspect.go", name)
			continue
		}
		sum := sha1.Sum(m[1])
		if got := node[name]; got != hex.EncodeToString(sum[:]) {
			tb.Errorf("script %s: Node's SHA1 %s, asynq's %x", name, got, sum)
		}
	}
}

// taskMessage is asynq's TaskMessage (internal/proto/asynq.proto, which we
// cannot import), every field.
type taskMessage struct {
	Type         string
	Payload      []byte
	Headers      map[string]string
	ID           string
	Queue        string
	Retry        int32
	Retried      int32
	ErrorMsg     string
	LastFailedAt int64
	Timeout      int64
	Deadline     int64
	UniqueKey    string
	GroupKey     string
	Retention    int64
	CompletedAt  int64
}

// decodeTaskMessage parses the protobuf wire format of a TaskMessage; it
// rejects unknown fields and wire types, and repeated scalar fields.
func decodeTaskMessage(b []byte) (*taskMessage, error) {
	var m taskMessage
	seen := map[protowire.Number]bool{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if seen[num] && num != 15 {
			return nil, fmt.Errorf("field %d appears twice", num)
		}
		seen[num] = true
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			b = b[n:]
			switch num {
			case 5:
				m.Retry = int32(v)
			case 6:
				m.Retried = int32(v)
			case 8:
				m.Timeout = int64(v)
			case 9:
				m.Deadline = int64(v)
			case 11:
				m.LastFailedAt = int64(v)
			case 12:
				m.Retention = int64(v)
			case 13:
				m.CompletedAt = int64(v)
			default:
				return nil, fmt.Errorf("unexpected varint field %d", num)
			}
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			b = b[n:]
			switch num {
			case 1:
				m.Type = string(v)
			case 2:
				m.Payload = append([]byte{}, v...)
			case 3:
				m.ID = string(v)
			case 4:
				m.Queue = string(v)
			case 7:
				m.ErrorMsg = string(v)
			case 10:
				m.UniqueKey = string(v)
			case 14:
				m.GroupKey = string(v)
			case 15:
				k, val, err := decodeMapEntry(v)
				if err != nil {
					return nil, err
				}
				if m.Headers == nil {
					m.Headers = map[string]string{}
				}
				m.Headers[k] = val
			default:
				return nil, fmt.Errorf("unexpected bytes field %d", num)
			}
		default:
			return nil, fmt.Errorf("field %d: unexpected wire type %d", num, typ)
		}
	}
	return &m, nil
}

func decodeMapEntry(b []byte) (key, val string, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return "", "", fmt.Errorf("bad headers entry")
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return "", "", protowire.ParseError(n)
		}
		b = b[n:]
		switch num {
		case 1:
			key = string(v)
		case 2:
			val = string(v)
		}
	}
	return key, val, nil
}
