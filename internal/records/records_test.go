package records

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func scanAll(t *testing.T, data []byte, base int64, c Config) []Record {
	t.Helper()
	var out []Record
	for rec, err := range Scan(bytes.NewReader(data), base, c, true) {
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		out = append(out, rec)
	}
	return out
}

// inputs returns each record's input, or "ERR:" and its error.
func inputs(recs []Record) []string {
	var out []string
	for _, r := range recs {
		if r.Err != "" {
			out = append(out, "ERR:"+r.Err)
		} else {
			out = append(out, string(r.Input))
		}
	}
	return out
}

// checkSplits splits data at every shard size from 1 byte up and checks
// that reading each shard's bytes on its own gives exactly the records of
// a whole scan, each once, in order.
func checkSplits(t *testing.T, name string, data []byte, c Config) {
	t.Helper()
	whole := scanAll(t, data, 0, c)
	for _, maxBytes := range []int64{1, 2, 3, 5, 7, 16, 64, 1 << 20} {
		for _, maxRecords := range []int64{1, 2, 3, 1000} {
			var got []Record
			var count int64
			for sh, err := range Split(Scan(bytes.NewReader(data), 0, c, false), maxBytes, maxRecords) {
				if err != nil {
					t.Fatalf("%s: split: %v", name, err)
				}
				if sh.First != count {
					t.Fatalf("%s: shard %+v starts at record %d, want %d", name, sh, sh.First, count)
				}
				part := scanAll(t, data[sh.Start:sh.End], sh.Start, c)
				if int64(len(part)) != sh.Count {
					t.Fatalf("%s (%d bytes, %d records): shard %+v reads %d records", name, maxBytes, maxRecords, sh, len(part))
				}
				got = append(got, part...)
				count += sh.Count
			}
			if !slices.Equal(inputs(got), inputs(whole)) {
				t.Fatalf("%s (%d bytes, %d records): shards give %q, the whole scan %q", name, maxBytes, maxRecords, inputs(got), inputs(whole))
			}
			for i := range got {
				if got[i].Offset != whole[i].Offset || got[i].End != whole[i].End || got[i].Sample != whole[i].Sample {
					t.Fatalf("%s: record %d at %d-%d in its shard, %d-%d in the whole", name, i, got[i].Offset, got[i].End, whole[i].Offset, whole[i].End)
				}
			}
		}
	}
}

func TestLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, data string
		want       []string
	}{
		{"plain", "a\nbb\nccc\n", []string{"a", "bb", "ccc"}},
		{"no final newline", "a\nbb\nccc", []string{"a", "bb", "ccc"}},
		{"CRLF", "a\r\nbb\r\n\r\nc", []string{"a", "bb", "", "c"}},
		{"empty lines are records", "\n\nx\n", []string{"", "", "x"}},
		{"a lone CR stays", "a\rb\n", []string{"a\rb"}},
		{"invalid UTF-8", "ok\n\xff\xfe\nfine\n", []string{"ok", "ERR:not valid UTF-8", "fine"}},
		{"empty", "", nil},
		{"byte-order mark", "\xEF\xBB\xBFa\nb\n", []string{"a", "b"}},
		{"a mark past the start stays", "a\n\xEF\xBB\xBFb\n", []string{"a", "\uFEFFb"}},
		{"only a mark", "\xEF\xBB\xBF", nil},
		{"a mark and an empty line", "\xEF\xBB\xBF\n", []string{""}},
	} {
		c := Config{Format: Lines}
		if got := inputs(scanAll(t, []byte(tc.data), 0, c)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
		checkSplits(t, tc.name, []byte(tc.data), c)
	}
}

