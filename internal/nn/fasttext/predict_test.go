package fasttext

import (
	"bufio"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

type referenceFile struct {
	K         int `json:"k"`
	Sentences []struct {
		Line        int    `json:"line"`
		Lang        string `json:"lang"`
		Text        string `json:"text"`
		Predictions []struct {
			Label string  `json:"label"`
			Prob  float64 `json:"prob"`
		} `json:"predictions"`
	} `json:"sentences"`
}

func readReference(tb testing.TB) referenceFile {
	tb.Helper()
	b, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		tb.Fatal(err)
	}
	var ref referenceFile
	if err := json.Unmarshal(b, &ref); err != nil {
		tb.Fatal(err)
	}
	return ref
}

// TestReference compares Predict with fastText's own predictions
// (testdata/reference.json, made by testdata/reference.mjs).
func TestReference(t *testing.T) {
	t.Parallel()
	m := lidModel(t)
	ref := readReference(t)
	if len(ref.Sentences) < 150 {
		t.Fatalf("only %d reference sentences", len(ref.Sentences))
	}
	var exact, probs, correct, labelled int
	for _, s := range ref.Sentences {
		got := m.Predict(s.Text, ref.K, 0)
		if len(got) != len(s.Predictions) {
			t.Errorf("line %d: %d predictions, fastText has %d", s.Line, len(got), len(s.Predictions))
			continue
		}
		for i, w := range s.Predictions {
			g := got[i]
			if g.Label != w.Label {
				t.Errorf("line %d #%d: %s, fastText has %s", s.Line, i, g.Label, w.Label)
				continue
			}
			probs++
			if float64(g.Prob) == w.Prob {
				exact++
			}
			if d := math.Abs(float64(g.Prob) - w.Prob); d > 1e-6 && d > 1e-5*w.Prob {
				t.Errorf("line %d %s: prob %g, fastText has %g", s.Line, g.Label, g.Prob, w.Prob)
			}
		}
		if s.Lang != "?" {
			labelled++
			if len(got) > 0 && got[0].Label == labelPrefix+s.Lang {
				correct++
			}
		}
	}
	t.Logf("%d/%d probabilities bit-identical to fastText; top-1 accuracy %d/%d = %.1f%%",
		exact, probs, correct, labelled, 100*float64(correct)/float64(labelled))
	if correct < labelled*95/100 {
		t.Errorf("top-1 accuracy %d/%d is below 95%%", correct, labelled)
	}
}

// TestSentencesFile checks the format other tests rely on.
func TestSentencesFile(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/sentences.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	perLang := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lang, _, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("line without a tab: %q", line)
		}
		perLang[lang]++
	}
	for _, lang := range strings.Fields("en de fr es it pt nl sv pl ru uk tr ja zh ko ar el fi cs hu id vi") {
		if perLang[lang] < 8 {
			t.Errorf("%s has %d sentences, want >= 8", lang, perLang[lang])
		}
	}
}

func TestPredictTiny(t *testing.T) {
	t.Parallel()
	sigmoid := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	// "a b" averages input rows (1,0) and (0,1) with "</s>" (0.5,0.5).
	h := [2]float64{0.5, 0.5}
	dot := func(out []float32, r int) float64 { return float64(out[2*r])*h[0] + float64(out[2*r+1])*h[1] }
	tests := []struct {
		loss LossName
		want func(out []float32) map[string]float64
	}{
		{LossHS, func(out []float32) map[string]float64 {
			// Root (output row 1) has leaf x on the right and node 3
			// (row 0, children z left and y right) on the left.
			p1, p0 := sigmoid(dot(out, 1)), sigmoid(dot(out, 0))
			return map[string]float64{
				"__label__x": p1 + 1e-5,
				"__label__y": (1 - p1 + 1e-5) * (p0 + 1e-5),
				"__label__z": (1 - p1 + 1e-5) * (1 - p0 + 1e-5),
			}
		}},
		{LossSoftmax, func(out []float32) map[string]float64 {
			e := []float64{math.Exp(dot(out, 0)), math.Exp(dot(out, 1)), math.Exp(dot(out, 2))}
			z := e[0] + e[1] + e[2]
			return map[string]float64{"__label__x": e[0]/z + 1e-5, "__label__y": e[1]/z + 1e-5, "__label__z": e[2]/z + 1e-5}
		}},
		{LossOVA, func(out []float32) map[string]float64 {
			return map[string]float64{
				"__label__x": sigmoid(dot(out, 0)) + 1e-5,
				"__label__y": sigmoid(dot(out, 1)) + 1e-5,
				"__label__z": sigmoid(dot(out, 2)) + 1e-5,
			}
		}},
	}
	for _, tt := range tests {
		tm := tinyModel(tt.loss)
		m := loadTest(t, tm)
		want := tt.want(tm.out)
		tol := 1e-5
		if tt.loss == LossOVA {
			tol = 0.01 // fastText's sigmoid table has steps of 1/32
		}
		got := m.Predict("a b", 0, 0)
		if len(got) != 3 {
			t.Fatalf("%v: %v", tt.loss, got)
		}
		for i, p := range got {
			if i > 0 && p.Prob > got[i-1].Prob {
				t.Errorf("%v: not descending: %v", tt.loss, got)
			}
			if d := math.Abs(float64(p.Prob) - want[p.Label]); d > tol {
				t.Errorf("%v: %s = %v, want %v", tt.loss, p.Label, p.Prob, want[p.Label])
			}
		}
		// k and threshold cut the list from the end.
		if top := m.Predict("a b", 1, 0); len(top) != 1 || top[0] != got[0] {
			t.Errorf("%v: k=1 gives %v, want %v", tt.loss, top, got[:1])
		}
		thr := (got[1].Prob + got[2].Prob) / 2
		if cut := m.Predict("a b", 3, thr); len(cut) != 2 {
			t.Errorf("%v: threshold %v gives %v", tt.loss, thr, cut)
		}
	}
}

