package nn

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// guestMemory is the part of a guest's linear memory the host functions use.
// wazero's api.Memory implements it; tests and fuzzers use a byte slice.
// Every method reports false, and changes nothing, when the range is not
// entirely inside the memory.
type guestMemory interface {
	// Read returns a view of byteCount bytes at offset. The view aliases
	// guest memory: copy what must outlive the call.
	Read(offset, byteCount uint32) ([]byte, bool)
	// Write copies v to offset.
	Write(offset uint32, v []byte) bool
	// WriteUint32Le writes v little-endian at offset.
	WriteUint32Le(offset, v uint32) bool
}

// Sizes of the records guests pass by pointer.
const (
	// tensorRecordSize is the tensor struct: dims_ptr, dims_len, type (low
	// byte; the rest is padding a Rust guest leaves uninitialised),
	// data_ptr, data_len, each a little-endian u32.
	tensorRecordSize = 20
	// builderRecordSize is one (ptr, len) pair of load's builder array.
	builderRecordSize = 8
)

// limits bound what a guest may pass in one call.
type limits struct {
	// MaxDims is the largest tensor rank.
	MaxDims uint32
	// MaxElements is the largest element count of one tensor.
	MaxElements uint64
	// MaxTensorBytes is the largest data length of one tensor.
	MaxTensorBytes uint64
	// MaxBuilders is the largest builder count of load.
	MaxBuilders uint32
	// MaxLoadBytes is the largest total builder size of load.
	MaxLoadBytes uint64
	// MaxNameBytes is the longest model name or config.
	MaxNameBytes uint32
}

// errf wraps a sentinel with a message for the log line.
func errf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}

// readBytes returns a view of n bytes at ptr.
func readBytes(mem guestMemory, ptr, n uint32, what string) ([]byte, error) {
	b, ok := mem.Read(ptr, n)
	if !ok {
		return nil, errf(ErrInvalidArgument, "%s: %d bytes at %#x are outside guest memory", what, n, ptr)
	}
	return b, nil
}

