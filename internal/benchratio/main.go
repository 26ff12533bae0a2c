// Command benchratio turns one `make bench` run into the targets' ratios:
// it reads the Go benchmark output and the Node benchmark output, prints a
// Markdown table of every target (measured, goal, met, recorded) and exits 1
// when a value is missing or has regressed by 20% against the value
// recorded in scripts/bench-recorded.tsv. With -record it writes the
// measured values there instead of comparing.
//
// Usage: go run ./internal/benchratio -go GO_OUTPUT -node NODE_OUTPUT [-record]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// metrics are a run's numbers: benchmark (without its -N suffix) → unit → value.
type metrics map[string]map[string]float64

func (m metrics) get(bench, unit string) (float64, error) {
	v, ok := m[bench][unit]
	if !ok {
		return 0, fmt.Errorf("no %s from %s", unit, bench)
	}
	return v, nil
}

// ratio is a/b of two metrics.
func (m metrics) ratio(benchA, unitA, benchB, unitB string) (float64, error) {
	a, err := m.get(benchA, unitA)
	if err != nil {
		return 0, err
	}
	b, err := m.get(benchB, unitB)
	if err != nil {
		return 0, err
	}
	if b == 0 {
		return 0, fmt.Errorf("%s %s is 0", benchB, unitB)
	}
	return a / b, nil
}

// target is one line of the list, as a number from the run.
type target struct {
	name   string
	what   string
	higher bool    // higher is better
	goal   float64 // met when value >= goal (higher) or <= goal
	value  func(metrics) (float64, error)
}

const (
	ocrPipe = "BenchmarkOCRPipeline/"
	text    = "BenchmarkTextJobs/"
	small   = "BenchmarkSmallObjects/"
	lone    = "BenchmarkLoneJob/ocr"
	model   = "BenchmarkModel/"
	records = "BenchmarkRecordBatch/"
	shards  = "BenchmarkOCRShards/"
	node    = "node"
)

func targets() []target {
	t := []target{
		{"ocr-vs-native", "OCR images/s through the full path ÷ the native Go pipeline's", true, 0.85,
			func(m metrics) (float64, error) {
				return m.ratio(ocrPipe+"wasmjobs", "images/s", ocrPipe+"native", "images/s")
			}},
		{"ocr-char-accuracy", "OCR character accuracy on the rendered set (full path)", true, 0.99,
			func(m metrics) (float64, error) { return m.get(ocrPipe+"wasmjobs", "char-accuracy") }},
		{"ocr-outside-inference", "share of the OCR guest's time spent outside inference", false, 0.10,
			func(m metrics) (float64, error) {
				v, err := m.get(ocrPipe+"wasmjobs", "outside-inference-pct")
				return v / 100, err
			}},
	}
	for _, name := range []string{"ocr-det", "ocr-cls", "ocr-rec", "langid"} {
		t = append(t, target{"model-call-" + name, "a " + name + " call from a guest ÷ the same call made directly", false, 1.10,
			func(m metrics) (float64, error) {
				return m.get(model+name+"/call", "of-direct")
			}})
	}
	return append(t,
		target{"text-vs-asynq", "inline langid jobs/s ÷ asynq's no-op handler with the same result", true, 0.85,
			func(m metrics) (float64, error) {
				return m.ratio(text+"wasmjobs-langid", "jobs/s", text+"asynq-noop", "jobs/s")
			}},
		target{"small-objects-vs-floor", "S3 text objects/s in a batch ÷ the S3 floor (HEAD+GET+PUT)", true, 0.80,
			func(m metrics) (float64, error) {
				return m.ratio(small+"wasmjobs-batch", "objects/s", small+"s3-floor", "objects/s")
			}},
		target{"lone-ocr-p50-vs-service", "lone OCR job p50 ÷ (its service time + 10 ms)", false, 1,
			func(m metrics) (float64, error) {
				p50, err := m.get(lone, "p50-ms")
				if err != nil {
					return 0, err
				}
				svc, err := m.get(lone, "service-ms")
				return p50 / (svc + 10), err
			}},
		target{"lone-ocr-p95-vs-p50", "lone OCR job p95 ÷ p50", false, 2,
			func(m metrics) (float64, error) { return m.ratio(lone, "p95-ms", lone, "p50-ms") }},
		target{"http-say-lone-p50-ms", "http-say example, lone request p50 (ms)", false, 10,
			func(m metrics) (float64, error) { return m.get(node, "http-say-lone-p50-ms") }},
		target{"http-say-32-req/s", "http-say example, 32 concurrent clients (req/s)", true, 1500,
			func(m metrics) (float64, error) { return m.get(node, "http-say-32-req/s") }},
		target{"records-vs-inline", "langid records/s over a 1M-record JSONL in shards ÷ inline jobs/s (one job per record)", true, 10,
			func(m metrics) (float64, error) {
				return m.ratio(records+"langid-shards", "records/s", text+"wasmjobs-langid", "jobs/s")
			}},
		target{"records-vs-fasttext", "langid records/s in shards ÷ the fastText backend's own predictions/s (same cores)", true, 0.60,
			func(m metrics) (float64, error) {
				return m.ratio(records+"langid-shards", "records/s", records+"fasttext", "records/s")
			}},
		target{"ocr-tar-vs-objects", "OCR images/s from tar shards ÷ one object per image (same worker)", true, 1.2,
			func(m metrics) (float64, error) {
				return m.ratio(shards+"tar-shards", "images/s", shards+"objects", "images/s")
			}},
		target{"ocr-worker-peak-rss-mib", "OCR worker peak RSS at the default concurrency (MiB)", false, 200,
			func(m metrics) (float64, error) { return m.get(ocrPipe+"wasmjobs", "peak-RSS-MiB") }},
	)
}

