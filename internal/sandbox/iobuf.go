package sandbox

import (
	"bytes"
	"errors"
	"strings"
	"unicode/utf8"
)

var errStdoutFull = errors.New("stdout limit reached")

// cappedBuffer collects at most max bytes; writes past that fail, which a
// guest sees as an I/O error on stdout.
type cappedBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if c.buf.Len()+len(p) > c.max {
		c.overflow = true
		return 0, errStdoutFull
	}
	return c.buf.Write(p)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	buf   []byte
	max   int
	total int64
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.total += int64(len(p))
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return len(p), nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return len(p), nil
}

// String returns the tail as printable text: trimmed, invalid UTF-8
// replaced, and marked when earlier output was dropped.
func (t *tailBuffer) String() string {
	b := t.buf
	// Do not start in the middle of a UTF-8 sequence.
	for i := 0; i < 3 && len(b) > 0 && !utf8.RuneStart(b[0]); i++ {
		b = b[1:]
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
	if t.total > int64(len(t.buf)) && s != "" {
		s = "…" + s
	}
	return s
}
