package fasttext

import (
	"fmt"
	"strings"
)

// Special tokens, as in fastText's dictionary.cc.
const (
	eos         = "</s>"      // end of line; its entry has no subwords
	bow         = "<"         // prepended to a word before taking char n-grams
	eow         = ">"         // appended likewise
	labelPrefix = "__label__" // fastText's default -label; not saved in models
)

// entry is one dictionary word or label.
type entry struct {
	word  string
	count int64
	label bool
}

// dictionary is fastText's Dictionary as loaded from a model: words first,
// then labels, plus the subword settings needed to map a line of text to
// input-matrix rows.
type dictionary struct {
	entries []entry
	nwords  int32
	nlabels int32
	ntokens int64
	// pruneSize is the pruneidx size field: negative when the model was
	// never pruned, 0 when every n-gram bucket was pruned away.
	pruneSize int64
	prune     prunedIndex // hashed n-gram bucket -> row offset after nwords
	pruneTop  int64       // the largest row offset in pruneidx; -1 if none
	ids       map[string]int32

	minn, maxn, bucket, wordNgrams int32
}

// readDictionary reads the dictionary section. Entries must come words
// first, then labels, as fastText's training always writes them.
func readDictionary(r *reader, a *Args) (*dictionary, error) {
	size, err := r.i32("dict.size")
	if err != nil {
		return nil, err
	}
	nwords, err := r.i32("dict.nwords")
	if err != nil {
		return nil, err
	}
	nlabels, err := r.i32("dict.nlabels")
	if err != nil {
		return nil, err
	}
	ntokens, err := r.i64("dict.ntokens")
	if err != nil {
		return nil, err
	}
	pruneSize, err := r.i64("dict.pruneidx_size")
	if err != nil {
		return nil, err
	}
	if size < 0 || nwords < 0 || nlabels < 0 || int64(nwords)+int64(nlabels) != int64(size) {
		return nil, fmt.Errorf("%w: dictionary size %d, nwords %d, nlabels %d", ErrCorrupt, size, nwords, nlabels)
	}
	// An entry is at least a NUL, an int64 count and a type byte.
	const minEntry = 1 + 8 + 1
	if int64(size) > int64(r.remaining()/minEntry) {
		return nil, fmt.Errorf("%w: dictionary claims %d entries but only %d bytes are left", ErrCorrupt, size, r.remaining())
	}
	d := &dictionary{
		entries:    make([]entry, size),
		nwords:     nwords,
		nlabels:    nlabels,
		ntokens:    ntokens,
		pruneSize:  pruneSize,
		pruneTop:   -1,
		ids:        make(map[string]int32, size),
		minn:       a.MinN,
		maxn:       a.MaxN,
		bucket:     a.Bucket,
		wordNgrams: a.WordNgrams,
	}
	for i := range d.entries {
		e := &d.entries[i]
		if e.word, err = r.cstring("dictionary word"); err != nil {
			return nil, err
		}
		if e.count, err = r.i64("dictionary count"); err != nil {
			return nil, err
		}
		typ, err := r.u8("dictionary entry type")
		if err != nil {
			return nil, err
		}
		switch {
		case typ > 1:
			return nil, fmt.Errorf("%w: entry %d has type %d", ErrCorrupt, i, typ)
		case (typ == 1) != (int32(i) >= nwords):
			return nil, fmt.Errorf("%w: entry %d (type %d) is out of order: words must precede labels", ErrCorrupt, i, typ)
		}
		e.label = typ == 1
		// A repeated word resolves to its last entry, as in fastText's
		// word2int_ table.
		d.ids[e.word] = int32(i)
	}
	if pruneSize > 0 {
		if pruneSize > int64(r.remaining()/8) {
			return nil, fmt.Errorf("%w: pruneidx claims %d pairs but only %d bytes are left", ErrCorrupt, pruneSize, r.remaining())
		}
		pruneidx := make(map[int32]int32, pruneSize)
		for range pruneSize {
			k, err := r.i32("pruneidx key")
			if err != nil {
				return nil, err
			}
			v, err := r.i32("pruneidx value")
			if err != nil {
				return nil, err
			}
			if v < 0 {
				return nil, fmt.Errorf("%w: pruneidx maps %d to negative row %d", ErrCorrupt, k, v)
			}
			pruneidx[k] = v
		}
		for _, v := range pruneidx { // a repeated bucket keeps its last row
			d.pruneTop = max(d.pruneTop, int64(v))
		}
		d.prune = newPrunedIndex(pruneidx, d.bucket)
	}
	return d, nil
}

// pruned reports whether the model went through `fasttext quantize
// -cutoff`, fastText's Dictionary::isPruned.
func (d *dictionary) pruned() bool { return d.pruneSize >= 0 }

// maxRow is one past the largest input-matrix row a line can address.
func (d *dictionary) maxRow() int64 {
	rows := int64(d.nwords)
	switch {
	case d.pruneSize > 0:
		rows += d.pruneTop + 1
	case d.pruneSize < 0:
		rows += int64(d.bucket)
	}
	return rows
}

// label returns the text of label number id (0-based among labels).
func (d *dictionary) label(id int32) string { return d.entries[d.nwords+id].word }

// labelCounts returns the labels' counts in label order.
func (d *dictionary) labelCounts() []int64 {
	out := make([]int64, 0, d.nlabels)
	for _, e := range d.entries[d.nwords:] {
		out = append(out, e.count)
	}
	return out
}

