package fasttext

import (
	"slices"
	"testing"
)

func TestHash(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want uint32
	}{
		{"", 0x811c9dc5},
		{"a", 0xe40c292c}, // plain FNV-1a for ASCII
		{"</s>", 0xd79c9359},
		{"<ab>", 0x2835e92e},
		// Bytes >= 0x80 are sign-extended before the xor.
		{"é", 0x3cfa68c1},
		{"日本", 0xf8378251},
		{"__label__en", 0xcb3a79ee},
	}
	for _, tt := range tests {
		if got := hash(tt.in); got != tt.want {
			t.Errorf("hash(%q) = %#x, want %#x", tt.in, got, tt.want)
		}
		if got := hash([]byte(tt.in)); got != tt.want {
			t.Errorf("hash([]byte(%q)) = %#x, want %#x", tt.in, got, tt.want)
		}
	}
}

func tokens(text string) []string {
	var out []string
	rest := []byte(text)
	for {
		tok, next, _ := nextToken(rest)
		out = append(out, string(tok))
		rest = next
		if string(tok) == eos {
			return out
		}
	}
}

func TestNextToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"", []string{eos}},
		{"   ", []string{eos}},
		{"hello world", []string{"hello", "world", eos}},
		{" \t\v\fa\r\x00b  ", []string{"a", "b", eos}},
		{"first line\nsecond line", []string{"first", "line", eos}},
		{"\nafter newline", []string{eos}},
		{"word\n", []string{"word", eos}},
		{"a </s> b", []string{"a", eos}},
		{"a</s> b", []string{"a</s>", "b", eos}},
		{"日本語 テキスト", []string{"日本語", "テキスト", eos}},
		{"\xff\xfe bad", []string{"\xff\xfe", "bad", eos}},
	}
	for _, tt := range tests {
		if got := tokens(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("tokens(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSubwords(t *testing.T) {
	t.Parallel()
	const bucket = 1 << 20
	tests := []struct {
		word       string
		minn, maxn int32
		want       []string
	}{
		{"<ab>", 2, 3, []string{"<a", "<ab", "ab", "ab>", "b>"}},
		{"<ab>", 1, 1, []string{"a", "b"}}, // the bare "<" and ">" are skipped
		{"<é>", 1, 2, []string{"<é", "é", "é>"}},
		{"<日本>", 3, 3, []string{"<日本", "日本>"}},
		{"<ab>", 5, 6, nil},
		{"<ab>", 0, 0, nil},
	}
	for _, tt := range tests {
		d := &dictionary{minn: tt.minn, maxn: tt.maxn, bucket: bucket, pruneSize: -1, nwords: 7}
		got := d.subwords(nil, []byte(tt.word))
		var want []int32
		for _, g := range tt.want {
			want = append(want, 7+int32(hash(g)%bucket))
		}
		if !slices.Equal(got, want) {
			t.Errorf("subwords(%q, %d..%d) = %v, want rows of %q = %v", tt.word, tt.minn, tt.maxn, got, tt.want, want)
		}
	}
}

func TestPushHash(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		pruneSize int64
		prune     map[int32]int32
		id        int32
		want      []int32
	}{
		{"unpruned", -1, nil, 4, []int32{14}},
		{"negative id", -1, nil, -1, nil},
		{"all pruned", 0, nil, 4, nil},
		{"kept", 2, map[int32]int32{4: 0, 9: 1}, 9, []int32{11}},
		{"dropped", 2, map[int32]int32{4: 0, 9: 1}, 5, nil},
	}
	for _, tt := range tests {
		d := &dictionary{nwords: 10, pruneSize: tt.pruneSize, prune: newPrunedIndex(tt.prune, 16)}
		if got := d.pushHash(nil, tt.id); !slices.Equal(got, tt.want) {
			t.Errorf("%s: pushHash(%d) = %v, want %v", tt.name, tt.id, got, tt.want)
		}
	}
}

func TestLineRows(t *testing.T) {
	t.Parallel()
	const bucket = 1000
	wordHash := func(s string) uint64 { return uint64(int64(int32(hash(s)))) }
	bigram := func(a, b string) int32 {
		return 3 + int32((wordHash(a)*116049371+wordHash(b))%bucket)
	}
	d := &dictionary{
		entries: []entry{{word: "a"}, {word: "b"}, {word: eos}, {word: "__label__x", label: true}},
		nwords:  3, nlabels: 1, pruneSize: -1, bucket: bucket, wordNgrams: 2,
		ids: map[string]int32{"a": 0, "b": 1, eos: 2, "__label__x": 3},
	}
	tests := []struct {
		in   string
		want []int32
	}{
		{"", []int32{2}},
		{"a b", []int32{0, 1, 2, bigram("a", "b"), bigram("b", eos)}},
		// Labels are dropped and do not break word n-grams.
		{"a __label__x __label__unknown b", []int32{0, 1, 2, bigram("a", "b"), bigram("b", eos)}},
		// An unknown word has no row but still takes part in word n-grams.
		{"zz a", []int32{0, 2, bigram("zz", "a"), bigram("a", eos)}},
	}
	for _, tt := range tests {
		var s scratch
		if got := d.lineRows([]byte(tt.in), &s); !slices.Equal(got, tt.want) {
			t.Errorf("lineRows(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestPrunedIndex checks the bitset index against the map it is built from,
// for every bucket: on lid.176's pruneidx (which takes the bitset) and on
// a few kept buckets out of many (which keeps the map).
func TestPrunedIndex(t *testing.T) {
	t.Parallel()
	m := lidModel(t)
	pruneidx := map[int32]int32{}
	for id := range m.dict.bucket {
		if v, ok := m.dict.prune.row(id); ok {
			pruneidx[id] = v
		}
	}
	if m.dict.prune.bits == nil || int64(len(pruneidx)) != m.dict.pruneSize {
		t.Fatalf("lid.176: bitset %t, %d buckets found, pruneidx has %d", m.dict.prune.bits != nil, len(pruneidx), m.dict.pruneSize)
	}
	sparse := map[int32]int32{3: 7, 64: 1, 1 << 20: 0, -5: 2, 1<<30 + 1: 4}
	for _, tt := range []struct {
		name   string
		idx    map[int32]int32
		bucket int32
		bitset bool
	}{
		{"lid.176", pruneidx, m.dict.bucket, true},
		{"sparse", sparse, 1 << 30, false},
		{"dense", map[int32]int32{0: 3, 63: 1, 64: 2, 128: 0, 200: 9, 255: 5}, 256, true},
	} {
		x := newPrunedIndex(tt.idx, tt.bucket)
		if (x.bits != nil) != tt.bitset {
			t.Errorf("%s: bitset %t, want %t", tt.name, x.bits != nil, tt.bitset)
		}
		for id := range min(tt.bucket, 1<<21) {
			v, ok := x.row(id)
			w, wok := tt.idx[id]
			if v != w || ok != wok {
				t.Fatalf("%s: row(%d) = %d, %t; pruneidx has %d, %t", tt.name, id, v, ok, w, wok)
			}
		}
	}
}
