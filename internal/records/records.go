// Package records splits record files — JSON lines, CSV, plain lines and
// tar shards — into records, for batches that run a guest per record
// instead of per object. The planner scans an object once (Scan) to cut it
// into shards at record boundaries; a worker reads one shard's byte range
// and scans it again with the same rules, so the two always agree on where
// each record starts and ends.
//
// The rules: a line ends at '\n' ("\r\n" too; the '\r' is not part of the
// record); a last line without one is a record. JSON lines skips blank
// lines. CSV follows RFC 4180 (encoding/csv): a quoted field may hold
// newlines, and a row that does not parse is a record with an error. A tar
// record is a sample: the consecutive members whose names share a base
// name up to its first dot (WebDataset's layout: 000123.jpg, 000123.json).
package records

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Formats.
const (
	JSONL = "jsonl"
	CSV   = "csv"
	Lines = "lines"
	Tar   = "tar"
)

// DefaultMaxRecordBytes bounds one record.
const DefaultMaxRecordBytes = 16 << 20

// Config says how to read records.
type Config struct {
	// Format is JSONL, CSV, Lines or Tar.
	Format string `json:"format"`
	// Field is the JSON lines field whose value is a record's input; empty
	// means the whole line.
	Field string `json:"field,omitempty"`
	// Column is the CSV column whose value is a record's input, by index;
	// -1 means the whole row (as a JSON array).
	Column int `json:"column"`
	// Header says the CSV's first row names the columns (it is not a
	// record).
	Header bool `json:"header,omitempty"`
	// Member is the extension of a tar sample's member that is its input
	// ("jpg"); empty means the sample's first member.
	Member string `json:"member,omitempty"`
	// MaxRecordBytes bounds one record; DefaultMaxRecordBytes when 0.
	MaxRecordBytes int `json:"max_record_bytes,omitempty"`
}

// Validate checks c.
func (c Config) Validate() error {
	switch c.Format {
	case JSONL, Lines, Tar:
	case CSV:
		if c.Column < -1 {
			return fmt.Errorf("records: CSV column %d: want 0 or more (-1: the whole row)", c.Column)
		}
	default:
		return fmt.Errorf("records: format %q: want jsonl, csv, lines or tar", c.Format)
	}
	if c.MaxRecordBytes < 0 {
		return fmt.Errorf("records: max record bytes %d is negative", c.MaxRecordBytes)
	}
	return nil
}

func (c Config) maxRecord() int {
	if c.MaxRecordBytes > 0 {
		return c.MaxRecordBytes
	}
	return DefaultMaxRecordBytes
}

// Text reports whether the format's records are text (a guest speaking
// the records ABI can take them as JSON lines).
func (c Config) Text() bool { return c.Format != Tar }

// Record is one record of an object.
type Record struct {
	// Offset and End are the record's bytes in the object, End exclusive
	// (the line terminator included).
	Offset, End int64
	// Sample is a tar record's sample key.
	Sample string
	// Input is what a guest gets on stdin for this record: the line, the
	// field's text (a JSON string's contents; any other value as JSON),
	// the column's text, or the tar member's bytes. Set only when Scan is
	// asked for inputs.
	Input []byte
	// Value is the record's input as one JSON value (a string for text),
	// for guests that speak the records ABI. Set with Input, text formats
	// only.
	Value []byte
	// Err is why the record cannot be run ("not valid UTF-8", a CSV parse
	// error); Input and Value are empty then.
	Err string
}

// ErrRecordTooLarge means a record is over Config.MaxRecordBytes.
var ErrRecordTooLarge = errors.New("record too large")

// ErrMalformed means the bytes are not the format asked for where no
// record can stand for the problem: a corrupt tar header, a CSV without
// the header or column named. A failure to read the bytes is not one.
var ErrMalformed = errors.New("malformed record file")

// Scan reads the records in r, whose first byte is at offset base of the
// object. With inputs it fills each record's Input and Value (and checks
// them); without, only the offsets, which is all planning needs. The
// header row of a CSV with Config.Header is read when base is 0 and is
// not a record. An error ends the scan: r failed, a record is over the
// limit, or a tar stream is corrupt.
func Scan(r io.Reader, base int64, c Config, inputs bool) iter.Seq2[Record, error] {
	switch c.Format {
	case CSV:
		return scanCSV(r, base, c, inputs)
	case Tar:
		return scanTar(r, base, c, inputs)
	default:
		return scanLines(r, base, c, inputs)
	}
}