// benchLine matches a Go benchmark result: name-N, iterations, then value/unit pairs.
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func parseGo(r io.Reader, m metrics) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		g := benchLine.FindStringSubmatch(sc.Text())
		if g == nil {
			continue
		}
		f := strings.Fields(g[2])
		if m[g[1]] == nil {
			m[g[1]] = map[string]float64{}
		}
		for i := 0; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[g[1]][f[i+1]] = v
			}
		}
	}
	return sc.Err()
}

// nodeLines match what `npm run bench:http-say` prints.
var nodeLines = map[string]*regexp.Regexp{
	"http-say-lone-p50-ms": regexp.MustCompile(`http-say lone p50 ([0-9.]+) ms`),
	"http-say-32-req/s":    regexp.MustCompile(`http-say 32 concurrent ([0-9.]+) req/s`),
}

func parseNode(b []byte, m metrics) {
	m[node] = map[string]float64{}
	for k, re := range nodeLines {
		if g := re.FindSubmatch(b); g != nil {
			if v, err := strconv.ParseFloat(string(g[1]), 64); err == nil {
				m[node][k] = v
			}
		}
	}
}

func readRecorded(path string) (map[string]float64, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return map[string]float64{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 2 || strings.HasPrefix(line, "#") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = v
		}
	}
	return out, nil
}

func main() {
	goOut := flag.String("go", "", "file with the Go benchmarks' output")
	nodeOut := flag.String("node", "", "file with the Node benchmarks' output")
	recordedPath := flag.String("recorded", "scripts/bench-recorded.tsv", "recorded values")
	record := flag.Bool("record", false, "write the measured values as the recorded ones")
	flag.Parse()
	m := metrics{}
	if f, err := os.Open(*goOut); err != nil {
		fail(err)
	} else {
		err = parseGo(f, m)
		f.Close()
		if err != nil {
			fail(err)
		}
	}
	if b, err := os.ReadFile(*nodeOut); err == nil {
		parseNode(b, m)
	}
	recorded, err := readRecorded(*recordedPath)
	if err != nil {
		fail(err)
	}
	measured := map[string]float64{}
	var bad []string
	fmt.Println("| target | measured | goal | met | recorded |")
	fmt.Println("|---|---|---|---|---|")
	for _, t := range targets() {
		v, err := t.value(m)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			bad = append(bad, fmt.Sprintf("%s: not measured (%v)", t.name, err))
			fmt.Printf("| %s | — | %s | no | %s |\n", t.what, goal(t), rec(recorded, t.name))
			continue
		}
		measured[t.name] = v
		met := v >= t.goal
		if !t.higher {
			met = v <= t.goal
		}
		fmt.Printf("| %s | %.3g | %s | %s | %s |\n", t.what, v, goal(t), yes(met), rec(recorded, t.name))
		if r, ok := recorded[t.name]; ok && !*record && regressed(t, v, r) {
			bad = append(bad, fmt.Sprintf("%s: %.3g, more than 20%% worse than the recorded %.3g", t.name, v, r))
		}
	}
	if *record {
		var lines []string
		for k, v := range measured {
			lines = append(lines, fmt.Sprintf("%s\t%.4g", k, v))
		}
		sort.Strings(lines)
		body := "# Values recorded by `make bench-record`; `make bench` fails when one gets 20% worse.\n" + strings.Join(lines, "\n") + "\n"
		if err := os.WriteFile(*recordedPath, []byte(body), 0o644); err != nil {
			fail(err)
		}
	}
	if len(bad) > 0 {
		fmt.Fprintln(os.Stderr, "benchratio:\n  "+strings.Join(bad, "\n  "))
		os.Exit(1)
	}
}

// regressed reports whether v is 20% worse than the recorded r: for a
// higher-is-better value v < 0.8 r, otherwise r/v < 0.8.
func regressed(t target, v, r float64) bool {
	if t.higher {
		return v < 0.8*r
	}
	return v > r/0.8
}

func goal(t target) string {
	if t.higher {
		return fmt.Sprintf("≥ %g", t.goal)
	}
	return fmt.Sprintf("≤ %g", t.goal)
}

func rec(recorded map[string]float64, name string) string {
	if v, ok := recorded[name]; ok {
		return fmt.Sprintf("%.3g", v)
	}
	return "—"
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchratio:", err)
	os.Exit(2)
}