func TestPredictEdgeCases(t *testing.T) {
	t.Parallel()
	m := loadTest(t, tinyModel(LossHS))
	// Unknown words without subwords and no "</s>" row give no input rows.
	tm := tinyModel(LossHS)
	tm.entries[2].word = "eos-renamed"
	noEOS := loadTest(t, tm)
	if got := noEOS.Predict("zzz", 5, 0); got != nil {
		t.Errorf("no input rows: %v, want nil", got)
	}
	if got := m.Predict("", 5, 0); len(got) != 3 {
		t.Errorf("empty text: %v, want the \"</s>\" prediction", got)
	}
	if got := m.Predict("a", 1000, 0); len(got) != 3 {
		t.Errorf("k above labels: %d predictions", len(got))
	}
	if got, want := m.Predict("a\nb", 3, 0), m.Predict("a", 3, 0); !slices.Equal(got, want) {
		t.Errorf("text after a newline changed the result: %v vs %v", got, want)
	}
	if got := m.Predict("a", 3, 2); len(got) != 0 {
		t.Errorf("threshold 2: %v", got)
	}
}

func TestHeapMatchesSort(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n, k := 1+r.IntN(40), 1+r.IntN(10)
		var heap []scored
		var all []scored
		for i := range n {
			s := scored{score: float32(r.IntN(8)), id: int32(i)} // many ties
			all = append(all, s)
			if len(heap) == k && s.score < heap[0].score {
				continue
			}
			heap = offer(heap, s, k)
		}
		sortHeap(heap)
		slices.SortStableFunc(all, func(a, b scored) int { return -cmpFloat(a.score, b.score) })
		if len(heap) != min(k, n) {
			t.Fatalf("heap has %d, want %d", len(heap), min(k, n))
		}
		for i := range heap {
			if heap[i].score != all[i].score {
				t.Fatalf("scores %v, want prefix of %v", heap, all)
			}
		}
	}
}

func cmpFloat(a, b float32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// FuzzPredict runs arbitrary bytes through the real model (or the tiny one
// when lid.176 is missing): no panics, at most k results, descending.
func FuzzPredict(f *testing.F) {
	for _, s := range []string{"", "hello world", "Der Zug fährt", "日本語", "\xff\xfe\x00\n\v", "__label__en x", "a </s> b"} {
		f.Add([]byte(s), 5)
	}
	m, err := Load(encodeModel(tinyModel(LossHS)))
	if err != nil {
		f.Fatal(err)
	}
	if _, err := os.Stat("../../../models/lid.176.ftz"); err == nil {
		m = lidModel(f)
	}
	f.Fuzz(func(t *testing.T, text []byte, k int) {
		got := m.PredictBytes(text, k, 0)
		if k >= 1 && len(got) > k {
			t.Fatalf("%d results for k=%d", len(got), k)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Prob > got[i-1].Prob {
				t.Fatalf("not descending: %v", got)
			}
		}
	})
}

func BenchmarkPredict(b *testing.B) {
	m := lidModel(b)
	const text = "The library will be closed next week while the roof is being repaired."
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if got := m.Predict(text, 5, 0); len(got) != 5 {
			b.Fatal(got)
		}
	}
}

// BenchmarkPredictSentences predicts the top 3 languages of each of the
// test sentences in turn (22 languages, 20 to 200 bytes): what the langid
// guest asks per job.
func BenchmarkPredictSentences(b *testing.B) {
	m := lidModel(b)
	ref := readReference(b)
	texts := make([][]byte, len(ref.Sentences))
	size := 0
	for i, s := range ref.Sentences {
		texts[i] = []byte(s.Text)
		size += len(s.Text)
	}
	b.ReportAllocs()
	b.SetBytes(int64(size / len(texts)))
	i := 0
	for b.Loop() {
		_ = m.PredictBytes(texts[i%len(texts)], 3, 0)
		i++
	}
}

func BenchmarkPredictParallel(b *testing.B) {
	m := lidModel(b)
	const text = "The library will be closed next week while the roof is being repaired."
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = m.Predict(text, 5, 0)
		}
	})
}

func BenchmarkLoadLID(b *testing.B) {
	lidModel(b)
	data, err := os.ReadFile(lidPath)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(data); err != nil {
			b.Fatal(err)
		}
	}
}
