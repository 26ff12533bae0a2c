package sandbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmjobs/wasmjobs/internal/hostcall"
)

// Deadlines inside guest code
//
// wazero's own way to stop a running guest at its deadline
// (WithCloseOnContextDone) calls a check at every loop back-edge; the call
// spills the loop's registers, which made loop-heavy guests 2–5× slower.
// Instead, meter rewrites every module before it is compiled so that it
// counts down a fuel global of its own:
//
//   - at every loop header, and at the entry of every function that makes
//     calls (a function without loops or calls ends by itself), the code
//     takes from the global the size of the loop's or the function's body,
//     in units of up to fuelUnit bytes of code: an upper bound on the
//     straight-line code it can run before the next check; when the global
//     was used up it first calls the host function fuel, which ends the
//     guest if its context is done and otherwise hands out more;
//   - an instruction whose cost grows with its operand (memory.fill, copy
//     and init, the table ones) empties the global, so the next check
//     calls fuel;
//   - any endless run passes loop headers or function entries endlessly, so
//     it reaches fuel; fuel sizes what it hands out so that it is called
//     about every fuelInterval of guest time, never more than maxFuel units,
//     so a run that switches to costlier code is still checked within
//     maxFuel × (the cost of fuelUnit bytes of code).
//
// The added global, type and import come last in their index spaces, so
// only function indices move (by one, past the imported functions); the
// rewrite fixes them in calls, ref.func, element segments, exports, the
// start function and the name section. A module that refers to a global
// index it does not define, which after the rewrite would be the fuel
// global, is refused.

const (
	// meterModule and meterFunc name the host function a metered module
	// imports. Guests may not import from meterModule themselves.
	meterModule = "wasmjobs:sandbox"
	meterFunc   = "fuel"

	fuelInterval = time.Millisecond
	fuelUnit     = 64
	maxFuel      = 1 << 16
)

// rewrite collects the edits of the metering pass, at offsets in the module.
type rewrite struct {
	funcImports uint32 // imported functions: indices from here on move up by one
	globals     uint32 // the module's globals: the fuel global's index
	edits       []edit // in increasing offset order
}

// weight is the fuel a check point takes for a body of n bytes.
func weight(n int) uint32 { return 1 + uint32(n/fuelUnit) }

// edit replaces the module's bytes [at, end) by data (an insertion when
// at == end).
type edit struct {
	at, end int
	data    []byte
}

// funcIdx reads a function index; in the metering pass it records the
// index's move past the added import.
func (r *reader) funcIdx() (uint32, error) {
	start := r.off
	v, err := r.u32()
	if err != nil || r.rw == nil || v < r.rw.funcImports {
		return v, err
	}
	r.rw.edits = append(r.rw.edits, edit{at: r.base + start, end: r.base + r.off, data: appendU32(nil, v+1)})
	return v, nil
}

// globalIdx reads a global index; in the metering pass an index past the
// module's globals, which would name the fuel global, is an error.
func (r *reader) globalIdx() (uint32, error) {
	v, err := r.u32()
	if err == nil && r.rw != nil && v >= r.rw.globals {
		return v, fmt.Errorf("global index %d out of range (%d globals) at offset %d", v, r.rw.globals, r.base+r.off)
	}
	return v, err
}

// checkPoint records a fuel check taking w to insert at the reader's
// position and returns its index in the edits (-1 outside the metering
// pass), for setCheck.
func (r *reader) checkPoint(w uint32) int {
	if r.rw == nil {
		return -1
	}
	r.rw.edits = append(r.rw.edits, edit{at: r.base + r.off, end: r.base + r.off, data: r.rw.check(w)})
	return len(r.rw.edits) - 1
}

// setCheck makes check point i take w.
func (r *reader) setCheck(i int, w uint32) {
	if r.rw != nil && i >= 0 {
		r.rw.edits[i].data = r.rw.check(w)
	}
}

// exhaust records, at the reader's position, code that empties the fuel
// global: the next check point calls fuel.
func (r *reader) exhaust() {
	if r.rw != nil {
		data := append([]byte{0x41, 0x00, 0x24}, appendU32(nil, r.rw.globals)...) // i32.const 0; global.set $fuel
		r.rw.edits = append(r.rw.edits, edit{at: r.base + r.off, end: r.base + r.off, data: data})
	}
}