func scanLines(r io.Reader, base int64, c Config, inputs bool) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		br, skip, err := openObject(r, base, true)
		if err != nil {
			yield(Record{}, err)
			return
		}
		off := base + skip
		var long []byte
		for {
			chunk, err := br.ReadSlice('\n')
			if errors.Is(err, bufio.ErrBufferFull) {
				// A line longer than the buffer: gather it, within bounds.
				if len(long)+len(chunk) > c.maxRecord() {
					yield(Record{}, fmt.Errorf("%w: the line at offset %d is over %d bytes", ErrRecordTooLarge, off, c.maxRecord()))
					return
				}
				long = append(long, chunk...)
				continue
			}
			line := chunk
			if long != nil {
				long = append(long, chunk...)
				line, long = long, nil
			}
			if len(line) > c.maxRecord() {
				yield(Record{}, fmt.Errorf("%w: the line at offset %d is over %d bytes", ErrRecordTooLarge, off, c.maxRecord()))
				return
			}
			if len(line) > 0 {
				rec := Record{Offset: off, End: off + int64(len(line))}
				off = rec.End
				text := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
				skip := c.Format == JSONL && len(bytes.TrimSpace(text)) == 0
				if !skip {
					if inputs {
						lineInput(&rec, text, c)
					}
					if !yield(rec, nil) {
						return
					}
				}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(Record{}, err)
				return
			}
		}
	}
}

// lineInput fills a line's Input and Value, or its Err.
func lineInput(rec *Record, text []byte, c Config) {
	if !utf8.Valid(text) {
		rec.Err = "not valid UTF-8"
		return
	}
	if c.Format == Lines {
		rec.Input = bytes.Clone(text)
		rec.Value, _ = json.Marshal(string(text))
		return
	}
	if !json.Valid(text) {
		rec.Err = "not valid JSON"
		return
	}
	v := text
	if c.Field != "" {
		f, err := objectField(text, c.Field)
		if err != nil {
			rec.Err = err.Error()
			return
		}
		v = f
	}
	if plainString(v) {
		// A string without escapes: already compact, and its contents
		// are its bytes between the quotes (valid UTF-8, checked above).
		rec.Value = bytes.Clone(v)
		rec.Input = rec.Value[1 : len(rec.Value)-1 : len(rec.Value)-1]
		return
	}
	rec.Value = compact(v)
	var s string
	if json.Unmarshal(v, &s) == nil {
		rec.Input = []byte(s)
	} else {
		rec.Input = rec.Value
	}
}

// plainString reports whether v is a JSON string token without escapes.
func plainString(v []byte) bool {
	return len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && bytes.IndexByte(v[1:len(v)-1], '\\') < 0 && bytes.IndexByte(v[1:len(v)-1], '"') < 0
}

// objectField returns the value of member name of the JSON object text
// (valid JSON), the last one when the name repeats, as unmarshalling into
// a map[string]json.RawMessage finds it, without building the map.
func objectField(text []byte, name string) ([]byte, error) {
	i := skipSpace(text, 0)
	switch {
	case bytes.HasPrefix(text[i:], []byte("null")):
		return nil, errors.New("no field " + strconv.Quote(name))
	case i >= len(text) || text[i] != '{':
		return nil, errors.New("not a JSON object, so it has no field " + strconv.Quote(name))
	}
	var found []byte
	i++
	for {
		i = skipSpace(text, i)
		if text[i] == '}' {
			break
		}
		keyEnd := skipValue(text, i)
		key := text[i:keyEnd]
		i = skipSpace(text, keyEnd) + 1 // past ':'
		i = skipSpace(text, i)
		end := skipValue(text, i)
		if keyIs(key, name) {
			found = text[i:end]
		}
		i = skipSpace(text, end)
		if text[i] == ',' {
			i++
		}
	}
	if found == nil {
		return nil, errors.New("no field " + strconv.Quote(name))
	}
	return found, nil
}

// keyIs reports whether the JSON string token key decodes to name.
func keyIs(key []byte, name string) bool {
	body := key[1 : len(key)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body) == name
	}
	var s string
	return json.Unmarshal(key, &s) == nil && s == name
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at b[i], b valid
// JSON.
func skipValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

func compact(v []byte) []byte {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return bytes.Clone(v)
	}
	return b.Bytes()
}

// countingReader counts the bytes read through it and refuses to read
// more than max past mark (one record's bound, for readers that buffer a
// whole record).
// It keeps the first error of the reader under it other than io.EOF, so
// that a failure to read can be told from bytes that do not parse.
type countingReader struct {
	r       io.Reader
	n       int64
	mark    int64
	max     int64
	readErr error
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.max > 0 && c.n-c.mark > c.max {
		return 0, fmt.Errorf("%w: a record at offset %d is over %d bytes", ErrRecordTooLarge, c.mark, c.max)
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.readErr == nil {
		c.readErr = err
	}
	return n, err
}

// malformed wraps err, an error of a parser reading through c, in
// ErrMalformed unless the reader under it failed (or a record was over
// the bound), which err then is.
func (c *countingReader) malformed(err error) error {
	if c.readErr != nil || errors.Is(err, ErrRecordTooLarge) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrMalformed, err)
}