func TestJSONL(t *testing.T) {
	t.Parallel()
	data := "{\"text\":\"hello\"}\r\n\n   \n{\"text\":\"two\\nlines\",\"n\":1}\n{\"n\":2}\n[1]\n{bad\n{\"text\":{\"a\": 1}}\n{\"text\":\"last\"}"
	c := Config{Format: JSONL, Field: "text"}
	want := []string{"hello", "two\nlines", `ERR:no field "text"`, `ERR:not a JSON object, so it has no field "text"`, "ERR:not valid JSON", `{"a":1}`, "last"}
	recs := scanAll(t, []byte(data), 0, c)
	if got := inputs(recs); !slices.Equal(got, want) {
		t.Fatalf("inputs %q, want %q", got, want)
	}
	if string(recs[1].Value) != `"two\nlines"` || string(recs[5].Value) != `{"a":1}` {
		t.Errorf("values %s, %s", recs[1].Value, recs[5].Value)
	}
	checkSplits(t, "jsonl field", []byte(data), c)
	bom := "\xEF\xBB\xBF" + data
	if got := inputs(scanAll(t, []byte(bom), 0, c)); !slices.Equal(got, want) {
		t.Errorf("after a byte-order mark: inputs %q, want %q", got, want)
	}
	checkSplits(t, "jsonl after a byte-order mark", []byte(bom), c)
	whole := Config{Format: JSONL}
	if got := inputs(scanAll(t, []byte("{\"a\": 1}\n\"s\"\n"), 0, whole)); !slices.Equal(got, []string{`{"a":1}`, "s"}) {
		t.Errorf("whole lines: %q", got)
	}
}

func TestCSV(t *testing.T) {
	t.Parallel()
	data := "id,text\r\n1,hello\r\n2,\"multi\nline, with comma\"\n3,\"quote \"\"inside\"\"\"\n4,bad\"quote\n5,short\n6\n7,\"last\""
	c := Config{Format: CSV, Column: 1, Header: true}
	want := []string{"hello", "multi\nline, with comma", `quote "inside"`, `ERR:CSV: bare " in non-quoted-field`, "short", "ERR:CSV: the row has 1 fields, no column 1", "last"}
	if got := inputs(scanAll(t, []byte(data), 0, c)); !slices.Equal(got, want) {
		t.Fatalf("inputs %q, want %q", got, want)
	}
	checkSplits(t, "csv", []byte(data), c)
	if i, err := CSVHeader(strings.NewReader(data), "text", 1<<20); err != nil || i != 1 {
		t.Errorf("CSVHeader = %d, %v", i, err)
	}
	if _, err := CSVHeader(strings.NewReader(data), "nope", 1<<20); err == nil || !strings.Contains(err.Error(), "id, text") {
		t.Errorf("CSVHeader of a missing column: %v", err)
	}
	// A byte-order mark (spreadsheet exports) is not part of the header,
	// nor of the first row of a CSV without one.
	bom := "\xEF\xBB\xBF" + data
	if got := inputs(scanAll(t, []byte(bom), 0, c)); !slices.Equal(got, want) {
		t.Errorf("after a byte-order mark: inputs %q, want %q", got, want)
	}
	checkSplits(t, "csv after a byte-order mark", []byte(bom), c)
	if i, err := CSVHeader(strings.NewReader(bom), "id", 1<<20); err != nil || i != 0 {
		t.Errorf("CSVHeader after a byte-order mark = %d, %v", i, err)
	}
	noHeader := Config{Format: CSV, Column: 0}
	if got := inputs(scanAll(t, []byte("\xEF\xBB\xBFa,b\nc,d\n"), 0, noHeader)); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("no header, after a byte-order mark: %q", got)
	}
	checkSplits(t, "csv without header after a byte-order mark", []byte("\xEF\xBB\xBFa,b\nc,\"d\ne\"\nf,g"), noHeader)
	row := Config{Format: CSV, Column: -1}
	if got := inputs(scanAll(t, []byte("a,b\nc,\"d\ne\"\n"), 0, row)); !slices.Equal(got, []string{`["a","b"]`, `["c","d\ne"]`}) {
		t.Errorf("whole rows: %q", got)
	}
}

