//go:build unix

package sandbox

import (
	"sync"
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// guestMemories backs each guest's linear memory with its own anonymous
// mapping of the memory's maximum size. The kernel commits pages only as
// the guest touches them, growing never copies, and closing the instance
// unmaps everything at once: guest memory stays out of the Go heap, so it
// neither doubles under the garbage collector's pacing nor lingers after
// the job.
//
// A small memory (at most reuseBytes when its instance closed) is zeroed
// and kept for the next instance instead: a text job's guest touches a
// dozen pages, and mapping, faulting in and unmapping them cost several
// times what clearing them does. A kept mapping is all zeros, as a fresh
// one is: the guest could only ever have written below its memory's size,
// and all of that is cleared. Mappings nobody took for a while are
// unmapped (trim), so an idle worker holds none.
type guestMemories struct {
	mu     sync.Mutex
	free   [][]byte // zeroed mappings, most recently freed last
	reused bool     // a kept mapping was taken since the last trim
	closed bool
}

const (
	// reuseBytes is the largest memory kept for reuse: clearing it costs
	// about as much as the page faults it saves.
	reuseBytes = 1 << 20
	// maxKept bounds the mappings kept, and so the memory they hold
	// resident: at most maxKept × reuseBytes.
	maxKept = 32

	hugeFrom     = 4 << 20
	madvHugepage = 14 // MADV_HUGEPAGE; the syscall package does not name it
)

func newGuestMemories() *guestMemories { return &guestMemories{} }

func (p *guestMemories) Allocate(_, max uint64) experimental.LinearMemory {
	return &mmapMemory{pool: p, max: max}
}

// take returns a kept mapping of at least n bytes, or nil.
func (p *guestMemories) take(n uint64) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if b := p.free[i]; uint64(len(b)) >= n {
			p.free = append(p.free[:i], p.free[i+1:]...)
			p.reused = true
			return b
		}
	}
	return nil
}

// release keeps b, whose first used bytes the guest may have written, or
// unmaps it.
func (p *guestMemories) release(b []byte, used uint64) {
	if used <= reuseBytes {
		clear(b[:used])
		p.mu.Lock()
		keep := !p.closed && len(p.free) < maxKept
		if keep {
			p.free = append(p.free, b)
		}
		p.mu.Unlock()
		if keep {
			return
		}
	}
	_ = syscall.Munmap(b)
}

// trim unmaps the kept mappings unless one was reused since the last trim.
func (p *guestMemories) trim() {
	p.mu.Lock()
	var drop [][]byte
	if !p.reused {
		drop, p.free = p.free, nil
	}
	p.reused = false
	p.mu.Unlock()
	for _, b := range drop {
		_ = syscall.Munmap(b)
	}
}

// close unmaps the kept mappings; memories freed later are unmapped.
func (p *guestMemories) close() {
	p.mu.Lock()
	drop := p.free
	p.free, p.closed = nil, true
	p.mu.Unlock()
	for _, b := range drop {
		_ = syscall.Munmap(b)
	}
}

type mmapMemory struct {
	pool *guestMemories
	buf  []byte
	max  uint64
	used uint64 // the largest size handed out: what the guest could write
}

func (m *mmapMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if m.buf == nil {
		n := max(m.max, 1)
		m.buf = m.pool.take(n)
		if m.buf == nil {
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
	}
	m.used = max(m.used, size)
	return m.buf[:size]
}

func (m *mmapMemory) Free() {
	if m.buf != nil {
		m.pool.release(m.buf, m.used)
		m.buf = nil
	}
}

// memoryAllocator returns the allocator of a Runtime's guest memories, and
// the functions that trim and close it.
func memoryAllocator() (experimental.MemoryAllocator, func(), func()) {
	p := newGuestMemories()
	return p, p.trim, p.close
}
