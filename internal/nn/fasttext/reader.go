package fasttext

import (
	"encoding/binary"
	"fmt"
	"math"
)

// reader decodes the little-endian fields of a model file. Every read checks
// the bytes left, so a truncated file ends in an ErrCorrupt error instead of
// a panic, and every count read from the file is checked against what is
// left before anything is allocated for it.
type reader struct {
	b   []byte
	off int
}

// remaining is the number of unread bytes.
func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) take(n int, what string) ([]byte, error) {
	if n < 0 || n > r.remaining() {
		return nil, fmt.Errorf("%w: truncated at offset %d reading %s (%d bytes wanted, %d left)",
			ErrCorrupt, r.off, what, n, r.remaining())
	}
	p := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return p, nil
}

func (r *reader) u8(what string) (uint8, error) {
	p, err := r.take(1, what)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

// boolean reads a C++ bool: one byte, 0 or 1.
func (r *reader) boolean(what string) (bool, error) {
	v, err := r.u8(what)
	if err != nil {
		return false, err
	}
	if v > 1 {
		return false, fmt.Errorf("%w: %s is %d, want 0 or 1", ErrCorrupt, what, v)
	}
	return v == 1, nil
}

func (r *reader) i32(what string) (int32, error) {
	p, err := r.take(4, what)
	if err != nil {
		return 0, err
	}
	return int32(binary.LittleEndian.Uint32(p)), nil
}

func (r *reader) i64(what string) (int64, error) {
	p, err := r.take(8, what)
	if err != nil {
		return 0, err
	}
	return int64(binary.LittleEndian.Uint64(p)), nil
}

func (r *reader) f64(what string) (float64, error) {
	p, err := r.take(8, what)
	if err != nil {
		return 0, err
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(p)), nil
}

// f32s reads n float32 values.
func (r *reader) f32s(n int64, what string) ([]float32, error) {
	if n < 0 || n > int64(r.remaining()/4) {
		return nil, fmt.Errorf("%w: %s needs %d floats but only %d bytes are left",
			ErrCorrupt, what, n, r.remaining())
	}
	p, err := r.take(int(n)*4, what)
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
	}
	return out, nil
}

// cstring reads bytes up to a NUL and consumes the NUL.
func (r *reader) cstring(what string) (string, error) {
	for i := r.off; i < len(r.b); i++ {
		if r.b[i] == 0 {
			s := string(r.b[r.off:i])
			r.off = i + 1
			return s, nil
		}
	}
	return "", fmt.Errorf("%w: truncated at offset %d reading %s (no terminating NUL)", ErrCorrupt, r.off, what)
}