func writeTar(t *testing.T, members ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i, name := range members {
		if strings.HasSuffix(name, "/") {
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		body := strings.Repeat(fmt.Sprintf("<%s:%d>", name, i), 1+i*37)
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}
		if i%3 == 0 {
			h.PAXRecords = map[string]string{"comment": strings.Repeat("p", 700)} // a pax header before the member
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestTar(t *testing.T) {
	t.Parallel()
	data := writeTar(t, "a/000001.jpg", "a/000001.json", "a/000002.json", "a/000002.jpg", "dir/", "a/000003.txt", "b/000001.jpg", "long-name-"+strings.Repeat("x", 120)+".tar.gz.jpg")
	c := Config{Format: Tar, Member: "jpg"}
	recs := scanAll(t, data, 0, c)
	var samples []string
	for _, r := range recs {
		samples = append(samples, r.Sample)
	}
	if want := []string{"a/000001", "a/000002", "a/000003", "b/000001", "long-name-" + strings.Repeat("x", 120)}; !slices.Equal(samples, want) {
		t.Fatalf("samples %q, want %q", samples, want)
	}
	if !strings.HasPrefix(string(recs[1].Input), "<a/000002.jpg:3>") || recs[2].Err != `the sample has no member with extension "jpg"` {
		t.Fatalf("inputs: %.30q, %q", recs[1].Input, recs[2].Err)
	}
	checkSplits(t, "tar", data, c)
	checkSplits(t, "tar first member", data, Config{Format: Tar})
	// A corrupt stream is an error of the scan, not a record.
	bad := append([]byte{}, data...)
	copy(bad[100:], "garbage!")
	var err error
	for _, e := range Scan(bytes.NewReader(bad), 0, c, true) {
		if e != nil {
			err = e
		}
	}
	if err == nil {
		t.Fatal("a corrupt tar header scanned without an error")
	}
}

func TestRecordBound(t *testing.T) {
	t.Parallel()
	c := Config{Format: Lines, MaxRecordBytes: 100}
	long := "short\n" + strings.Repeat("x", 200<<10) + "\nafter\n"
	var n int
	var err error
	for _, e := range Scan(strings.NewReader(long), 0, c, false) {
		if e != nil {
			err = e
			break
		}
		n++
	}
	if n != 1 || err == nil || !strings.Contains(err.Error(), "over 100 bytes") {
		t.Fatalf("%d records, %v; want 1 and a too-large error", n, err)
	}
	cc := Config{Format: CSV, Column: 0, MaxRecordBytes: 1000}
	err = nil
	for _, e := range Scan(strings.NewReader("a\n\""+strings.Repeat("y", 1<<20)+"\"\n"), 0, cc, true) {
		if e != nil {
			err = e
		}
	}
	if err == nil || !strings.Contains(err.Error(), "record too large") {
		t.Fatalf("a 1 MiB CSV field under a 1000-byte bound: %v", err)
	}
}

// failingReader gives n bytes of r, then err.
type failingReader struct {
	r   io.Reader
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	k, err := f.r.Read(p)
	f.n -= k
	return k, err
}

// TestReadFailuresAreNotMalformed: a reader that fails part way is a
// failure to read, which the planner retries; only bytes that do not parse
// are ErrMalformed.
func TestReadFailuresAreNotMalformed(t *testing.T) {
	t.Parallel()
	data := writeTar(t, "a/000001.jpg", "a/000002.jpg", "a/000003.jpg")
	lost := errors.New("connection reset")
	scanErr := func(r io.Reader, c Config) error {
		for _, err := range Scan(r, 0, c, true) {
			if err != nil {
				return err
			}
		}
		return nil
	}
	err := scanErr(&failingReader{r: bytes.NewReader(data), n: 1500, err: lost}, Config{Format: Tar})
	if !errors.Is(err, lost) || errors.Is(err, ErrMalformed) {
		t.Errorf("tar read failing part way: %v, want the read error, not ErrMalformed", err)
	}
	bad := append([]byte{}, data...)
	copy(bad[100:], "garbage!")
	if err := scanErr(bytes.NewReader(bad), Config{Format: Tar}); !errors.Is(err, ErrMalformed) {
		t.Errorf("corrupt tar header: %v, want ErrMalformed", err)
	}
	if _, err := CSVHeader(&failingReader{r: strings.NewReader("id,text\n"), n: 3, err: lost}, "text", 1<<20); !errors.Is(err, lost) || errors.Is(err, ErrMalformed) {
		t.Errorf("CSV header read failing: %v, want the read error, not ErrMalformed", err)
	}
	if _, err := CSVHeader(strings.NewReader("id,text\n"), "nope", 1<<20); !errors.Is(err, ErrMalformed) {
		t.Errorf("CSV header without the column: %v, want ErrMalformed", err)
	}
	if _, err := CSVHeader(strings.NewReader(""), "text", 1<<20); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty CSV: %v, want ErrMalformed", err)
	}
}

func TestCompressedObjectsAreRefused(t *testing.T) {
	t.Parallel()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("{\"text\":\"a\"}\n{\"text\":\"b\"}\n"))
	_ = zw.Close()
	for _, tc := range []struct {
		name, data string
	}{
		{"gzip", gz.String()},
		{"zstd", "\x28\xb5\x2f\xfd\x04\x58rest"},
		{"xz", "\xfd7zXZ\x00\x00\x04"},
		{"zip", "PK\x03\x04\x14\x00"},
		{"bzip2", "BZh91AY&SY\x00\x01"},
	} {
		for _, c := range []Config{{Format: JSONL}, {Format: Lines}, {Format: CSV, Column: 0}, {Format: Tar}} {
			var err error
			for _, e := range Scan(strings.NewReader(tc.data), 0, c, true) {
				if e != nil {
					err = e
				}
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.name+"-compressed") {
				t.Errorf("%s as %s: %v, want a malformed-file error naming %s", tc.name, c.Format, err, tc.name)
			}
		}
		if _, err := CSVHeader(strings.NewReader(tc.data), "text", 1<<20); !errors.Is(err, ErrMalformed) {
			t.Errorf("CSVHeader of %s: %v", tc.name, err)
		}
	}
	// Text that merely starts like one is text; a shard past the start is
	// not sniffed.
	for _, data := range []string{"BZh is a word\n", "BZh91AY&SY\n"[:9] + "\n", "PK\n"} {
		if got := inputs(scanAll(t, []byte(data), 0, Config{Format: Lines})); len(got) != 1 || strings.HasPrefix(got[0], "ERR:") {
			t.Errorf("%q: %q", data, got)
		}
	}
	if got := inputs(scanAll(t, []byte("\x1f\x8b\n"), 5, Config{Format: Lines})); len(got) != 1 {
		t.Errorf("at offset 5: %q", got)
	}
}

func TestSplitKeepsTheRecordsBeforeAnError(t *testing.T) {
	t.Parallel()
	data := "a\nb\nc\n" + strings.Repeat("x", 100) + "\nd\n"
	c := Config{Format: Lines, MaxRecordBytes: 50}
	var shards []Shard
	var err error
	for sh, e := range Split(Scan(strings.NewReader(data), 0, c, false), 1<<20, 1000) {
		if e != nil {
			err = e
			continue
		}
		shards = append(shards, sh)
	}
	if len(shards) != 1 || shards[0] != (Shard{Start: 0, End: 6, First: 0, Count: 3}) || !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("shards %+v, error %v; want the three lines before the long one, then ErrRecordTooLarge", shards, err)
	}
}

func TestSplitDropsThePartialShardOfAReadFailure(t *testing.T) {
	t.Parallel()
	// A read that fails part way: the shard in progress is not yielded, so
	// a plan read again from the start cuts it where the whole bytes end.
	r := io.MultiReader(strings.NewReader("a\nb\n"), iotest.ErrReader(errors.New("connection reset")))
	var shards []Shard
	var err error
	for sh, e := range Split(Scan(r, 0, Config{Format: Lines}, false), 1<<20, 1000) {
		if e != nil {
			err = e
			continue
		}
		shards = append(shards, sh)
	}
	if len(shards) != 0 || err == nil || errors.Is(err, ErrMalformed) {
		t.Fatalf("shards %+v, error %v; want no shard and the read error", shards, err)
	}
}
