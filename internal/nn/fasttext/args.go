package fasttext

import "fmt"

// LossName is the training loss stored in a model; it decides how
// predictions are computed.
type LossName int32

// Losses, numbered as fastText's loss_name enum.
const (
	LossHS      LossName = 1 // hierarchical softmax
	LossNS      LossName = 2 // negative sampling
	LossSoftmax LossName = 3
	LossOVA     LossName = 4 // one-vs-all, independent sigmoids
)

// String returns fastText's command-line name of the loss.
func (l LossName) String() string {
	switch l {
	case LossHS:
		return "hs"
	case LossNS:
		return "ns"
	case LossSoftmax:
		return "softmax"
	case LossOVA:
		return "one-vs-all"
	}
	return fmt.Sprintf("LossName(%d)", int32(l))
}

// ModelName is the kind of model stored in a file.
type ModelName int32

// Model kinds, numbered as fastText's model_name enum.
const (
	ModelCBOW       ModelName = 1
	ModelSkipgram   ModelName = 2
	ModelSupervised ModelName = 3
)

// String returns fastText's command-line name of the model kind.
func (m ModelName) String() string {
	switch m {
	case ModelCBOW:
		return "cbow"
	case ModelSkipgram:
		return "skipgram"
	case ModelSupervised:
		return "supervised"
	}
	return fmt.Sprintf("ModelName(%d)", int32(m))
}

// Args are the training arguments saved in a model file, in file order.
// Only Dim, WordNgrams, Loss, Model, Bucket, MinN and MaxN matter for
// prediction; the others are kept for inspection.
type Args struct {
	Dim          int32
	WS           int32
	Epoch        int32
	MinCount     int32
	Neg          int32
	WordNgrams   int32
	Loss         LossName
	Model        ModelName
	Bucket       int32
	MinN         int32
	MaxN         int32
	LRUpdateRate int32
	T            float64
	// QOut reports whether the output matrix is quantized; it is stored
	// after the input matrix, not with the other arguments.
	QOut bool
}

func readArgs(r *reader) (Args, error) {
	var a Args
	ints := []struct {
		p    *int32
		name string
	}{
		{&a.Dim, "args.dim"}, {&a.WS, "args.ws"}, {&a.Epoch, "args.epoch"},
		{&a.MinCount, "args.minCount"}, {&a.Neg, "args.neg"},
		{&a.WordNgrams, "args.wordNgrams"}, {(*int32)(&a.Loss), "args.loss"},
		{(*int32)(&a.Model), "args.model"}, {&a.Bucket, "args.bucket"},
		{&a.MinN, "args.minn"}, {&a.MaxN, "args.maxn"},
		{&a.LRUpdateRate, "args.lrUpdateRate"},
	}
	for _, f := range ints {
		v, err := r.i32(f.name)
		if err != nil {
			return a, err
		}
		*f.p = v
	}
	t, err := r.f64("args.t")
	if err != nil {
		return a, err
	}
	a.T = t
	switch {
	case a.Dim <= 0:
		return a, fmt.Errorf("%w: dim %d", ErrCorrupt, a.Dim)
	case a.Loss < LossHS || a.Loss > LossOVA:
		return a, fmt.Errorf("%w: unknown loss %d", ErrCorrupt, int32(a.Loss))
	case a.Model < ModelCBOW || a.Model > ModelSupervised:
		return a, fmt.Errorf("%w: unknown model %d", ErrCorrupt, int32(a.Model))
	case a.Bucket < 0:
		return a, fmt.Errorf("%w: bucket %d", ErrCorrupt, a.Bucket)
	}
	return a, nil
}
