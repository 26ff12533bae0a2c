//go:build unix

package sandbox

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// mmapAllocator backs each guest's linear memory with its own anonymous
// mapping of the memory's maximum size. The kernel commits pages only as
// the guest touches them, growing never copies, and closing the instance
// unmaps everything at once: guest memory stays out of the Go heap, so it
// neither doubles under the garbage collector's pacing nor lingers after
// the job.
type mmapAllocator struct{}

func (mmapAllocator) Allocate(_, max uint64) experimental.LinearMemory {
	return &mmapMemory{max: max}
}

const (
	hugeFrom     = 4 << 20
	madvHugepage = 14 // MADV_HUGEPAGE; the syscall package does not name it
)

type mmapMemory struct {
	buf []byte
	max uint64
}

func (m *mmapMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if m.buf == nil {
		n := max(m.max, 1)
		b, err := syscall.Mmap(-1, 0, int(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
		if err != nil {
			return nil
		}
		if len(b) > hugeFrom {
			// Past its first few MiB a guest touches memory by the
			// megabyte (images, tensors): 2 MiB pages save a fault per
			// 4 KiB. Small guests keep small pages, which cost less to
			// zero when a run touches only a few.
			_ = syscall.Madvise(b[hugeFrom:], madvHugepage)
		}
		m.buf = b
	}
	return m.buf[:size]
}

func (m *mmapMemory) Free() {
	if m.buf != nil {
		_ = syscall.Munmap(m.buf)
		m.buf = nil
	}
}

var memoryAllocator experimental.MemoryAllocator = mmapAllocator{}
