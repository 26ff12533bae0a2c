//go:build ignore

// gen writes the hostile modules no text format can express (counts that lie,
// truncations, 2^32 locals) next to itself: <name>.wasm and <name>.expect,
// the latter holding the same header lines a .wat file starts with. Run it
// from the repository root: go run guest/testdata/hostile/gen.go
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

const dir = "guest/testdata/hostile"

func u32(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func name(s string) []byte { return append(u32(uint32(len(s))), s...) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func section(id byte, body ...[]byte) []byte {
	b := cat(body...)
	return cat([]byte{id}, u32(uint32(len(b))), b)
}

var header = []byte{0, 'a', 's', 'm', 1, 0, 0, 0}

// exit7 is the body of a function that calls proc_exit(7).
var exit7 = []byte{0x41, 0x07, 0x10, 0x00, 0x0b}

// module is a WASI command whose _start has the given locals declaration
// and code, with extra sections spliced in before the code section.
func module(locals, code []byte, before ...[]byte) []byte {
	body := cat(locals, code)
	return cat(header,
		section(1, []byte{0x02, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x00}),
		section(2, []byte{0x01}, name("wasi_snapshot_preview1"), name("proc_exit"), []byte{0x00, 0x00}),
		section(3, []byte{0x01, 0x01}),
		section(5, []byte{0x01, 0x00, 0x01}),
		section(7, []byte{0x02}, name("_start"), []byte{0x00, 0x01}, name("memory"), []byte{0x02, 0x00}),
		cat(before...),
		section(10, []byte{0x01}, u32(uint32(len(body))), body),
	)
}

// moduleFuncs is module with more functions of type () -> () after _start,
// each with the given body (locals declaration, code and end).
func moduleFuncs(locals, code []byte, more int, body []byte) []byte {
	start := cat(locals, code)
	funcs := cat(u32(uint32(1+more)), bytes.Repeat([]byte{0x01}, 1+more))
	bodies := cat(u32(uint32(1+more)), u32(uint32(len(start))), start)
	for range more {
		bodies = cat(bodies, u32(uint32(len(body))), body)
	}
	return cat(header,
		section(1, []byte{0x02, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x00}),
		section(2, []byte{0x01}, name("wasi_snapshot_preview1"), name("proc_exit"), []byte{0x00, 0x00}),
		section(3, funcs),
		section(5, []byte{0x01, 0x00, 0x01}),
		section(7, []byte{0x02}, name("_start"), []byte{0x00, 0x01}, name("memory"), []byte{0x02, 0x00}),
		section(10, bodies),
	)
}

func main() {
	hello, err := os.ReadFile("internal/guests/wasm/hello.wasm")
	if err != nil {
		fail(err)
	}
	noLocals := []byte{0x00}
	huge := bytes.Repeat([]byte{0x01}, 1<<20) // nop
	guests := []struct {
		name, expect string
		wasm         []byte
	}{
		{"gen-valid-exit7", "exit code 7", module(noLocals, exit7)},
		{"gen-locals-huge", "declares more than 50000 locals",
			module(cat([]byte{0x01}, u32(0xffffffff), []byte{0x7f}), exit7)},
		{"gen-locals-split", "declares more than 50000 locals",
			module(cat([]byte{0x03}, u32(0x7fffffff), []byte{0x7f}, u32(0x7fffffff), []byte{0x7e}, u32(4), []byte{0x7d}), exit7)},
		{"gen-body-huge", "body is 1048582 bytes, limit 1048576",
			module(noLocals, cat(huge, exit7))},
		// Just under the body limit: compiling it must stay cheap.
		{"gen-body-big", "exit code 7",
			module(noLocals, cat(bytes.Repeat([]byte{0x41, 0x01, 0x1a}, (1<<20-16)/3), exit7))},
		// Blocks cost the compiler more than linear time and memory.
		{"gen-blocks-many", "function 0 has 10001 blocks, limit 10000",
			module(cat([]byte{0x01, 0x0a, 0x7f}), cat(bytes.Repeat([]byte{0x02, 0x40, 0x20, 0x00, 0x0d, 0x00, 0x0b}, 10001), exit7))},
		{"gen-blocks-nested", "exit code 7", // at the limit: compiles in about a second
			module(cat([]byte{0x01, 0x0a, 0x7f}), cat(bytes.Repeat([]byte{0x02, 0x40, 0x20, 0x00, 0x0d, 0x00}, 10000), bytes.Repeat([]byte{0x0b}, 10000), exit7))},
		// The same nesting with loops, which count twice: each gets a fuel
		// check, an if block, when the sandbox meters the module.
		{"gen-loops-nested", "exit code 7",
			module(cat([]byte{0x01, 0x0a, 0x7f}), cat(bytes.Repeat([]byte{0x03, 0x40, 0x20, 0x00, 0x0d, 0x00}, 5000), bytes.Repeat([]byte{0x0b}, 5000), exit7))},
		{"gen-loops-many", "function 0 has 10002 blocks, limit 10000",
			module(cat([]byte{0x01, 0x0a, 0x7f}), cat(bytes.Repeat([]byte{0x03, 0x40, 0x20, 0x00, 0x0d, 0x00, 0x0b}, 5001), exit7))},
		// A global index the module does not define: after the sandbox adds
		// its fuel global for deadline checks, it would name that one.
		{"gen-global-forged", "global index 0 out of range (0 globals)",
			module(noLocals, cat([]byte{0x41, 0x7f, 0x24, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b}, exit7))},
		// Compile time grows with the square of each function's blocks,
		// summed over the module: four functions at the per-function limit.
		{"gen-blocks-cost", "have blocks whose squares sum to 400000000, limit 300000000",
			moduleFuncs(noLocals, exit7, 4, cat([]byte{0x01, 0x01, 0x7f},
				bytes.Repeat([]byte{0x02, 0x40, 0x20, 0x00, 0x0d, 0x00}, 10000), bytes.Repeat([]byte{0x0b}, 10000), []byte{0x0b}))},
		// Every local read inside nested loops is a parameter of each
		// enclosing loop header.
		{"gen-loop-locals", "1000 locals in loops nested 1001 deep, limit 1000000",
			module(cat([]byte{0x01}, u32(1000), []byte{0x7f}), cat(bytes.Repeat([]byte{0x03, 0x40}, 1001),
				bytes.Repeat([]byte{0x20, 0x05, 0x1a}, 1000), bytes.Repeat([]byte{0x0b}, 1001), exit7))},
		{"gen-brtable-targets", "has 32769 br_table targets, limit 32768",
			module(cat([]byte{0x01, 0x01, 0x7f}), cat([]byte{0x02, 0x40, 0x20, 0x00, 0x0e}, u32(32768),
				bytes.Repeat([]byte{0x00}, 32769), []byte{0x0b}, exit7))},
		// Relocations of every call are held until the module is linked.
		{"gen-calls-module", "calls, limit 1000000 per module",
			moduleFuncs(noLocals, exit7, 21, cat(noLocals, bytes.Repeat([]byte{0x10, 0x01}, 50000), []byte{0x0b}))},
		{"gen-types-count", "268435455 types, limit",
			cat(header, section(1, u32(0x0fffffff)))},
		{"gen-params-count", "unexpected end of module",
			cat(header, section(1, []byte{0x01, 0x60}, u32(0xffffffff)))},
		{"gen-functions-count", "99999 functions declared in 0 bytes",
			cat(header, section(3, u32(99999)))},
		{"gen-export-name", "unexpected end of module",
			cat(header, section(7, []byte{0x01}, u32(0xfffffff0)))},
		{"gen-data-length", "unexpected end of module", cat(header, // a data segment that claims 4 GiB
			section(5, []byte{0x01, 0x00, 0x01}),
			section(11, []byte{0x01, 0x00, 0x41, 0x00, 0x0b}, u32(0xfffffff0), []byte("abc")))},
		{"gen-elem-items", "items in",
			module(noLocals, exit7, section(4, []byte{0x01, 0x70, 0x00, 0x01}), section(9, []byte{0x01, 0x00, 0x41, 0x00, 0x0b}, u32(0x7fffffff)))},
		{"gen-name-section-counts", "exit code 7",
			cat(module(noLocals, exit7), section(0, name("name"), []byte{0x01}, u32(5), u32(0xffffffff)))},
		{"gen-custom-section-size", "unexpected end of module",
			cat(module(noLocals, exit7), []byte{0x00}, u32(0x7ffffff0), name("x"))},
		{"gen-leb-overlong", "integer too large",
			cat(header, []byte{0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00})},
		{"gen-truncated-hello", "unexpected end of module", hello[:len(hello)/2]},
		{"gen-truncated-header", "not a wasm binary", header[:4]},
		{"gen-garbage", "not a wasm binary", []byte("MZ\x90\x00 this is not wasm")},
	}
	for _, g := range guests {
		if err := os.WriteFile(filepath.Join(dir, g.name+".wasm"), g.wasm, 0o644); err != nil {
			fail(err)
		}
		meta := fmt.Sprintf(";; expect: %s\n;; generated by gen.go\n", g.expect)
		if err := os.WriteFile(filepath.Join(dir, g.name+".expect"), []byte(meta), 0o644); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gen:", err)
	os.Exit(1)
}