// readUint32s reads n little-endian u32 at ptr.
func readUint32s(mem guestMemory, ptr, n uint32, what string) ([]uint32, error) {
	if uint64(n)*4 > 1<<32-1 {
		return nil, errf(ErrInvalidArgument, "%s: %d elements are outside guest memory", what, n)
	}
	b, err := readBytes(mem, ptr, n*4, what)
	if err != nil {
		return nil, err
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return out, nil
}

// readString copies a UTF-8 name of n bytes at ptr, at most max bytes.
func readString(mem guestMemory, ptr, n, max uint32, what string) (string, error) {
	if n > max {
		return "", errf(ErrInvalidArgument, "%s: %d bytes, more than the %d allowed", what, n, max)
	}
	b, err := readBytes(mem, ptr, n, what)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// decodeTensor decodes the 20-byte tensor record at ptr: a copy of the
// tensor's dims and a view of its data in guest memory, valid until the
// guest runs again. It checks the type, the rank, the element count and
// that dims × element size equals the data length.
func decodeTensor(mem guestMemory, ptr uint32, lim limits) (Tensor, error) {
	rec, err := readBytes(mem, ptr, tensorRecordSize, "tensor")
	if err != nil {
		return Tensor{}, err
	}
	dimsPtr := binary.LittleEndian.Uint32(rec[0:])
	dimsLen := binary.LittleEndian.Uint32(rec[4:])
	typ := TensorType(rec[8]) // low byte of a little-endian u32
	dataPtr := binary.LittleEndian.Uint32(rec[12:])
	dataLen := binary.LittleEndian.Uint32(rec[16:])

	size := typ.Size()
	if size == 0 {
		return Tensor{}, errf(ErrInvalidArgument, "tensor type %d: want 0 (f16) to 5 (i64)", uint8(typ))
	}
	if dimsLen > lim.MaxDims {
		return Tensor{}, errf(ErrInvalidArgument, "tensor rank %d: at most %d dimensions", dimsLen, lim.MaxDims)
	}
	dims, err := readUint32s(mem, dimsPtr, dimsLen, "tensor dims")
	if err != nil {
		return Tensor{}, err
	}
	elems, err := elementCount(dims, lim.MaxElements)
	if err != nil {
		return Tensor{}, err
	}
	overflow, want := bits.Mul64(elems, uint64(size))
	if overflow != 0 || want != uint64(dataLen) {
		return Tensor{}, errf(ErrInvalidArgument, "tensor %v of %s needs %d bytes, data has %d", dims, typ, want, dataLen)
	}
	if uint64(dataLen) > lim.MaxTensorBytes {
		return Tensor{}, errf(ErrTooLarge, "tensor of %d bytes: at most %d", dataLen, lim.MaxTensorBytes)
	}
	data, err := readBytes(mem, dataPtr, dataLen, "tensor data")
	if err != nil {
		return Tensor{}, err
	}
	// A view: ExecContext.SetInput copies what it keeps, once.
	return Tensor{Type: typ, Dims: dims, Data: data}, nil
}

// elementCount multiplies dims, refusing zero-sized and oversized tensors.
func elementCount(dims []uint32, max uint64) (uint64, error) {
	n := uint64(1)
	for _, d := range dims {
		if d == 0 {
			return 0, errf(ErrInvalidArgument, "tensor dims %v: a dimension is 0", dims)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > max {
			return 0, errf(ErrInvalidArgument, "tensor dims %v: more than %d elements", dims, max)
		}
		n = lo
	}
	return n, nil
}

// decodeBuilders decodes load's builder array: count (ptr, len) pairs at ptr,
// each naming a byte range of guest memory. It returns copies of the ranges.
func decodeBuilders(mem guestMemory, ptr, count uint32, lim limits) ([][]byte, error) {
	if count == 0 {
		return nil, errf(ErrInvalidArgument, "load: empty builder array")
	}
	if count > lim.MaxBuilders {
		return nil, errf(ErrInvalidArgument, "load: %d builders, at most %d", count, lim.MaxBuilders)
	}
	pairs, err := readUint32s(mem, ptr, count*2, "load builder array")
	if err != nil {
		return nil, err
	}
	var total uint64
	for i := 0; i < len(pairs); i += 2 {
		total += uint64(pairs[i+1])
	}
	if total > lim.MaxLoadBytes {
		return nil, errf(ErrTooLarge, "load: %d model bytes, at most %d", total, lim.MaxLoadBytes)
	}
	out := make([][]byte, 0, count)
	for i := 0; i < len(pairs); i += 2 {
		b, err := readBytes(mem, pairs[i], pairs[i+1], fmt.Sprintf("load builder %d", i/2))
		if err != nil {
			return nil, err
		}
		out = append(out, append([]byte(nil), b...))
	}
	return out, nil
}

// writeUint32 writes a result the guest asked for through a pointer.
func writeUint32(mem guestMemory, ptr, v uint32, what string) error {
	if !mem.WriteUint32Le(ptr, v) {
		return errf(ErrInvalidArgument, "%s: result pointer %#x is outside guest memory", what, ptr)
	}
	return nil
}

// checkWritable reports whether n bytes at ptr are inside guest memory.
func checkWritable(mem guestMemory, ptr, n uint32, what string) error {
	_, err := readBytes(mem, ptr, n, what)
	return err
}

// sliceMemory is a guestMemory over a byte slice, for tests and fuzzing.
type sliceMemory []byte

var _ guestMemory = (sliceMemory)(nil)

// Read implements guestMemory.
func (m sliceMemory) Read(offset, byteCount uint32) ([]byte, bool) {
	end := uint64(offset) + uint64(byteCount)
	if end > uint64(len(m)) {
		return nil, false
	}
	return m[offset:end:end], true
}

// Write implements guestMemory.
func (m sliceMemory) Write(offset uint32, v []byte) bool {
	if uint64(len(v)) > 1<<32-1 {
		return false
	}
	b, ok := m.Read(offset, uint32(len(v)))
	if !ok {
		return false
	}
	copy(b, v)
	return true
}

// WriteUint32Le implements guestMemory.
func (m sliceMemory) WriteUint32Le(offset, v uint32) bool {
	b, ok := m.Read(offset, 4)
	if !ok {
		return false
	}
	binary.LittleEndian.PutUint32(b, v)
	return true
}