// hash is fastText's FNV-1a variant: each byte is sign-extended, as a
// signed char converted to uint32, before the xor. Bytes >= 0x80 therefore
// xor in 0xffffff00|b; every released model was trained that way.
func hash[S ~string | ~[]byte](s S) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(int8(s[i]))
		h *= 16777619
	}
	return h
}

// isSpace reports the bytes fastText's readWord splits on.
func isSpace(c byte) bool {
	switch c {
	case ' ', '\n', '\r', '\t', '\v', '\f', 0:
		return true
	}
	return false
}

// nextToken returns the next token of a line and the rest of the text,
// following fastText's readWord on a stream holding text+"\n": whitespace
// separates tokens and the first '\n' (or the end of text) yields "</s>".
// ok is false once "</s>" has been returned.
func nextToken(text []byte) (tok, rest []byte, ok bool) {
	i := 0
	for i < len(text) && isSpace(text[i]) && text[i] != '\n' {
		i++
	}
	if i == len(text) || text[i] == '\n' {
		return []byte(eos), nil, true
	}
	j := i
	for j < len(text) && !isSpace(text[j]) {
		j++
	}
	return text[i:j], text[j:], true
}

// pushHash appends the input row of hashed n-gram bucket id, remapped
// through pruneidx when the model was pruned (Dictionary::pushHash).
func (d *dictionary) pushHash(rows []int32, id int32) []int32 {
	if d.pruneSize == 0 || id < 0 {
		return rows
	}
	if d.pruneSize > 0 {
		v, ok := d.prune.row(id)
		if !ok {
			return rows
		}
		id = v
	}
	return append(rows, d.nwords+id)
}

// subwords appends the rows of the character n-grams of word, which must
// already be wrapped in "<" and ">" (Dictionary::computeSubwords). n-grams
// start on UTF-8 lead bytes and count characters, not bytes; single
// characters at the word's ends (the bare "<" and ">") are skipped.
func (d *dictionary) subwords(rows []int32, word []byte) []int32 {
	// fastText compares the size_t n with the int minn and maxn, so they
	// are taken as unsigned here too (the loader rejects negative ones).
	minn, maxn := uint64(uint32(d.minn)), uint64(uint32(d.maxn))
	for i := 0; i < len(word); i++ {
		if word[i]&0xC0 == 0x80 {
			continue
		}
		j := i
		for n := uint64(1); j < len(word) && n <= maxn; n++ {
			j++
			for j < len(word) && word[j]&0xC0 == 0x80 {
				j++
			}
			if n >= minn && !(n == 1 && (i == 0 || j == len(word))) {
				h := int32(hash(word[i:j]) % uint32(d.bucket))
				rows = d.pushHash(rows, h)
			}
		}
	}
	return rows
}

// scratch holds per-call buffers so that a line is turned into rows
// without allocating in the steady state.
type scratch struct {
	rows   []int32
	hashes []int32
	word   []byte
}

// lineRows maps one line of text to input-matrix rows exactly as fastText's
// Dictionary::getLine does for a supervised model: for each word token its
// own row (if in the vocabulary) and its char n-gram buckets, then the word
// n-gram buckets. Tokens that look like labels are dropped; reading stops
// at the first newline or a literal "</s>" token.
func (d *dictionary) lineRows(text []byte, s *scratch) []int32 {
	rows, hashes := s.rows[:0], s.hashes[:0]
	for rest := text; ; {
		tok, next, _ := nextToken(rest)
		rest = next
		h := hash(tok)
		wid, known := d.ids[string(tok)]
		var isLabel bool
		if known {
			isLabel = d.entries[wid].label
		} else {
			isLabel = strings.HasPrefix(string(tok), labelPrefix)
		}
		if !isLabel {
			rows = d.addSubwords(rows, tok, wid, known, s)
			hashes = append(hashes, int32(h))
		}
		if string(tok) == eos {
			break
		}
	}
	rows = d.addWordNgrams(rows, hashes)
	s.rows, s.hashes = rows, hashes
	return rows
}

// addSubwords is Dictionary::addSubwords: an out-of-vocabulary token gives
// its char n-grams only; a known word gives its own row and, unless maxn is
// 0, its char n-grams.
func (d *dictionary) addSubwords(rows []int32, tok []byte, wid int32, known bool, s *scratch) []int32 {
	isEOS := string(tok) == eos
	if known && d.maxn <= 0 {
		return append(rows, wid)
	}
	if known {
		rows = append(rows, wid)
	}
	if isEOS {
		return rows
	}
	s.word = append(append(append(s.word[:0], bow...), tok...), eow...)
	return d.subwords(rows, s.word)
}

// addWordNgrams is Dictionary::addWordNgrams. The 32-bit word hashes are
// stored as int32 and widen to uint64 with sign extension, as in fastText.
func (d *dictionary) addWordNgrams(rows, hashes []int32) []int32 {
	n := int64(d.wordNgrams)
	for i := range hashes {
		h := uint64(int64(hashes[i]))
		for j := i + 1; j < len(hashes) && int64(j) < int64(i)+n; j++ {
			h = h*116049371 + uint64(int64(hashes[j]))
			rows = d.pushHash(rows, int32(h%uint64(d.bucket)))
		}
	}
	return rows
}