// meter returns wasm, a module that passed budget, rewritten to count down
// fuel (see the top of this file).
func meter(wasm []byte, lim ModuleLimits) ([]byte, error) {
	type section struct {
		id         byte
		start, end int // the whole section
		body       int // where its contents start
	}
	var secs []section
	rw := &rewrite{}
	var types uint32
	r := &reader{b: wasm, off: len(wasmHeader)}
	for r.off < len(r.b) {
		start := r.off
		id, _ := r.byte()
		size, _ := r.u32()
		body := r.off
		content, err := r.bytes(size)
		if err != nil {
			return nil, err
		}
		secs = append(secs, section{id: id, start: start, end: r.off, body: body})
		sr := &reader{b: content, base: body}
		switch id {
		case secType:
			types, _ = sr.u32()
		case secImport:
			if rw.funcImports, err = checkImports(sr, lim); err != nil {
				return nil, err
			}
		case secGlobal:
			rw.globals, _ = sr.u32()
		}
	}

	// Record the edits, section by section in module order.
	for _, s := range secs {
		sr := &reader{b: wasm[s.body:s.end], base: s.body, rw: rw}
		var err error
		switch s.id {
		case secCustom:
			if name, _ := sr.name(); name == "name" {
				err = shiftNames(sr)
			}
		case secGlobal:
			err = globalInits(sr)
		case secExport:
			err = checkExports(sr, lim)
		case secStart:
			_, err = sr.funcIdx()
		case secElement:
			err = checkElements(sr, lim)
		case secCode:
			_, err = checkCode(sr, lim)
		case secData:
			err = checkData(sr, lim)
		}
		if err != nil {
			return nil, err
		}
	}

	// Write the module: the added entries at the end of their sections
	// (sections created where missing, in their place), the edits applied,
	// code bodies with their new sizes.
	out := make([]byte, 0, len(wasm)+len(wasm)/8)
	out = append(out, wasmHeader...)
	next := 0 // the next edit
	apply := func(from, to int) []byte {
		var b []byte
		for ; next < len(rw.edits) && rw.edits[next].at < to; next++ {
			e := rw.edits[next]
			b = append(b, wasm[from:e.at]...)
			b = append(b, e.data...)
			from = e.end
		}
		return append(b, wasm[from:to]...)
	}
	fuelType := []byte{0x60, 0x00, 0x01, 0x7f} // () -> i32
	fuelImport := appendName(appendName(nil, meterModule), meterFunc)
	fuelImport = appendU32(append(fuelImport, kindFunc), types)
	fuelGlobal := []byte{0x7f, 0x01, 0x41, 0x00, 0x0b} // (mut i32) (i32.const 0)
	added := map[byte]bool{}
	addMissing := func(before byte) {
		for _, a := range []struct {
			id    byte
			entry []byte
		}{{secType, fuelType}, {secImport, fuelImport}, {secGlobal, fuelGlobal}} {
			if !added[a.id] && sectionOrder(a.id) < sectionOrder(before) {
				out = appendSection(out, a.id, append([]byte{1}, a.entry...))
				added[a.id] = true
			}
		}
	}
	for _, s := range secs {
		if s.id != secCustom {
			addMissing(s.id)
		}
		cr := &reader{b: wasm[s.body:s.end], base: s.body}
		switch s.id {
		case secType, secImport, secGlobal:
			n, _ := cr.u32()
			entry := map[byte][]byte{secType: fuelType, secImport: fuelImport, secGlobal: fuelGlobal}[s.id]
			body := appendU32(nil, n+1)
			body = append(body, apply(s.body+cr.off, s.end)...)
			out = appendSection(out, s.id, append(body, entry...))
			added[s.id] = true
		case secCode:
			n, _ := cr.u32()
			body := appendU32(nil, n)
			for range n {
				size, _ := cr.u32()
				from := s.body + cr.off
				cr.off += int(size)
				fn := apply(from, from+int(size))
				body = append(appendU32(body, uint32(len(fn))), fn...)
			}
			out = appendSection(out, secCode, body)
		default:
			out = appendSection(out, s.id, apply(s.body, s.end))
		}
	}
	addMissing(secCustom + 100) // whatever is still missing goes last
	if next != len(rw.edits) {
		return nil, errors.New("sandbox: metering: edits left unapplied") // a bug, not the guest's
	}
	return out, nil
}

// sectionOrder is where a section id comes in a module.
func sectionOrder(id byte) int {
	switch id {
	case 13: // tags: after memories
		return 55
	case secDataCnt: // before code
		return 95
	}
	return int(id) * 10
}

func appendName(b []byte, s string) []byte {
	return append(appendU32(b, uint32(len(s))), s...)
}

