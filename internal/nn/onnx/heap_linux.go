//go:build linux

package onnx

/*
#include <malloc.h>
*/
import "C"

// limitHeapArenas caps glibc's malloc arenas, which ONNX Runtime allocates
// from (its own arena is off, see Config.CPUArena). By default glibc keeps
// up to eight arenas per core, one per thread that ever ran a compute, and
// each holds on to the peak it saw; computes run on whichever Go thread the
// calling goroutine is on, so a worker would hold several jobs' peaks.
func limitHeapArenas() { C.mallopt(C.M_ARENA_MAX, 2) }

// trimHeap returns the free memory of every arena to the kernel.
func trimHeap() { C.malloc_trim(0) }
