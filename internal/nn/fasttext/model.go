package fasttext

import (
	"fmt"
	"os"
	"sync"
)

// File format constants (fasttext.cc).
const (
	fileMagic  = 793712314 // FASTTEXT_FILEFORMAT_MAGIC_INT32
	maxVersion = 12        // FASTTEXT_VERSION
)

// Model is a loaded fastText model. It is immutable and safe for concurrent
// use.
type Model struct {
	version int32
	args    Args
	dict    *dictionary
	quant   bool
	input   matrix
	output  matrix
	tree    []hsNode // hierarchical softmax only
	states  sync.Pool
}

// Prediction is one label and its probability.
type Prediction struct {
	// Label is the label as stored in the model, e.g. "__label__en".
	Label string
	// Prob is exp of fastText's score, the number `fasttext predict-prob`
	// prints.
	Prob float32
}

// LoadFile reads and loads a .bin or .ftz model file.
func LoadFile(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Load(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Load parses a model from the bytes of a .bin or .ftz file. It never
// panics and never allocates much more than len(b), whatever b holds;
// errors wrap ErrNotFastText, ErrVersion or ErrCorrupt. The model keeps
// references into b, so b must not be modified afterwards.
func Load(b []byte) (*Model, error) {
	r := &reader{b: b}
	magic, err := r.i32("magic")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFastText, err)
	}
	if magic != fileMagic {
		return nil, fmt.Errorf("%w: magic %#x", ErrNotFastText, uint32(magic))
	}
	m := &Model{}
	if m.version, err = r.i32("version"); err != nil {
		return nil, err
	}
	if m.version > maxVersion {
		return nil, fmt.Errorf("%w: %d (newest known is %d)", ErrVersion, m.version, maxVersion)
	}
	if m.args, err = readArgs(r); err != nil {
		return nil, err
	}
	if m.version == 11 && m.args.Model == ModelSupervised {
		// Models from before version 12 did not use char n-grams for
		// supervised training; fastText ignores their maxn.
		m.args.MaxN = 0
	}
	a := &m.args
	if a.MinN < 0 || a.MaxN < 0 {
		return nil, fmt.Errorf("%w: minn %d, maxn %d", ErrCorrupt, a.MinN, a.MaxN)
	}
	if a.Bucket == 0 && (a.MaxN > 0 || a.WordNgrams > 1) {
		return nil, fmt.Errorf("%w: bucket 0 with maxn %d and wordNgrams %d", ErrCorrupt, a.MaxN, a.WordNgrams)
	}
	if m.dict, err = readDictionary(r, a); err != nil {
		return nil, err
	}
	if m.quant, err = r.boolean("quant_input"); err != nil {
		return nil, err
	}
	if m.quant {
		m.input, err = readQuant(r, a.Dim, "input matrix")
	} else {
		m.input, err = readDense(r, a.Dim, "input matrix")
	}
	if err != nil {
		return nil, err
	}
	if !m.quant && m.dict.pruned() {
		return nil, fmt.Errorf("%w: pruned dictionary with a dense input matrix (a model from before fastText issue #332)", ErrCorrupt)
	}
	if need := m.dict.maxRow(); m.input.rows() < need {
		return nil, fmt.Errorf("%w: input matrix has %d rows, the dictionary addresses %d", ErrCorrupt, m.input.rows(), need)
	}
	if a.QOut, err = r.boolean("qout"); err != nil {
		return nil, err
	}
	if m.quant && a.QOut {
		m.output, err = readQuant(r, a.Dim, "output matrix")
	} else {
		m.output, err = readDense(r, a.Dim, "output matrix")
	}
	if err != nil {
		return nil, err
	}
	if a.Model == ModelSupervised {
		if err := m.initSupervised(); err != nil {
			return nil, err
		}
	}
	m.states.New = func() any { return m.newState() }
	return m, nil
}

