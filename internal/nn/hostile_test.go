package nn_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/nn"
	"github.com/wasmjobs/wasmjobs/internal/nn/fasttext"
	"github.com/wasmjobs/wasmjobs/internal/nn/onnx"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
	"github.com/wasmjobs/wasmjobs/internal/testenv"
)

// hostileGuest is one nn-*.wat of guest/testdata/hostile with the
// directives of its leading comment lines.
type hostileGuest struct {
	name   string
	wasm   []byte
	expect string
	input  []byte
}

func loadHostile(tb testing.TB, name string) hostileGuest {
	tb.Helper()
	dir := filepath.Join(testenv.RepoRoot(tb), "guest", "testdata", "hostile")
	wat, err := os.ReadFile(filepath.Join(dir, name+".wat"))
	if err != nil {
		tb.Fatal(err)
	}
	wasm, err := os.ReadFile(filepath.Join(dir, name+".wasm"))
	if err != nil {
		tb.Fatalf("%v (assemble it with wat2wasm)", err)
	}
	g := hostileGuest{name: name, wasm: wasm}
	sc := bufio.NewScanner(bytes.NewReader(wat))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), ";; ")
		if !ok {
			break
		}
		if v, ok := strings.CutPrefix(line, "expect: "); ok {
			g.expect = v
		}
		if v, ok := strings.CutPrefix(line, "input: "); ok {
			g.input = []byte(v)
		}
	}
	if g.expect == "" {
		tb.Fatalf("%s.wat has no ;; expect: line", name)
	}
	return g
}

// logLines is a slog handler's output, safe for concurrent writes.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// count returns the lines containing s.
func (l *logLines) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

// countingBackend counts model loads.
type countingBackend struct {
	nn.Backend
	loads atomic.Int64
}

func (b *countingBackend) LoadFile(ctx context.Context, path string) (nn.Graph, error) {
	b.loads.Add(1)
	return b.Backend.LoadFile(ctx, path)
}

func (b *countingBackend) LoadBytes(ctx context.Context, model []byte) (nn.Graph, error) {
	b.loads.Add(1)
	return b.Backend.LoadBytes(ctx, model)
}

// shippedMaxShape is what the worker registers for the shipped models
// (cmd/wasmjobs: shippedMaxShapes).
var shippedMaxShape = map[string][][]uint32{
	"ocr-det": {{1, 3, 1312, 1312}},
	"ocr-cls": {{8, 3, 48, 192}},
	"ocr-rec": {{8, 3, 48, 1600}},
}

type hostileEnv struct {
	mod  *nn.Module
	onnx *countingBackend
	rt   *sandbox.Runtime
	logs *logLines
}

// newHostileEnv registers the shipped models, as the worker does, plus
// "broken", an ONNX file that is not a model.
func newHostileEnv(tb testing.TB, cfg nn.Config) *hostileEnv {
	tb.Helper()
	dir := testenv.ModelsDir(tb)
	broken := filepath.Join(tb.TempDir(), "broken.onnx")
	if err := os.WriteFile(broken, []byte("not a model"), 0o644); err != nil {
		tb.Fatal(err)
	}
	ob, err := onnx.New(onnx.Config{LibraryPath: filepath.Join(dir, "libonnxruntime.so.1"), Device: onnx.DeviceCPU, Logger: quietLog()})
	if err != nil {
		tb.Fatal(err)
	}
	e := &hostileEnv{onnx: &countingBackend{Backend: ob}, logs: &logLines{}}
	cfg.Models = map[string]nn.Model{"broken": {Path: broken}}
	for name, file := range map[string]string{
		"ocr-det": "ch_PP-OCRv4_det_infer.onnx", "ocr-cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
		"ocr-rec": "ch_PP-OCRv4_rec_infer.onnx", "ocr-keys": "ppocr_keys_v1.txt", "langid": "lid.176.ftz",
	} {
		cfg.Models[name] = nn.Model{Path: filepath.Join(dir, file), MaxShape: shippedMaxShape[name]}
	}
	cfg.Backends = map[string]nn.Backend{"onnx": e.onnx, "fasttext": fasttext.New()}
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if e.mod, err = nn.New(cfg); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.mod.Close() })
	ctx := context.Background()
	if e.rt, err = sandbox.New(ctx, sandbox.Config{HostModules: []sandbox.HostModule{e.mod}}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.rt.Close(ctx) })
	return e
}

