package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmjobs/wasmjobs/internal/guests"
	"github.com/wasmjobs/wasmjobs/internal/guests/guesttest"
	"github.com/wasmjobs/wasmjobs/internal/sandbox"
)

func newRuntime(tb testing.TB, cfg sandbox.Config) *sandbox.Runtime {
	tb.Helper()
	rt, err := sandbox.New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

func compile(tb testing.TB, rt *sandbox.Runtime, wasm []byte) *sandbox.Module {
	tb.Helper()
	m, err := rt.Compile(context.Background(), wasm, "")
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestRunHello(t *testing.T) {
	t.Parallel()
	rt := newRuntime(t, sandbox.Config{})
	m := compile(t, rt, guests.Hello)
	tests := []struct {
		name   string
		stdin  string
		params map[string]string
		want   string
	}{
		{"stdin", "Ada", nil, `{"greeting":"Hello, Ada!"}`},
		{"trimmed stdin", "  Grace\n", nil, `{"greeting":"Hello, Grace!"}`},
		{"param when stdin empty", "", map[string]string{"name": "Param"}, `{"greeting":"Hello, Param!"}`},
		{"default", "", nil, `{"greeting":"Hello, world!"}`},
		{"json escaping", `Bobby "Tables"`, nil, `{"greeting":"Hello, Bobby \"Tables\"!"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := rt.Run(context.Background(), m, sandbox.RunOptions{Stdin: []byte(tt.stdin), Params: tt.params})
			if err != nil {
				t.Fatal(err)
			}
			if got := string(res.Stdout); got != tt.want {
				t.Errorf("stdout = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestGuestFailures(t *testing.T) {
	t.Parallel()
	// 16 MiB of memory keeps the grow case quick.
	rt := newRuntime(t, sandbox.Config{MemoryLimitPages: 256})
	m := compile(t, rt, guesttest.Misbehave)
	tests := []struct {
		mode      string
		opts      sandbox.RunOptions
		kind      error
		inMessage string
	}{
		{mode: "exit", kind: sandbox.ErrExit, inMessage: "exit code 3"},
		{mode: "exit", kind: sandbox.ErrExit, inMessage: "misbehave: asked to fail"},
		{mode: "loop", opts: sandbox.RunOptions{Timeout: 300 * time.Millisecond}, kind: sandbox.ErrTimeout, inMessage: "300ms"},
		{mode: "grow", kind: sandbox.ErrMemoryLimit, inMessage: "limit 16 MiB"},
		{mode: "panic", kind: sandbox.ErrTrap, inMessage: "boom"},
		{mode: "stderr", kind: sandbox.ErrExit, inMessage: "misbehave: tail marker"},
		{mode: "big", opts: sandbox.RunOptions{MaxOutput: 1000}, kind: sandbox.ErrOutputTooLarge, inMessage: "1000 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			opts := tt.opts
			opts.Params = map[string]string{"mode": tt.mode}
			_, err := rt.Run(context.Background(), m, opts)
			var ge *sandbox.GuestError
			if !errors.As(err, &ge) {
				t.Fatalf("err = %v, want a *GuestError", err)
			}
			if !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want kind %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.inMessage) {
				t.Errorf("err = %q, want it to mention %q", err, tt.inMessage)
			}
		})
	}
}

func TestStderrTailIsBounded(t *testing.T) {
	t.Parallel()
	rt := newRuntime(t, sandbox.Config{})
	m := compile(t, rt, guesttest.Misbehave)
	_, err := rt.Run(context.Background(), m, sandbox.RunOptions{Params: map[string]string{"mode": "stderr"}, StderrTail: 256})
	var ge *sandbox.GuestError
	if !errors.As(err, &ge) {
		t.Fatalf("err = %v", err)
	}
	if len(ge.Stderr) > 256+len("…") {
		t.Errorf("stderr tail is %d bytes, want at most 256", len(ge.Stderr))
	}
	if !strings.HasSuffix(ge.Stderr, "misbehave: tail marker") || !strings.HasPrefix(ge.Stderr, "…") {
		t.Errorf("stderr tail = %q, want the marked tail ending in the marker", ge.Stderr)
	}
}

func TestRejectsDisallowedImport(t *testing.T) {
	t.Parallel()
	rt := newRuntime(t, sandbox.Config{})
	_, err := rt.Compile(context.Background(), guesttest.BadImport, "")
	if !errors.Is(err, sandbox.ErrImportNotAllowed) {
		t.Fatalf("err = %v, want ErrImportNotAllowed", err)
	}
	if !strings.Contains(err.Error(), "env.steal_secrets") || !strings.Contains(err.Error(), "wasi_snapshot_preview1") {
		t.Errorf("err = %q, want it to name the import and what is allowed", err)
	}
}

func TestRejectsInvalidModules(t *testing.T) {
	t.Parallel()
	rt := newRuntime(t, sandbox.Config{})
	tests := map[string][]byte{
		"garbage":         []byte("definitely not wasm"),
		"empty":           {},
		"no _start":       []byte("\x00asm\x01\x00\x00\x00"),
		"truncated guest": guests.Hello[:len(guests.Hello)/2],
	}
	for name, wasm := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := rt.Compile(context.Background(), wasm, "")
			if !errors.Is(err, sandbox.ErrInvalidModule) {
				t.Fatalf("err = %v, want ErrInvalidModule", err)
			}
		})
	}
}

func TestDigestMismatch(t *testing.T) {
	t.Parallel()
	rt := newRuntime(t, sandbox.Config{})
	_, err := rt.Compile(context.Background(), guests.Hello, sandbox.Digest(guests.Wordcount))
	if !errors.Is(err, sandbox.ErrDigestMismatch) {
		t.Fatalf("err = %v, want ErrDigestMismatch", err)
	}
}

func TestCallerCancelIsNotAGuestError(t *testing.T) {
	t.Parallel()
	rt := newRuntime(t, sandbox.Config{})
	m := compile(t, rt, guesttest.Misbehave)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := rt.Run(ctx, m, sandbox.RunOptions{Params: map[string]string{"mode": "loop"}, Timeout: time.Minute})
	var ge *sandbox.GuestError
	if err == nil || errors.As(err, &ge) {
		t.Fatalf("err = %v, want a non-guest error (the run may be retried)", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want it to wrap context.Canceled", err)
	}
}

// cacheFiles lists the files of dir with their inode and modification time.
func cacheFiles(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		files[path] = fmt.Sprintf("ino=%d mtime=%d size=%d", st.Ino, fi.ModTime().UnixNano(), fi.Size())
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

// TestDiskCacheHit restarts the runtime on the same cache dir: the second
// compile must read wazero's cache entry instead of compiling and writing a
// new one (a miss would create a new file through a rename).
func TestDiskCacheHit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := newRuntime(t, sandbox.Config{CacheDir: dir})
	compile(t, first, guests.Hello)
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := cacheFiles(t, dir)
	if len(before) == 0 {
		t.Fatal("the first compile wrote nothing to the cache dir")
	}

	second := newRuntime(t, sandbox.Config{CacheDir: dir})
	m := compile(t, second, guests.Hello)
	res, err := second.Run(context.Background(), m, sandbox.RunOptions{Stdin: []byte("cache")})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != `{"greeting":"Hello, cache!"}` {
		t.Fatalf("stdout = %s", res.Stdout)
	}
	after := cacheFiles(t, dir)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("cache dir changed on the restarted runtime's first compile (a miss):\nbefore %v\nafter  %v", before, after)
	}

	// A different module is a miss and does add an entry: the check above
	// can fail.
	compile(t, second, guests.Wordcount)
	if len(cacheFiles(t, dir)) <= len(before) {
		t.Error("compiling a new module added no cache entry")
	}
}

func TestMemoryCache(t *testing.T) {
	t.Parallel()
	rt := newRuntime(t, sandbox.Config{MaxModules: 1})
	compile(t, rt, guests.Hello)
	compile(t, rt, guests.Hello)
	if s := rt.Stats(); s.Hits != 1 || s.Misses != 1 || s.Cached != 1 {
		t.Fatalf("stats = %+v, want 1 hit, 1 miss, 1 cached", s)
	}
	held := compile(t, rt, guests.Hello)
	compile(t, rt, guests.Wordcount) // evicts hello
	if _, ok := rt.Cached(sandbox.Digest(guests.Hello)); ok {
		t.Fatal("hello still cached after eviction")
	}
	if s := rt.Stats(); s.Cached != 1 || s.Misses != 2 {
		t.Fatalf("stats = %+v, want 2 misses, 1 cached", s)
	}
	if _, err := rt.Run(context.Background(), held, sandbox.RunOptions{}); err == nil {
		t.Fatal("run of an evicted, released module succeeded")
	}
}

// TestHammer runs many instances of two guests at once.
func TestHammer(t *testing.T) {
	t.Parallel()
	rt := newRuntime(t, sandbox.Config{})
	hello := compile(t, rt, guests.Hello)
	wc := compile(t, rt, guests.Wordcount)
	const goroutines, runs = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range runs {
				name := fmt.Sprintf("g%d-%d", g, i)
				res, err := rt.Run(context.Background(), hello, sandbox.RunOptions{Stdin: []byte(name)})
				if err != nil {
					errs <- err
					return
				}
				if want := `{"greeting":"Hello, ` + name + `!"}`; string(res.Stdout) != want {
					errs <- fmt.Errorf("got %s, want %s", res.Stdout, want)
					return
				}
				res, err = rt.Run(context.Background(), wc, sandbox.RunOptions{Stdin: []byte(name + " " + name)})
				if err != nil {
					errs <- err
					return
				}
				if !strings.HasPrefix(string(res.Stdout), `{"lines":1,"words":2,`) {
					errs <- fmt.Errorf("wordcount got %s", res.Stdout)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
