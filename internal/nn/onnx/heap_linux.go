//go:build linux

package onnx

/*
#include <malloc.h>

// limit_arenas runs when the process loads, before any thread exists: see
// the Go comment below.
__attribute__((constructor)) static void limit_arenas(void) { mallopt(M_ARENA_MAX, 1); }
*/
import "C"

// limit_arenas caps glibc's malloc arenas at one. ONNX Runtime allocates
// from malloc (its own arena is off, see Config.CPUArena), and by default
// glibc gives each new thread an arena of its own, up to eight per core,
// each holding on to the peak it saw. Computes run on whichever Go thread
// the calling goroutine is on, so a worker held several detections' peaks
// at once: a second 960 × 736 detection on another thread took a process
// from 250 to 357 MB, and the OCR worker peaked at 428 MiB under load, 272
// MiB with one arena, at the same images/s. The cap binds only threads that
// have not allocated yet, and the Go runtime's threads have before any
// package's init runs, so it is set by a constructor of the process image,
// as MALLOC_ARENA_MAX=1 in the environment would be.

// trimHeap returns the free memory of every arena to the kernel.
func trimHeap() { C.malloc_trim(0) }