func scanCSV(r io.Reader, base int64, c Config, inputs bool) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		br, skip, err := openObject(r, base, true)
		if err != nil {
			yield(Record{}, err)
			return
		}
		cr := &countingReader{r: br, max: int64(c.maxRecord())}
		rd := csv.NewReader(cr)
		rd.FieldsPerRecord = -1
		rd.ReuseRecord = true
		// A row's start, after the previous row (or the byte-order mark).
		start := skip
		first := base == 0
		for {
			cr.mark = start - skip
			row, err := rd.Read()
			end := rd.InputOffset() + skip
			if err == io.EOF {
				return
			}
			var pe *csv.ParseError
			if err != nil && !errors.As(err, &pe) {
				yield(Record{}, err)
				return
			}
			rec := Record{Offset: base + start, End: base + end}
			start = end
			if first && c.Header {
				first = false
				continue
			}
			first = false
			if inputs {
				if err != nil {
					rec.Err = "CSV: " + pe.Err.Error()
				} else {
					csvInput(&rec, row, c)
				}
			}
			if !yield(rec, nil) {
				return
			}
		}
	}
}

func csvInput(rec *Record, row []string, c Config) {
	for _, f := range row {
		if !utf8.ValidString(f) {
			rec.Err = "not valid UTF-8"
			return
		}
	}
	if c.Column < 0 {
		rec.Value, _ = json.Marshal(row)
		rec.Input = rec.Value
		return
	}
	if c.Column >= len(row) {
		rec.Err = fmt.Sprintf("CSV: the row has %d fields, no column %d", len(row), c.Column)
		return
	}
	rec.Input = []byte(row[c.Column])
	rec.Value, _ = json.Marshal(row[c.Column])
}

// CSVHeader reads the header row of a CSV and returns the index of
// column name (or its number: "0", "1", ...).
func CSVHeader(r io.Reader, name string, max int) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	br, _, err := openObject(r, 0, true)
	if err != nil {
		return 0, err
	}
	cr := &countingReader{r: br, max: int64(max)}
	rd := csv.NewReader(cr)
	rd.FieldsPerRecord = -1
	row, err := rd.Read()
	if err != nil {
		return 0, cr.malformed(fmt.Errorf("CSV header: %w", err))
	}
	for i, h := range row {
		if strings.TrimSpace(h) == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w: CSV header has no column %q (it has %s)", ErrMalformed, name, strings.Join(row, ", "))
}

// utf8BOM is the byte-order mark some tools (spreadsheet exports, .NET,
// PowerShell) write at the start of UTF-8 text: it is not part of the first
// record, as Python's utf-8-sig, pandas and encoding/csv users expect.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// openObject buffers r, bytes of an object from offset base. At the
// object's start, a compressed file is refused with ErrMalformed (its
// bytes would be one garbled record after another: records are read from
// uncompressed objects, which is what byte ranges can split), and for text
// a byte-order mark is read past: it belongs to no record, and skip says
// how many bytes it took (0 or 3).
func openObject(r io.Reader, base int64, text bool) (br *bufio.Reader, skip int64, err error) {
	br = bufio.NewReaderSize(r, 64<<10)
	if base != 0 {
		return br, 0, nil
	}
	head, _ := br.Peek(10) // a short object or a read error: the scan tells
	if name := compression(head); name != "" {
		return nil, 0, fmt.Errorf("%w: the object is %s-compressed; record batches read uncompressed JSON lines, CSV, text and tar files: decompress it first", ErrMalformed, name)
	}
	if text && bytes.HasPrefix(head, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
		skip = int64(len(utf8BOM))
	}
	return br, skip, nil
}

// compression names the compressed format whose file starts with head, or
// is "". None of these starts can open UTF-8 text or a tar archive (whose
// first bytes are a member's name).
func compression(head []byte) string {
	for _, m := range []struct {
		name  string
		magic string
	}{
		{"gzip", "\x1f\x8b"},
		{"zstd", "\x28\xb5\x2f\xfd"},
		{"xz", "\xfd7zXZ\x00"},
		{"zip", "PK\x03\x04"},
	} {
		if bytes.HasPrefix(head, []byte(m.magic)) {
			return m.name
		}
	}
	// bzip2: "BZh", the block size, then a block's or the stream end's magic.
	if len(head) >= 10 && string(head[:3]) == "BZh" && head[3] >= '1' && head[3] <= '9' &&
		(string(head[4:10]) == "1AY&SY" || string(head[4:10]) == "\x17\x72\x45\x38\x50\x90") {
		return "bzip2"
	}
	return ""
}

