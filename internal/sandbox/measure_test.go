//go:build measure

package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

func mcat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
func msec(id byte, body []byte) []byte {
	return mcat([]byte{id}, appendU32(nil, uint32(len(body))), body)
}
func mname(s string) []byte { return append(appendU32(nil, uint32(len(s))), s...) }

// mmodule: F functions of type () -> () with the given body (locals+code, without end handled by caller).
func mmodule(bodies [][]byte) []byte {
	fs := appendU32(nil, uint32(len(bodies)))
	code := appendU32(nil, uint32(len(bodies)))
	for _, b := range bodies {
		fs = append(fs, 1)
		code = append(appendU32(code, uint32(len(b))), b...)
	}
	return mcat(wasmHeader,
		msec(1, []byte{0x02, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x00}),
		msec(2, mcat([]byte{0x01}, mname("wasi_snapshot_preview1"), mname("proc_exit"), []byte{0x00, 0x00})),
		msec(3, fs),
		msec(5, []byte{0x01, 0x00, 0x01}),
		msec(7, mcat([]byte{0x02}, mname("_start"), []byte{0x00, 0x01}, mname("memory"), []byte{0x02, 0x00})),
		msec(10, code))
}

func locals(n int) []byte { return mcat([]byte{0x01}, appendU32(nil, uint32(n)), []byte{0x7f}) }

func shape(kind string, n, f, l int) []byte {
	var code []byte
	switch kind {
	case "seq": // n sequential blocks
		code = bytes.Repeat([]byte{0x02, 0x40, 0x20, 0x00, 0x0d, 0x00, 0x0b}, n)
	case "nest": // n nested blocks
		code = mcat(bytes.Repeat([]byte{0x02, 0x40, 0x20, 0x00, 0x0d, 0x00}, n), bytes.Repeat([]byte{0x0b}, n))
	case "loopnest": // n nested loops, innermost reads l distinct locals
		code = bytes.Repeat([]byte{0x03, 0x40}, n)
		for i := 0; i < l; i++ {
			code = mcat(code, []byte{0x20}, appendU32(nil, uint32(i)), []byte{0x1a})
		}
		code = mcat(code, bytes.Repeat([]byte{0x0b}, n))
	case "loopseqlocals": // n sequential loops each setting l locals
		for j := 0; j < n; j++ {
			code = append(code, 0x03, 0x40)
			for i := 0; i < l; i++ {
				code = mcat(code, []byte{0x20, 0x00, 0x21}, appendU32(nil, uint32(i)))
			}
			code = append(code, 0x20, 0x00, 0x0d, 0x00, 0x0b)
		}
		for i := 0; i < l; i++ { // use all at end
			code = mcat(code, []byte{0x20}, appendU32(nil, uint32(i)), []byte{0x1a})
		}
	case "brtable": // n nested blocks, then a br_table of l targets
		code = bytes.Repeat([]byte{0x02, 0x40}, n)
		code = mcat(code, []byte{0x20, 0x00, 0x0e}, appendU32(nil, uint32(l)))
		for i := 0; i < l; i++ {
			code = append(code, appendU32(nil, uint32(i%n))...)
		}
		code = append(code, 0x00)
		code = mcat(code, bytes.Repeat([]byte{0x0b}, n))
	case "brtables": // n nested blocks, each with br_table of l targets
		for j := 0; j < n; j++ {
			code = append(code, 0x02, 0x40, 0x20, 0x00, 0x0e)
			code = appendU32(code, uint32(l))
			for i := 0; i < l; i++ {
				code = appendU32(code, uint32(i%(j+1)))
			}
			code = append(code, 0x00)
		}
		code = mcat(code, bytes.Repeat([]byte{0x0b}, n))
	case "straight": // n bytes of i32.const 1; drop
		code = bytes.Repeat([]byte{0x41, 0x01, 0x1a}, n/3)
	case "calls": // n calls to self-ish
		code = bytes.Repeat([]byte{0x10, 0x01}, n/2)
	}
	lc := l
	if kind == "brtable" || kind == "brtables" || kind == "straight" || kind == "calls" {
		lc = 1
	}
	body := mcat(locals(max(lc, 1)), code, []byte{0x0b})
	bodies := make([][]byte, f)
	for i := range bodies {
		bodies[i] = body
	}
	return mmodule(bodies)
}

