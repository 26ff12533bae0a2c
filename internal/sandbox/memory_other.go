//go:build !unix

package sandbox

import "github.com/tetratelabs/wazero/experimental"

// memoryAllocator nil leaves linear memory to wazero's Go-heap slices.
var memoryAllocator experimental.MemoryAllocator
