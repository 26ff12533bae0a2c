package sandbox

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// scavengeEvery and scavengeOver set how often the runtime looks for freed
// heap memory still held from the kernel, and how much it tolerates.
const (
	scavengeEvery = 2 * time.Second
	scavengeOver  = 32 << 20
)

// returnFreedMemory gives freed heap memory back to the kernel until stop
// is closed. A guest's call stack (wazero grows it up to about 150 MB for a
// deep recursion) and its output buffers live in the Go heap; once the
// instance is gone nothing allocates enough to start a collection, so
// without this a worker would keep that memory resident for minutes. At
// every tick it also calls trim, which unmaps the guest memories kept for
// reuse unless they were reused since the last one.
func returnFreedMemory(stop <-chan struct{}, trim func()) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	t := time.NewTicker(scavengeEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		trim()
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 && sample[0].Value.Uint64() > scavengeOver {
			debug.FreeOSMemory()
		}
	}
}
