//go:build !unix

package sandbox

import "github.com/tetratelabs/wazero/experimental"

// memoryAllocator returns nil, which leaves linear memory to wazero's
// Go-heap slices, and functions that do nothing.
func memoryAllocator() (experimental.MemoryAllocator, func(), func()) {
	return nil, func() {}, func() {}
}