func TestMeasure(t *testing.T) {
	p := strings.Fields(os.Getenv("SHAPE"))
	n, _ := strconv.Atoi(p[1])
	f, _ := strconv.Atoi(p[2])
	l, _ := strconv.Atoi(p[3])
	var wasm []byte
	if p[0] == "combo" {
		wasm = combo()
	} else {
		wasm = shape(p[0], n, f, l)
	}
	_, _, err := budget(wasm, ModuleLimits{}.WithDefaults(), 4096)
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	start := time.Now()
	_, cerr := rt.CompileModule(ctx, wasm)
	fmt.Printf("%-40s bytes=%d budget=%v compile=%v %.2fs\n", os.Getenv("SHAPE"), len(wasm), err, cerr, time.Since(start).Seconds())
}

func TestGuestStats(t *testing.T) {
	for _, p := range strings.Fields(os.Getenv("GUESTS")) {
		wasm, _ := os.ReadFile(p)
		r := &reader{b: wasm, off: 8}
		for r.off < len(r.b) {
			id, _ := r.byte()
			size, _ := r.u32()
			body, _ := r.bytes(size)
			if id != secCode {
				continue
			}
			sr := &reader{b: body}
			n, _ := sr.u32()
			var tot, mx codeStats
			var maxBody, maxLocals, maxLxD uint64
			for range n {
				sz, _ := sr.u32()
				b, _ := sr.bytes(sz)
				maxBody = max(maxBody, uint64(sz))
				br := &reader{b: b}
				d, _ := br.u32()
				var loc uint64
				for range d {
					c, _ := br.u32()
					br.byte()
					loc += uint64(c)
				}
				maxLocals = max(maxLocals, loc)
				st, err := controlBlocks(br)
				if err != nil {
					t.Fatal(err)
				}
				maxLxD = max(maxLxD, loc*uint64(st.loopDepth))
				tot.blocks += st.blocks
				tot.calls += st.calls
				tot.brTargets += st.brTargets
				mx.blocks = max(mx.blocks, st.blocks)
				mx.calls = max(mx.calls, st.calls)
				mx.brTargets = max(mx.brTargets, st.brTargets)
				mx.loopDepth = max(mx.loopDepth, st.loopDepth)
			}
			fmt.Printf("%-28s size=%d funcs=%d code=%d maxbody=%d maxlocals=%d blocks tot=%d max=%d calls tot=%d max=%d brt tot=%d max=%d loopdepth=%d locals*loopdepth=%d\n",
				p[strings.LastIndex(p, "/")+1:], len(wasm), n, size, maxBody, maxLocals, tot.blocks, mx.blocks, tot.calls, mx.calls, tot.brTargets, mx.brTargets, mx.loopDepth, maxLxD)
		}
	}
}

func bodiesOf(wasm []byte) [][]byte {
	r := &reader{b: wasm, off: 8}
	for r.off < len(r.b) {
		id, _ := r.byte()
		size, _ := r.u32()
		body, _ := r.bytes(size)
		if id == secCode {
			sr := &reader{b: body}
			n, _ := sr.u32()
			var out [][]byte
			for range n {
				sz, _ := sr.u32()
				b, _ := sr.bytes(sz)
				out = append(out, b)
			}
			return out
		}
	}
	return nil
}

func combo() []byte {
	var b [][]byte
	b = append(b, bodiesOf(shape("nest", 9990, 2, 1))...)
	b = append(b, bodiesOf(shape("seq", 9990, 1, 1))...)
	b = append(b, bodiesOf(shape("loopnest", 999, 1, 1000))...)
	b = append(b, bodiesOf(shape("brtable", 1, 1, 32767))...)
	b = append(b, bodiesOf(shape("calls", 99998, 20, 1))...)
	return mmodule(b)
}