// run runs g as a job would and returns its failure.
func (e *hostileEnv) run(tb testing.TB, g hostileGuest, input []byte, timeout time.Duration) (*sandbox.GuestError, time.Duration) {
	tb.Helper()
	ctx := context.Background()
	m, err := e.rt.Compile(ctx, g.wasm, "")
	if err != nil {
		tb.Fatalf("%s: compile: %v", g.name, err)
	}
	if input == nil {
		input = g.input
	}
	start := time.Now()
	_, err = e.rt.Run(ctx, m, sandbox.RunOptions{Name: g.name, Stdin: input, Timeout: timeout})
	took := time.Since(start)
	var ge *sandbox.GuestError
	if !errors.As(err, &ge) {
		tb.Fatalf("%s: want a guest error, got %v", g.name, err)
	}
	if !strings.Contains(ge.Error(), g.expect) {
		tb.Fatalf("%s: %q does not contain %q", g.name, ge.Error(), g.expect)
	}
	return ge, took
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Every nn hostile guest ends with the reason its file expects, as a guest
// error, on a module configured as the worker configures it.
func TestHostileGuests(t *testing.T) {
	e := newHostileEnv(t, nn.Config{})
	matches, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "guest", "testdata", "hostile", "nn-*.wat"))
	if err != nil || len(matches) == 0 {
		t.Fatalf("no nn-*.wat: %v", err)
	}
	for _, path := range matches {
		name := strings.TrimSuffix(filepath.Base(path), ".wat")
		t.Run(name, func(t *testing.T) {
			g := loadHostile(t, name)
			timeout := 30 * time.Second
			if name == "nn-compute-deadline" {
				timeout = time.Second
			}
			ge, took := e.run(t, g, nil, timeout)
			t.Logf("%s after %s: %v", name, took.Round(time.Millisecond), ge)
			if ge.ExitCode == 3 || ge.ExitCode == 2 {
				t.Fatalf("%s: the host accepted a bad call or refused a good one: %v", name, ge)
			}
		})
	}
	if peak := e.mod.PeakInstanceBytes(); peak > 128<<20 {
		t.Errorf("an instance held %d bytes, over the 128 MiB budget", peak)
	}
}

// A guest calling load in a loop costs one log line per worker, and bytes
// that fail to load are tried once per instance.
func TestLoadLoopLogsOnce(t *testing.T) {
	g := loadHostile(t, "nn-load-loop")
	refused := newHostileEnv(t, nn.Config{})
	for range 2 {
		ge, _ := refused.run(t, g, nil, 30*time.Second)
		if !strings.Contains(ge.Error(), "errno 6") {
			t.Fatalf("load without --nn-allow-load: %v, want unsupported_operation (6)", ge)
		}
	}
	if n := refused.logs.count("level="); n != 1 {
		t.Errorf("two guests calling load 10000 times each wrote %d log lines, want 1:\n%s", n, refused.logs.buf.String())
	}

	allowed := newHostileEnv(t, nn.Config{AllowLoad: true})
	ge, _ := allowed.run(t, g, nil, 30*time.Second)
	if !strings.Contains(ge.Error(), "errno 2") {
		t.Fatalf("load of bogus bytes: %v, want invalid_encoding (2)", ge)
	}
	if n := allowed.onnx.loads.Load(); n != 1 {
		t.Errorf("the same bogus bytes were loaded %d times, want 1", n)
	}
}

// A registered model that fails to load is loaded once and logged once,
// however often guests ask for it.
func TestBrokenModelLoadedOnce(t *testing.T) {
	g := loadHostile(t, "nn-load-by-name-loop")
	e := newHostileEnv(t, nn.Config{})
	for range 2 {
		ge, _ := e.run(t, g, []byte("broken\n"), 30*time.Second)
		if !strings.Contains(ge.Error(), "errno 1") {
			t.Fatalf("load_by_name of a broken model: %v, want invalid_argument (1)", ge)
		}
	}
	if n := e.onnx.loads.Load(); n != 1 {
		t.Errorf("the broken model was loaded %d times, want 1", n)
	}
	if n := e.logs.count("level=ERROR"); n != 1 {
		t.Errorf("%d log lines about the broken model, want 1:\n%s", n, e.logs.buf.String())
	}
	if _, err := e.mod.Graph(context.Background(), "broken"); err == nil || !strings.Contains(err.Error(), "will not retry") {
		t.Errorf("Graph(broken): %v, want the remembered load error", err)
	}
}

// Outputs count toward the instance's budget: a guest holding many wide
// recognition outputs is stopped at the budget, and never holds more.
func TestOutputsCountTowardBudget(t *testing.T) {
	const budget = 32 << 20
	e := newHostileEnv(t, nn.Config{MaxTensorBytes: budget})
	ge, _ := e.run(t, loadHostile(t, "nn-rec-contexts"), nil, 60*time.Second)
	if !strings.Contains(ge.Error(), "errno 7") {
		t.Fatalf("many wide contexts under a %d-byte budget: %v, want too_large (7)", budget, ge)
	}
	peak := e.mod.PeakInstanceBytes()
	t.Logf("peak held: %d bytes of %d", peak, budget)
	// Each context holds a 0.9 MB input and a 5.3 MB output: inputs alone
	// would have let all 16 contexts through.
	if peak > budget || peak < budget-8<<20 {
		t.Fatalf("the instance held at most %d bytes, want just under the %d budget", peak, budget)
	}
}

// A compute in progress when the job's deadline passes is terminated: the
// job ends soon after its deadline, not after the compute.
func TestComputeEndsAtJobDeadline(t *testing.T) {
	e := newHostileEnv(t, nn.Config{})
	g := loadHostile(t, "nn-compute-deadline")
	const timeout = 700 * time.Millisecond
	ge, took := e.run(t, g, nil, timeout)
	if !errors.Is(ge, sandbox.ErrTimeout) {
		t.Fatalf("endless computes: %v, want a timeout", ge)
	}
	t.Logf("a %s job of endless 1312 px detections ended after %s", timeout, took)
	if took > timeout+2*time.Second {
		t.Fatalf("ended %s after a %s deadline", took, timeout)
	}
}
