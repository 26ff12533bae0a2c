//go:build unix

package sandbox

import (
	"context"
	"errors"
	"testing"
)

// dirtyGuest is a module with one page of memory whose _start traps unless
// the bytes it is about to write are zero, then writes them: at offset 100,
// and at offset 100 of the page past the one it grows to by grow pages.
func dirtyGuest(grow int32) []byte {
	var code []byte
	probe := func(off, val int32) {
		code = append(appendS32(append(code, 0x41), off), 0x2d, 0x00, 0x00) // i32.load8_u
		code = append(code, 0x04, 0x40, 0x00, 0x0b)                         // if: unreachable
		code = appendS32(append(code, 0x41), off)
		code = appendS32(append(code, 0x41), val)
		code = append(code, 0x3a, 0x00, 0x00) // i32.store8
	}
	probe(100, 0xab)
	code = append(appendS32(append(code, 0x41), grow), 0x40, 0x00, 0x1a) // memory.grow; drop
	probe(grow*65536+100, 0xcd)
	code = append(code, 0x0b)
	body := append(appendU32(nil, uint32(len(code)+1)), append([]byte{0x00}, code...)...)
	sec := func(id byte, b ...byte) []byte {
		return append(append([]byte{id}, appendU32(nil, uint32(len(b)))...), b...)
	}
	exports := []byte{0x02, 6, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00, 6, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00}
	var m []byte
	m = append(m, wasmHeader...)
	m = append(m, sec(1, 0x01, 0x60, 0x00, 0x00)...)
	m = append(m, sec(3, 0x01, 0x00)...)
	m = append(m, sec(5, 0x01, 0x00, 0x01)...)
	m = append(m, sec(7, exports...)...)
	m = append(m, sec(10, append([]byte{0x01}, body...)...)...)
	return m
}

// TestReusedMemoryIsZero runs guests that trap on any byte a previous
// instance left behind: a small memory is kept and reused, all zeros; a
// memory past reuseBytes is unmapped; trim drops what nothing reused.
func TestReusedMemoryIsZero(t *testing.T) {
	rt, err := New(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	pool := rt.memory.(*guestMemories)
	kept := func() int {
		pool.mu.Lock()
		defer pool.mu.Unlock()
		return len(pool.free)
	}
	ctx := context.Background()
	small, err := rt.Compile(ctx, dirtyGuest(1), "")
	if err != nil {
		t.Fatal(err)
	}
	big, err := rt.Compile(ctx, dirtyGuest(reuseBytes/65536), "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := rt.Run(ctx, small, RunOptions{}); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if n := kept(); n != 1 {
		t.Fatalf("%d memories kept after runs one at a time, want 1", n)
	}
	for i := range 3 {
		if _, err := rt.Run(ctx, big, RunOptions{}); err != nil {
			t.Fatalf("big run %d: %v", i, err)
		}
	}
	if n := kept(); n != 0 {
		t.Fatalf("%d memories kept after runs past %d bytes, want 0 (each took the kept one and unmapped it)", n, reuseBytes)
	}
	if _, err := rt.Run(ctx, small, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	rt.trimMemory() // reused since the last trim: kept
	if n := kept(); n != 1 {
		t.Fatalf("%d memories kept after a trim that followed a reuse, want 1", n)
	}
	rt.trimMemory() // idle since: dropped
	if n := kept(); n != 0 {
		t.Fatalf("%d memories kept after an idle trim, want 0", n)
	}
	// The probe is not vacuous: a memory left dirty traps.
	pool.mu.Lock()
	pool.free = nil
	pool.mu.Unlock()
	dirty := &mmapMemory{pool: pool, max: 1 << 30}
	b := dirty.Reallocate(1 << 16)
	b[100] = 1
	pool.mu.Lock()
	pool.free = append(pool.free, dirty.buf)
	pool.mu.Unlock()
	_, err = rt.Run(ctx, small, RunOptions{})
	if ge := (*GuestError)(nil); !errors.As(err, &ge) || ge.Kind != ErrTrap {
		t.Fatalf("run on a dirty memory: %v, want a trap", err)
	}
}