func (m *Model) initSupervised() error {
	nl := int64(m.dict.nlabels)
	if nl == 0 {
		return fmt.Errorf("%w: supervised model without labels", ErrCorrupt)
	}
	need := nl
	if m.args.Loss == LossHS {
		need = nl - 1 // one row per internal tree node
	}
	if m.output.rows() < need {
		return fmt.Errorf("%w: output matrix has %d rows, %s over %d labels needs %d",
			ErrCorrupt, m.output.rows(), m.args.Loss, nl, need)
	}
	if m.args.Loss == LossHS {
		tree, err := buildTree(m.dict.labelCounts())
		if err != nil {
			return err
		}
		m.tree = tree
	}
	return nil
}

// Args returns the model's training arguments.
func (m *Model) Args() Args { return m.args }

// Version returns the file format version (11 or 12 for released models).
func (m *Model) Version() int32 { return m.version }

// Quantized reports whether the input matrix is product-quantized (.ftz).
func (m *Model) Quantized() bool { return m.quant }

// Labels returns the model's labels in label-id order.
func (m *Model) Labels() []string {
	out := make([]string, m.dict.nlabels)
	for i := range out {
		out[i] = m.dict.label(int32(i))
	}
	return out
}

// NumWords returns the number of words in the dictionary.
func (m *Model) NumWords() int { return int(m.dict.nwords) }

// state is the per-call working memory of a prediction.
type state struct {
	scratch
	hidden []float32
	output []float32
	heap   []scored
	stack  []hsItem
}

func (m *Model) newState() *state {
	return &state{
		hidden: make([]float32, m.args.Dim),
		output: make([]float32, m.dict.nlabels),
	}
}

// Predict returns the k most probable labels for one line of text, most
// probable first, leaving out those below threshold (0 keeps all), exactly
// as fastText's `predict` and its Python/JS predict(text, k, threshold):
// text is read up to its first '\n', split on ASCII whitespace and NUL,
// and ends with fastText's end-of-line token. k < 1 or above the number of
// labels means every label. It returns nil for a model that is not
// supervised, and for text that maps to no input rows at all.
func (m *Model) Predict(text string, k int, threshold float32) []Prediction {
	return m.PredictBytes([]byte(text), k, threshold)
}

// PredictBytes is [Model.Predict] for text given as bytes; text need not be
// valid UTF-8.
func (m *Model) PredictBytes(text []byte, k int, threshold float32) []Prediction {
	if m.args.Model != ModelSupervised {
		return nil
	}
	st := m.states.Get().(*state)
	defer m.states.Put(st)
	best := m.predict(st, text, k, threshold)
	if len(best) == 0 {
		return nil
	}
	out := make([]Prediction, len(best))
	for i, s := range best {
		out[i] = Prediction{Label: m.dict.label(s.id), Prob: expf(s.score)}
	}
	return out
}

// predict is FastText::predictLine up to, not including, the exp of the
// scores: it returns log-probabilities sorted descending, aliasing st.
func (m *Model) predict(st *state, text []byte, k int, threshold float32) []scored {
	if nl := int(m.dict.nlabels); k < 1 || k > nl {
		k = nl
	}
	rows := m.dict.lineRows(text, &st.scratch)
	if len(rows) == 0 {
		return nil
	}
	m.hidden(st.hidden, rows)
	var heap []scored
	if m.args.Loss == LossHS {
		heap = m.hsPredict(st, k, threshold)
	} else {
		heap = m.flatPredict(st, k, threshold)
	}
	sortHeap(heap)
	st.heap = heap
	return heap
}

// hidden sets h to the average of the input rows (averageRowsToVector).
func (m *Model) hidden(h []float32, rows []int32) {
	clear(h)
	for _, r := range rows {
		m.input.addRowTo(h, r)
	}
	scale := float32(1.0 / float64(len(rows)))
	for i := range h {
		h[i] *= scale
	}
}
