package fasttext

import (
	"errors"
	"os"
	"testing"
)

func TestLoadTiny(t *testing.T) {
	t.Parallel()
	for _, loss := range []LossName{LossHS, LossSoftmax, LossOVA, LossNS} {
		m := loadTest(t, tinyModel(loss))
		if got := m.Args().Loss; got != loss {
			t.Errorf("loss = %v, want %v", got, loss)
		}
		if got := m.Labels(); len(got) != 3 || got[0] != "__label__x" || got[2] != "__label__z" {
			t.Errorf("%v: labels = %q", loss, got)
		}
		if m.NumWords() != 3 || m.Quantized() || m.Version() != 12 {
			t.Errorf("%v: words %d, quantized %v, version %d", loss, m.NumWords(), m.Quantized(), m.Version())
		}
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	good := tinyModel(LossHS)
	tests := []struct {
		name   string
		mutate func(*testModel)
		bytes  func([]byte) []byte
		want   error
	}{
		{name: "empty", bytes: func([]byte) []byte { return nil }, want: ErrNotFastText},
		{name: "bad magic", bytes: func(b []byte) []byte { b[0] ^= 1; return b }, want: ErrNotFastText},
		{name: "future version", mutate: func(m *testModel) { m.version = 13 }, want: ErrVersion},
		{name: "zero dim", mutate: func(m *testModel) { m.args.Dim = 0 }, want: ErrCorrupt},
		{name: "unknown loss", mutate: func(m *testModel) { m.args.Loss = 9 }, want: ErrCorrupt},
		{name: "unknown model", mutate: func(m *testModel) { m.args.Model = 0 }, want: ErrCorrupt},
		{name: "negative maxn", mutate: func(m *testModel) { m.args.MaxN = -1 }, want: ErrCorrupt},
		{name: "bucket 0 with subwords", mutate: func(m *testModel) { m.args.MaxN = 3 }, want: ErrCorrupt},
		{name: "labels before words", mutate: func(m *testModel) { m.entries[0].label = true }, want: ErrCorrupt},
		{name: "input too small for buckets", mutate: func(m *testModel) { m.args.Bucket = 10 }, want: ErrCorrupt},
		{name: "pruned dense model", mutate: func(m *testModel) { m.pruneSize = 0 }, want: ErrCorrupt},
		{name: "output too small", mutate: func(m *testModel) { m.out = m.out[:2] }, want: ErrCorrupt},
		{name: "softmax output too small", mutate: func(m *testModel) { m.args.Loss = LossSoftmax }, want: ErrCorrupt},
		{name: "counts break the tree", mutate: func(m *testModel) { m.entries[4].count = 2e15 }, want: ErrCorrupt},
		{name: "no labels", mutate: func(m *testModel) { m.entries = m.entries[:3]; m.out = nil }, want: ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tm := good
			tm.entries = append([]entry(nil), good.entries...)
			if tt.mutate != nil {
				tt.mutate(&tm)
			}
			b := encodeModel(tm)
			if tt.bytes != nil {
				b = tt.bytes(b)
			}
			_, err := Load(b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Load: %v, want %v", err, tt.want)
			}
		})
	}
}

// TestLoadTruncated cuts a valid file at every length: each must fail
// cleanly.
func TestLoadTruncated(t *testing.T) {
	t.Parallel()
	for _, tm := range []testModel{tinyModel(LossHS), quantTiny(true)} {
		b := encodeModel(tm)
		if _, err := Load(b); err != nil {
			t.Fatalf("full file: %v", err)
		}
		for n := range len(b) {
			if _, err := Load(b[:n]); err == nil {
				t.Fatalf("Load of %d/%d bytes succeeded", n, len(b))
			}
		}
	}
}

func TestLoadFileMissing(t *testing.T) {
	t.Parallel()
	if _, err := LoadFile("testdata/no-such-model.bin"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadFile: %v, want ErrNotExist", err)
	}
}

func TestLoadLID(t *testing.T) {
	t.Parallel()
	m := lidModel(t)
	a := m.Args()
	if a.Model != ModelSupervised || a.Loss != LossHS || a.Dim != 16 || a.MinN != 2 || a.MaxN != 4 {
		t.Errorf("args = %+v", a)
	}
	if !m.Quantized() || len(m.Labels()) != 176 || m.Labels()[0] != "__label__en" {
		t.Errorf("quantized %v, %d labels, first %q", m.Quantized(), len(m.Labels()), m.Labels()[0])
	}
}

// FuzzLoad feeds arbitrary bytes to Load: it must return a model or an
// error, never panic, and any model it returns must predict without
// panicking.
func FuzzLoad(f *testing.F) {
	for _, loss := range []LossName{LossHS, LossSoftmax, LossOVA} {
		f.Add(encodeModel(tinyModel(loss)))
	}
	f.Add(encodeModel(quantTiny(true)))
	f.Add(encodeModel(quantTiny(false)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Load(b)
		if err != nil {
			if m != nil {
				t.Fatal("model and error both returned")
			}
			return
		}
		for _, text := range []string{"", "a b", "x y z </s>", "日本"} {
			_ = m.Predict(text, 0, 0)
		}
	})
}