// SampleKey is a tar member's sample: its name up to the first dot of its
// base name.
func SampleKey(name string) string {
	dir, file := path.Split(name)
	if i := strings.IndexByte(file, '.'); i >= 0 {
		file = file[:i]
	}
	return dir + file
}

func scanTar(r io.Reader, base int64, c Config, inputs bool) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		br, _, err := openObject(r, base, false)
		if err != nil {
			yield(Record{}, err)
			return
		}
		cr := &countingReader{r: br}
		tr := tar.NewReader(cr)
		var cur *Record
		var members int
		// next is where the next member's header starts: after the last
		// member's data, padded to 512 bytes.
		next := int64(0)
		flush := func() bool {
			if cur == nil {
				return true
			}
			if inputs && cur.Input == nil && cur.Err == "" {
				cur.Err = "the sample has no member with extension " + strconv.Quote(c.Member)
			}
			ok := yield(*cur, nil)
			cur = nil
			return ok
		}
		for {
			hdrStart := next
			h, err := tr.Next()
			if err == io.EOF {
				flush()
				return
			}
			if err != nil {
				yield(Record{}, cr.malformed(fmt.Errorf("tar at offset %d: %w", base+hdrStart, err)))
				return
			}
			dataStart := cr.n
			// archive/tar reads exactly the header blocks before the data
			// and nothing of the data yet.
			next = dataStart + (h.Size+511)/512*512
			if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
				if cur != nil {
					cur.End = base + next
				}
				continue
			}
			key := SampleKey(h.Name)
			if cur == nil || key != cur.Sample {
				if !flush() {
					return
				}
				cur = &Record{Offset: base + hdrStart, Sample: key}
				members = 0
			}
			members++
			cur.End = base + next
			if !inputs {
				continue
			}
			ext := strings.TrimPrefix(path.Ext(h.Name), ".")
			want := c.Member == "" && members == 1 || c.Member != "" && strings.EqualFold(ext, c.Member)
			if !want || cur.Input != nil {
				continue
			}
			if h.Size > int64(c.maxRecord()) {
				cur.Err = fmt.Sprintf("member %s is %d bytes, over the %d a record may hold", h.Name, h.Size, c.maxRecord())
				continue
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				yield(Record{}, cr.malformed(fmt.Errorf("tar member %s: %w", h.Name, err)))
				return
			}
			cur.Input = b
		}
	}
}

// Shard is a run of consecutive records of one object: bytes [Start, End)
// holding Count records, the first being the object's record First.
type Shard struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
	First int64 `json:"first"`
	Count int64 `json:"count"`
}

// Default shard bounds.
const (
	DefaultShardBytes   = 8 << 20
	DefaultShardRecords = 10000
)

// Split groups records into shards of at most maxBytes bytes and
// maxRecords records (a record larger than maxBytes is a shard of its
// own). Bytes between records (a JSON lines file's blank lines, a CSV
// header) belong to no shard. An error ends the split; when it is where
// the object's records end (ErrRecordTooLarge, ErrMalformed), after the
// shard of the records read before it.
func Split(recs iter.Seq2[Record, error], maxBytes, maxRecords int64) iter.Seq2[Shard, error] {
	return func(yield func(Shard, error) bool) {
		var cur Shard
		var index int64
		have := false
		for rec, err := range recs {
			if err != nil {
				// Where the object's records end (a record over the bound,
				// bytes that are not the format), the records read before
				// are whole and keep their shard. A failure to read ends
				// the split without it: the same bytes read again may go
				// on past where this read stopped.
				if have && (errors.Is(err, ErrRecordTooLarge) || errors.Is(err, ErrMalformed)) && !yield(cur, nil) {
					return
				}
				yield(Shard{}, err)
				return
			}
			if have && (rec.End-cur.Start > maxBytes || cur.Count >= maxRecords || rec.Offset != cur.End) {
				// A gap (skipped bytes) also ends a shard only when the
				// shard is full; otherwise the gap joins it.
				if rec.End-cur.Start > maxBytes || cur.Count >= maxRecords {
					if !yield(cur, nil) {
						return
					}
					have = false
				}
			}
			if !have {
				cur = Shard{Start: rec.Offset, First: index}
				have = true
			}
			cur.End = rec.End
			cur.Count++
			index++
		}
		if have {
			yield(cur, nil)
		}
	}
}