// check is the code of a check point taking w:
//
//	global.get $fuel; i32.const 1; i32.lt_s; if; call $fuel; global.set $fuel; end
//	global.get $fuel; i32.const w; i32.sub; global.set $fuel
func (rw *rewrite) check(w uint32) []byte {
	g := appendU32(nil, rw.globals)
	b := append([]byte{0x23}, g...)
	b = append(b, 0x41, 0x01, 0x48, 0x04, 0x40, 0x10)
	b = appendU32(b, rw.funcImports)
	b = append(append(append(b, 0x24), g...), 0x0b)
	b = append(append(b, 0x23), g...)
	b = appendS32(append(b, 0x41), int32(w))
	b = append(b, 0x6b, 0x24)
	return append(b, g...)
}

// appendS32 appends v as a signed LEB128.
func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// globalInits walks the global section for the function and global
// indices in its initializers.
func globalInits(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := range n {
		if _, err := r.byte(); err != nil { // value type
			return err
		}
		if _, err := r.byte(); err != nil { // mutability
			return err
		}
		if err := r.constExpr(); err != nil {
			return fmt.Errorf("global %d: %w", i, err)
		}
	}
	return r.end("global")
}

// shiftNames walks a name section for the function indices of its function
// and local names (the other subsections name nothing that moves).
func shiftNames(r *reader) error {
	for r.left() > 0 {
		start := r.base + r.off
		id, err := r.byte()
		if err != nil {
			return err
		}
		size, err := r.u32()
		if err != nil {
			return err
		}
		sub := &reader{b: r.b[r.off:], base: r.base + r.off, rw: r.rw}
		if _, err := r.bytes(size); err != nil {
			return err
		}
		sub.b = sub.b[:size]
		if id != 1 && id != 2 {
			continue
		}
		// Function indices may grow by a byte: the subsection's size
		// must follow. Names are rewritten whole, so record one edit
		// replacing the subsection.
		body, err := shiftedNameMap(sub, id == 2)
		if err != nil {
			return err
		}
		r.rw.edits = append(r.rw.edits, edit{at: start, end: sub.base + int(size),
			data: append(appendU32([]byte{id}, uint32(len(body))), body...)})
	}
	return nil
}

// shiftedNameMap rewrites a function name map (or, locals, an indirect map
// keyed by function index) with function indices moved.
func shiftedNameMap(r *reader, locals bool) ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n)
	for range n {
		idx, err := r.u32()
		if err != nil {
			return nil, err
		}
		if idx >= r.rw.funcImports {
			idx++
		}
		out = appendU32(out, idx)
		from := r.off
		if locals {
			m, err := r.u32()
			if err != nil {
				return nil, err
			}
			for range m {
				if _, err := r.u32(); err != nil {
					return nil, err
				}
				if _, err := r.name(); err != nil {
					return nil, err
				}
			}
		} else if _, err := r.name(); err != nil {
			return nil, err
		}
		out = append(out, r.b[from:r.off]...)
	}
	return out, nil
}

// fuelFunc is the host function metered modules call when their fuel runs
// out: it ends the guest if its context is done, and otherwise returns the
// next count, sized to come back after about fuelInterval.
func fuelFunc(ctx context.Context, mod api.Module, stack []uint64) {
	hostcall.ExitIfDone(ctx, mod)
	st, _ := ctx.Value(fuelKey{}).(*fuelState)
	if st == nil {
		stack[0] = 1 << 10
		return
	}
	now := time.Now()
	switch d := now.Sub(st.last); {
	case st.last.IsZero():
		st.n = 1 << 8
	case d < fuelInterval/4 && st.n < maxFuel:
		st.n *= 2
	case d > 2*fuelInterval && st.n > 1:
		st.n /= 2
	}
	st.last = now
	stack[0] = uint64(st.n)
}

// fuelKey is the context key of a run's fuelState.
type fuelKey struct{}

// fuelState is one run's fuel sizing.
type fuelState struct {
	last time.Time
	n    uint32
}

// withFuel returns ctx carrying a fresh fuelState for one run.
func withFuel(ctx context.Context) context.Context {
	return context.WithValue(ctx, fuelKey{}, &fuelState{})
}

// instantiateMeter adds the host module of fuelFunc to rt.
func instantiateMeter(ctx context.Context, rt wazero.Runtime) error {
	_, err := rt.NewHostModuleBuilder(meterModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(fuelFunc), nil, []api.ValueType{api.ValueTypeI32}).
		Export(meterFunc).
		Instantiate(ctx)
	return err
}
