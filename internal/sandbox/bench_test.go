package sandbox_test

import (
	"context"
	"testing"

	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
)

// BenchmarkRunHello measures the per-job sandbox cost: a fresh instance of
// a compiled guest, its whole run and closing it.
func BenchmarkRunHello(b *testing.B) {
	rt := newRuntime(b, sandbox.Config{})
	m := compile(b, rt, guests.Hello)
	opts := sandbox.RunOptions{Stdin: []byte("bench")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rt.Run(context.Background(), m, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunHelloParallel is the same with every CPU running jobs.
func BenchmarkRunHelloParallel(b *testing.B) {
	rt := newRuntime(b, sandbox.Config{})
	m := compile(b, rt, guests.Hello)
	opts := sandbox.RunOptions{Stdin: []byte("bench")}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := rt.Run(context.Background(), m, opts); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRunWordcount64K runs wordcount on 64 KiB of text.
func BenchmarkRunWordcount64K(b *testing.B) {
	rt := newRuntime(b, sandbox.Config{})
	m := compile(b, rt, guests.Wordcount)
	text := make([]byte, 0, 64<<10)
	for len(text) < 64<<10-16 {
		text = append(text, "the quick brown fox jumps over the lazy dog\n"...)
	}
	opts := sandbox.RunOptions{Stdin: text}
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := rt.Run(context.Background(), m, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompile compares compiling hello from scratch, from wazero's disk
// cache (a restarted worker) and from the in-memory cache.
func BenchmarkCompile(b *testing.B) {
	ctx := context.Background()
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			rt, err := sandbox.New(ctx, sandbox.Config{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := rt.Compile(ctx, guests.Hello, ""); err != nil {
				b.Fatal(err)
			}
			rt.Close(ctx)
		}
	})
	b.Run("disk-cache", func(b *testing.B) {
		dir := b.TempDir()
		warm, err := sandbox.New(ctx, sandbox.Config{CacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := warm.Compile(ctx, guests.Hello, ""); err != nil {
			b.Fatal(err)
		}
		warm.Close(ctx)
		for b.Loop() {
			rt, err := sandbox.New(ctx, sandbox.Config{CacheDir: dir})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := rt.Compile(ctx, guests.Hello, ""); err != nil {
				b.Fatal(err)
			}
			rt.Close(ctx)
		}
	})
	b.Run("memory-cache", func(b *testing.B) {
		rt := newRuntime(b, sandbox.Config{})
		compile(b, rt, guests.Hello)
		for b.Loop() {
			if _, err := rt.Compile(ctx, guests.Hello, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}
