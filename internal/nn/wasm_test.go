package nn_test

import "slices"

// proxyModule assembles a wasm module that imports functions of
// wasi_ephemeral_nn (each (i32 × n) → i32), exports a wrapper of each under
// its name, exports a memory of the given pages and an empty _start, so a test
// can write guest memory and call the host functions exactly as a guest
// does.
func proxyModule(pages uint32, imports map[string]int) []byte {
	names := make([]string, 0, len(imports))
	for n := range imports {
		names = append(names, n)
	}
	slices.Sort(names)
	// Types: index k is (i32 × k) → i32 for k = 0..8; index 9 is () → ().
	var types []byte
	types = uleb(types, 10)
	for k := range 9 {
		types = append(types, 0x60)
		types = uleb(types, uint32(k))
		for range k {
			types = append(types, 0x7f)
		}
		types = append(types, 1, 0x7f)
	}
	types = append(types, 0x60, 0, 0)

	var imps []byte
	imps = uleb(imps, uint32(len(names)))
	for _, n := range names {
		imps = str(imps, "wasi_ephemeral_nn")
		imps = str(imps, n)
		imps = append(imps, 0x00)
		imps = uleb(imps, uint32(imports[n]))
	}
	n := uint32(len(names))
	// Functions: a wrapper per import (calls it with its own params), then
	// _start. Calling through wasm makes the caller the guest, as in real use.
	funcs := uleb(nil, n+1)
	for _, name := range names {
		funcs = uleb(funcs, uint32(imports[name]))
	}
	funcs = uleb(funcs, 9)
	mem := uleb(append(uleb(nil, 1), 0x00), pages)

	var exps []byte
	exps = uleb(exps, n+2)
	exps = append(str(exps, "memory"), 0x02, 0)
	for i, name := range names {
		exps = uleb(append(str(exps, name), 0x00), n+uint32(i))
	}
	exps = uleb(append(str(exps, "_start"), 0x00), 2*n)
	code := uleb(nil, n+1)
	for i, name := range names {
		var body []byte
		body = append(body, 0) // no locals
		for k := range imports[name] {
			body = uleb(append(body, 0x20), uint32(k)) // local.get k
		}
		body = uleb(append(body, 0x10), uint32(i)) // call import i
		body = append(body, 0x0b)
		code = append(uleb(code, uint32(len(body))), body...)
	}
	code = append(code, 2, 0, 0x0b)

	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	for _, s := range []struct {
		id   byte
		body []byte
	}{{1, types}, {2, imps}, {3, funcs}, {5, mem}, {7, exps}, {10, code}} {
		out = append(out, s.id)
		out = uleb(out, uint32(len(s.body)))
		out = append(out, s.body...)
	}
	return out
}

func uleb(b []byte, v uint32) []byte {
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

func str(b []byte, s string) []byte { return append(uleb(b, uint32(len(s))), s...) }

// nnImports are the functions of wasi_ephemeral_nn with their arity.
var nnImports = map[string]int{
	"load": 5, "load_by_name": 3, "load_by_name_with_config": 5, "init_execution_context": 2,
	"set_input": 3, "compute": 1, "get_output": 5, "finalize_execution_context": 1, "unload": 1,
	"compute_single": 1, "get_output_single": 5, "fini_single": 1,
}
