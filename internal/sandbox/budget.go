package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// ModuleLimits is the budget a guest module must fit before wazero compiles
// it. wazero caps linear memory only; everything else a module declares
// (tables, locals, segments, counts that size allocations) is checked here,
// on the raw bytes, so that a tiny module cannot make the host allocate in
// proportion to a number it states. Zero fields take their defaults.
type ModuleLimits struct {
	// MaxModuleBytes caps the module's size. Defaults to 64 MiB.
	MaxModuleBytes int
	// MaxTypes caps the type section's entries. Defaults to 10 000.
	MaxTypes uint32
	// MaxImports caps imported functions. Defaults to 1 000.
	MaxImports uint32
	// MaxFunctions caps the functions the module defines. Defaults to 100 000.
	MaxFunctions uint32
	// MaxGlobals caps the globals the module defines. Defaults to 10 000.
	MaxGlobals uint32
	// MaxExports caps the exports. Defaults to 10 000.
	MaxExports uint32
	// MaxTables caps the tables the module defines. Defaults to 4.
	MaxTables uint32
	// MaxTableElements caps every table's size (8 bytes per element on the
	// host). A table declared without a maximum, or with a larger one, gets
	// this maximum in the bytes handed to wazero, so table.grow past it
	// returns -1 as the spec allows; a larger initial size is rejected.
	// Defaults to 1 Mi (8 MiB per table).
	MaxTableElements uint32
	// MaxElementSegments caps the element section's segments. Defaults to 10 000.
	MaxElementSegments uint32
	// MaxElementItems caps the items of all element segments together: each
	// instance keeps its own copy of them. Defaults to 1 Mi.
	MaxElementItems uint32
	// MaxDataSegments caps the data section's segments (Go programs have one
	// per symbol: tens of thousands). Defaults to 1 000 000.
	MaxDataSegments uint32
	// MaxLocalsPerFunction caps the locals one function declares; wazero
	// allocates for each at compile time and in every call frame. Defaults
	// to 50 000.
	MaxLocalsPerFunction uint32
	// MaxFunctionBodyBytes caps one function body, which bounds the
	// compiler's memory for it. Defaults to 1 MiB.
	MaxFunctionBodyBytes uint32
	// MaxBlocksPerFunction caps the block, loop and if instructions of one
	// function, a loop counting twice (its deadline check is an if): the
	// compiler's time and memory grow faster than linearly in their
	// number. Defaults to 10 000.
	MaxBlocksPerFunction uint32
	// MaxBlockCostPerModule caps the sum over all functions of the square
	// of each one's blocks: compile time grows with that square (10 000
	// blocks in one function: about 1 s of CPU), and the module is compiled
	// one function after another. Defaults to 300 000 000 (three functions at
	// the per-function limit, or 300 of 1 000 blocks: about 4 s).
	MaxBlockCostPerModule uint64
	// MaxLoopLocalsPerFunction caps a function's locals times its deepest
	// loop nesting: a local read inside nested loops becomes a parameter of
	// every enclosing loop header (2 000 loops deep reading 2 000 locals:
	// 4.4 s and 590 MB). Defaults to 1 000 000 (0.6 s and 150 MB).
	MaxLoopLocalsPerFunction uint64
	// MaxBrTableTargetsPerFunction caps the targets of a function's
	// br_table instructions together, about 2 KB of compiler memory each.
	// Defaults to 32 768.
	MaxBrTableTargetsPerFunction uint32
	// MaxCallsPerFunction caps a function's call instructions, about 1.3 KB
	// of compiler memory each. Defaults to 50 000.
	MaxCallsPerFunction uint32
	// MaxCallsPerModule caps the call instructions of the whole module:
	// their relocations are held until the module is linked (1.9 M calls
	// and some br_tables: 585 MB). Defaults to 1 000 000.
	MaxCallsPerModule uint32
	// MaxCustomSectionBytes caps the custom sections together. They are
	// dropped before compiling (a well-formed "name" section is kept, for
	// stack traces). Defaults to 16 MiB.
	MaxCustomSectionBytes int
}

// WithDefaults returns l with zero fields set to their defaults.
func (l ModuleLimits) WithDefaults() ModuleLimits {
	def := func(v *uint32, d uint32) {
		if *v == 0 {
			*v = d
		}
	}
	if l.MaxModuleBytes <= 0 {
		l.MaxModuleBytes = 64 << 20
	}
	def(&l.MaxTypes, 10_000)
	def(&l.MaxImports, 1_000)
	def(&l.MaxFunctions, 100_000)
	def(&l.MaxGlobals, 10_000)
	def(&l.MaxExports, 10_000)
	def(&l.MaxTables, 4)
	def(&l.MaxTableElements, 1<<20)
	def(&l.MaxElementSegments, 10_000)
	def(&l.MaxElementItems, 1<<20)
	def(&l.MaxDataSegments, 1_000_000)
	def(&l.MaxLocalsPerFunction, 50_000)
	def(&l.MaxFunctionBodyBytes, 1<<20)
	def(&l.MaxBlocksPerFunction, 10_000)
	if l.MaxBlockCostPerModule == 0 {
		l.MaxBlockCostPerModule = 300_000_000
	}
	if l.MaxLoopLocalsPerFunction == 0 {
		l.MaxLoopLocalsPerFunction = 1_000_000
	}
	def(&l.MaxBrTableTargetsPerFunction, 32_768)
	def(&l.MaxCallsPerFunction, 50_000)
	def(&l.MaxCallsPerModule, 1_000_000)
	if l.MaxCustomSectionBytes <= 0 {
		l.MaxCustomSectionBytes = 16 << 20
	}
	return l
}

// Wasm binary section ids.
const (
	secCustom   = 0
	secType     = 1
	secImport   = 2
	secFunction = 3
	secTable    = 4
	secMemory   = 5
	secGlobal   = 6
	secExport   = 7
	secStart    = 8
	secElement  = 9
	secCode     = 10
	secData     = 11
	secDataCnt  = 12
)

var wasmHeader = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// errBudget marks a module that is well formed but over a limit.
var errBudget = errors.New("over the module budget")

// budget checks wasm against lim and the memory limit, and returns the bytes
// to compile (wasm itself, or a copy with custom sections dropped and table
// maxima capped) and what the module declares in its custom sections.
// The error is a one-line reason.
func budget(wasm []byte, lim ModuleLimits, memoryLimitPages uint32) ([]byte, declared, error) {
	var d declared
	code, err := budgetModule(wasm, lim, memoryLimitPages, &d)
	return code, d, err
}

// declared is what a module declares in its custom sections.
type declared struct {
	models  []string // ModelsSection
	records bool     // ABISection names "records"
}

func budgetModule(wasm []byte, lim ModuleLimits, memoryLimitPages uint32, d *declared) ([]byte, error) {
	if len(wasm) > lim.MaxModuleBytes {
		return nil, fmt.Errorf("%w: module is %d bytes, limit %d", errBudget, len(wasm), lim.MaxModuleBytes)
	}
	if len(wasm) < len(wasmHeader) || !bytes.Equal(wasm[:4], wasmHeader[:4]) {
		return nil, errors.New("not a wasm binary (no \\0asm magic)")
	}
	if !bytes.Equal(wasm[4:8], wasmHeader[4:]) {
		return nil, fmt.Errorf("unsupported wasm binary version % x", wasm[4:8])
	}
	r := &reader{b: wasm, off: len(wasmHeader)}
	out := make([]byte, 0, len(wasm))
	out = append(out, wasmHeader...)
	changed := false
	var funcs uint32
	haveFuncs, haveCode := false, false
	customBytes := 0
	for r.off < len(r.b) {
		start := r.off
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("section %d size: %w", id, err)
		}
		body, err := r.bytes(size)
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
		sr := &reader{b: body, base: r.off - len(body)}
		keep := true
		switch id {
		case secCustom:
			customBytes += len(body)
			if customBytes > lim.MaxCustomSectionBytes {
				return nil, fmt.Errorf("%w: custom sections exceed %d bytes", errBudget, lim.MaxCustomSectionBytes)
			}
			name, err := sr.name()
			if err != nil {
				return nil, fmt.Errorf("custom section name: %w", err)
			}
			switch name {
			case ModelsSection:
				if d.models, err = declaredModels(body[sr.off:], d.models); err != nil {
					return nil, err
				}
			case ABISection:
				d.records = d.records || slices.Contains(strings.Fields(string(body[sr.off:])), "records")
			}
			keep = name == "name" && wellFormedNames(&reader{b: body[sr.off:]})
		case secType:
			if err := checkTypes(sr, lim); err != nil {
				return nil, err
			}
		case secImport:
			if _, err := checkImports(sr, lim); err != nil {
				return nil, err
			}
		case secFunction:
			if funcs, err = sr.count("functions", lim.MaxFunctions); err != nil {
				return nil, err
			}
			haveFuncs = true
		case secTable:
			nb, err := capTables(sr, lim)
			if err != nil {
				return nil, err
			}
			if nb != nil {
				out = appendSection(out, secTable, nb)
				changed, keep = true, false
			}
		case secMemory:
			if err := checkMemories(sr, memoryLimitPages); err != nil {
				return nil, err
			}
		case secGlobal:
			if _, err := sr.count("globals", lim.MaxGlobals); err != nil {
				return nil, err
			}
		case secExport:
			if err := checkExports(sr, lim); err != nil {
				return nil, err
			}
		case secStart, secDataCnt:
		case secElement:
			if err := checkElements(sr, lim); err != nil {
				return nil, err
			}
		case secCode:
			n, err := checkCode(sr, lim)
			if err != nil {
				return nil, err
			}
			if n != funcs {
				return nil, fmt.Errorf("code section has %d bodies for %d functions", n, funcs)
			}
			haveCode = true
		case secData:
			if err := checkData(sr, lim); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unknown section id %d at offset %d", id, start)
		}
		if keep {
			out = append(out, wasm[start:r.off]...)
		} else if id == secCustom {
			changed = true
		}
	}
	if haveFuncs && funcs > 0 && !haveCode {
		return nil, fmt.Errorf("%d functions declared without a code section", funcs)
	}
	if !changed {
		return wasm, nil
	}
	return out, nil
}

// ModelsSection is the custom section in which a guest declares the
// models it loads by name: their names, each ended by a newline ("ocr-det\n
// ocr-rec\n"). Several such sections add up (a linker concatenates those
// of each object file).
const ModelsSection = "wasmjobs:models"

// ABISection is the custom section in which a guest declares the ABIs it
// speaks beyond Guest ABI v1, by name, each ended by a newline: "records"
// for the records ABI (sandbox.RunOptions.Records).
const ABISection = "wasmjobs:abi"

// Bounds of a models declaration.
const (
	maxDeclaredModels = 64
	maxModelNameBytes = 128
)

// declaredModels adds the model names in body, a ModelsSection, to models,
// without repeats.
func declaredModels(body []byte, models []string) ([]string, error) {
	if len(body) == 0 {
		return models, nil
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(string(body), "\n"), "\n") {
		if err := validModelName(line); err != nil {
			return nil, fmt.Errorf("custom section %s: %w", ModelsSection, err)
		}
		if slices.Contains(models, line) {
			continue
		}
		if len(models) == maxDeclaredModels {
			return nil, fmt.Errorf("custom section %s: more than %d models", ModelsSection, maxDeclaredModels)
		}
		models = append(models, line)
	}
	return models, nil
}

// validModelName accepts what a worker can register as a model name: 1-128
// bytes of letters, digits, '.', '_', '-', '/', ':' or '@'.
func validModelName(s string) error {
	if s == "" || len(s) > maxModelNameBytes {
		return fmt.Errorf("model name %.40q: want 1-%d bytes", s, maxModelNameBytes)
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("._-/:@", c) >= 0:
		default:
			return fmt.Errorf("model name %.40q: byte 0x%02x is not a letter, digit or one of ._-/:@", s, c)
		}
	}
	return nil
}

func appendSection(out []byte, id byte, body []byte) []byte {
	out = append(out, id)
	out = appendU32(out, uint32(len(body)))
	return append(out, body...)
}

func appendU32(b []byte, v uint32) []byte {
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

// checkTypes checks that every function type's vectors fit their bytes:
// wazero sizes them by the stated counts.
func checkTypes(r *reader, lim ModuleLimits) error {
	n, err := r.count("types", lim.MaxTypes)
	if err != nil {
		return err
	}
	for i := range n {
		form, err := r.byte()
		if err != nil {
			return err
		}
		if form != 0x60 {
			return fmt.Errorf("type %d: unsupported form 0x%x", i, form)
		}
		for range 2 { // params, results
			c, err := r.u32()
			if err != nil {
				return fmt.Errorf("type %d: %w", i, err)
			}
			if _, err := r.bytes(c); err != nil { // one byte per number type; wazero checks them
				return fmt.Errorf("type %d: %w", i, err)
			}
		}
	}
	return r.end("type")
}

func checkExports(r *reader, lim ModuleLimits) error {
	n, err := r.count("exports", lim.MaxExports)
	if err != nil {
		return err
	}
	for i := range n {
		if _, err := r.name(); err != nil {
			return fmt.Errorf("export %d name: %w", i, err)
		}
		kind, err := r.byte()
		if err != nil {
			return err
		}
		switch kind {
		case kindFunc:
			_, err = r.funcIdx()
		case kindGlobal:
			_, err = r.globalIdx()
		default:
			_, err = r.u32()
		}
		if err != nil {
			return fmt.Errorf("export %d: %w", i, err)
		}
	}
	return r.end("export")
}

func checkData(r *reader, lim ModuleLimits) error {
	n, err := r.count("data segments", lim.MaxDataSegments)
	if err != nil {
		return err
	}
	for i := range n {
		flags, err := r.u32()
		if err != nil {
			return err
		}
		if flags > 2 {
			return fmt.Errorf("data segment %d: unknown flags %d", i, flags)
		}
		if flags == 2 {
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		if flags != 1 {
			if err := r.constExpr(); err != nil {
				return fmt.Errorf("data segment %d offset: %w", i, err)
			}
		}
		c, err := r.u32()
		if err != nil {
			return fmt.Errorf("data segment %d: %w", i, err)
		}
		if _, err := r.bytes(c); err != nil {
			return fmt.Errorf("data segment %d: %w", i, err)
		}
	}
	return r.end("data")
}

// Import and export kinds.
const (
	kindFunc   = 0
	kindTable  = 1
	kindMemory = 2
	kindGlobal = 3
	kindTag    = 4
)

// errImport marks an import the sandbox never provides.
var errImport = errors.New("import not allowed")

// checkImports checks the import section and returns how many functions
// it imports. Imports from meterModule are the sandbox's own.
func checkImports(r *reader, lim ModuleLimits) (uint32, error) {
	n, err := r.count("imports", lim.MaxImports)
	if err != nil {
		return 0, err
	}
	var funcs uint32
	for range n {
		mod, err := r.name()
		if err != nil {
			return 0, fmt.Errorf("import module name: %w", err)
		}
		field, err := r.name()
		if err != nil {
			return 0, fmt.Errorf("import name: %w", err)
		}
		kind, err := r.byte()
		if err != nil {
			return 0, err
		}
		what := map[byte]string{kindTable: "a table", kindMemory: "a memory", kindGlobal: "a global", kindTag: "a tag"}[kind]
		if mod == meterModule {
			return 0, fmt.Errorf("%w: %s.%s is the sandbox's own", errImport, mod, field)
		}
		if kind != kindFunc {
			if what == "" {
				return 0, fmt.Errorf("import %s.%s has unknown kind %d", mod, field, kind)
			}
			return 0, fmt.Errorf("%w: %s.%s imports %s; guests may import only functions", errImport, mod, field, what)
		}
		funcs++
		if _, err := r.u32(); err != nil {
			return 0, fmt.Errorf("import %s.%s type: %w", mod, field, err)
		}
	}
	return funcs, r.end("import")
}

// capTables checks the table section and returns a rewritten section when
// some table's maximum had to be capped, else nil.
func capTables(r *reader, lim ModuleLimits) ([]byte, error) {
	n, err := r.count("tables", lim.MaxTables)
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n)
	changed := false
	for i := range n {
		ref, err := r.byte()
		if err != nil {
			return nil, err
		}
		if ref != 0x70 && ref != 0x6f {
			return nil, fmt.Errorf("table %d: unsupported element type 0x%x", i, ref)
		}
		flags, err := r.byte()
		if err != nil {
			return nil, err
		}
		if flags > 1 {
			return nil, fmt.Errorf("table %d: unsupported limits flags 0x%x", i, flags)
		}
		min, err := r.u32()
		if err != nil {
			return nil, err
		}
		max := lim.MaxTableElements
		if flags == 1 {
			if max, err = r.u32(); err != nil {
				return nil, err
			}
		}
		if min > lim.MaxTableElements {
			return nil, fmt.Errorf("%w: table %d has %d initial elements, limit %d", errBudget, i, min, lim.MaxTableElements)
		}
		if flags == 0 || max > lim.MaxTableElements {
			max, changed = lim.MaxTableElements, true
		}
		if max < min {
			return nil, fmt.Errorf("table %d: maximum %d below minimum %d", i, max, min)
		}
		out = append(out, ref, 1)
		out = appendU32(appendU32(out, min), max)
	}
	if err := r.end("table"); err != nil {
		return nil, err
	}
	if !changed {
		return nil, nil
	}
	return out, nil
}

func checkMemories(r *reader, limitPages uint32) error {
	n, err := r.count("memories", 1)
	if err != nil {
		return err
	}
	for range n {
		flags, err := r.byte()
		if err != nil {
			return err
		}
		if flags > 3 { // 2 and 3: shared memory, which wazero checks
			return fmt.Errorf("memory: unsupported limits flags 0x%x", flags)
		}
		min, err := r.u32()
		if err != nil {
			return err
		}
		if limitPages > 0 && min > limitPages {
			return fmt.Errorf("%w: initial memory of %d pages (%d MiB) is over the limit of %d MiB", ErrMemoryLimit, min, uint64(min)/16, limitPages/16)
		}
		if flags&1 == 1 {
			if _, err := r.u32(); err != nil {
				return err
			}
		}
	}
	return r.end("memory")
}

func checkElements(r *reader, lim ModuleLimits) error {
	n, err := r.count("element segments", lim.MaxElementSegments)
	if err != nil {
		return err
	}
	var items uint64
	for i := range n {
		flags, err := r.u32()
		if err != nil {
			return err
		}
		if flags > 7 {
			return fmt.Errorf("element segment %d: unknown flags %d", i, flags)
		}
		if flags&2 == 2 && flags&1 == 0 { // explicit table index
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		if flags&1 == 0 { // active: offset expression
			if err := r.constExpr(); err != nil {
				return fmt.Errorf("element segment %d offset: %w", i, err)
			}
		}
		if flags&3 != 0 { // elemkind or reftype
			if _, err := r.byte(); err != nil {
				return err
			}
		}
		// Each item takes at least one byte: the count can be trusted
		// against the section's size once checked.
		c, err := r.u32()
		if err != nil {
			return err
		}
		if int(c) > r.left() {
			return fmt.Errorf("element segment %d: %d items in %d bytes", i, c, r.left())
		}
		items += uint64(c)
		if items > uint64(lim.MaxElementItems) {
			return fmt.Errorf("%w: element segments hold more than %d items", errBudget, lim.MaxElementItems)
		}
		for range c {
			if flags&4 == 0 {
				_, err = r.funcIdx()
			} else {
				err = r.constExpr()
			}
			if err != nil {
				return fmt.Errorf("element segment %d: %w", i, err)
			}
		}
	}
	return r.end("element")
}

// checkCode checks every function body's size, locals and the counts that
// drive compile time (codeStats), per function and for the module, and
// returns the number of bodies.
func checkCode(r *reader, lim ModuleLimits) (uint32, error) {
	n, err := r.count("function bodies", lim.MaxFunctions)
	if err != nil {
		return 0, err
	}
	var blockCost, calls uint64
	for i := range n {
		size, err := r.u32()
		if err != nil {
			return 0, err
		}
		if size > lim.MaxFunctionBodyBytes {
			return 0, fmt.Errorf("%w: function %d body is %d bytes, limit %d", errBudget, i, size, lim.MaxFunctionBodyBytes)
		}
		body, err := r.bytes(size)
		if err != nil {
			return 0, fmt.Errorf("function %d body: %w", i, err)
		}
		br := &reader{b: body, base: r.base + r.off - len(body), rw: r.rw}
		decls, err := br.u32()
		if err != nil {
			return 0, fmt.Errorf("function %d locals: %w", i, err)
		}
		if int(decls) > br.left() {
			return 0, fmt.Errorf("function %d: %d local declarations in %d bytes", i, decls, br.left())
		}
		var locals uint64
		for range decls {
			c, err := br.u32()
			if err != nil {
				return 0, fmt.Errorf("function %d locals: %w", i, err)
			}
			locals += uint64(c)
			if locals > uint64(lim.MaxLocalsPerFunction) {
				return 0, fmt.Errorf("%w: function %d declares more than %d locals", errBudget, i, lim.MaxLocalsPerFunction)
			}
			if _, err := br.byte(); err != nil { // value type; wazero checks it
				return 0, fmt.Errorf("function %d locals: %w", i, err)
			}
		}
		// A function that calls gets a fuel check at its entry (see
		// meter); dropped again when the walk finds no call.
		entry := br.checkPoint(weight(int(size)))
		st, err := controlBlocks(br)
		if err != nil {
			return 0, fmt.Errorf("function %d: %w", i, err)
		}
		if entry >= 0 && st.calls == 0 {
			r.rw.edits = append(r.rw.edits[:entry], r.rw.edits[entry+1:]...)
		}
		if st.blocks > lim.MaxBlocksPerFunction {
			return 0, fmt.Errorf("%w: function %d has %d blocks, limit %d", errBudget, i, st.blocks, lim.MaxBlocksPerFunction)
		}
		if ll := locals * uint64(st.loopDepth); ll > lim.MaxLoopLocalsPerFunction {
			return 0, fmt.Errorf("%w: function %d has %d locals in loops nested %d deep, limit %d for their product",
				errBudget, i, locals, st.loopDepth, lim.MaxLoopLocalsPerFunction)
		}
		if st.brTargets > lim.MaxBrTableTargetsPerFunction {
			return 0, fmt.Errorf("%w: function %d has %d br_table targets, limit %d", errBudget, i, st.brTargets, lim.MaxBrTableTargetsPerFunction)
		}
		if st.calls > lim.MaxCallsPerFunction {
			return 0, fmt.Errorf("%w: function %d has %d calls, limit %d", errBudget, i, st.calls, lim.MaxCallsPerFunction)
		}
		blockCost += uint64(st.blocks) * uint64(st.blocks)
		if blockCost > lim.MaxBlockCostPerModule {
			return 0, fmt.Errorf("%w: functions up to %d have blocks whose squares sum to %d, limit %d (compile time grows with them)",
				errBudget, i, blockCost, lim.MaxBlockCostPerModule)
		}
		calls += uint64(st.calls)
		if calls > uint64(lim.MaxCallsPerModule) {
			return 0, fmt.Errorf("%w: functions up to %d have %d calls, limit %d per module", errBudget, i, calls, lim.MaxCallsPerModule)
		}
	}
	return n, r.end("code")
}

// wellFormedNames reports whether a "name" section's maps hold no more
// entries than their bytes can: wazero sizes its maps by the stated counts.
func wellFormedNames(r *reader) bool {
	for r.left() > 0 {
		id, err := r.byte()
		if err != nil {
			return false
		}
		sub, err := r.u32()
		if err != nil {
			return false
		}
		b, err := r.bytes(sub)
		if err != nil {
			return false
		}
		sr := &reader{b: b}
		switch id {
		case 1: // function names
			if !nameMap(sr) {
				return false
			}
		case 2: // local names
			n, err := sr.u32()
			if err != nil || int(n) > sr.left() {
				return false
			}
			for range n {
				if _, err := sr.u32(); err != nil || !nameMap(sr) {
					return false
				}
			}
		}
	}
	return true
}

func nameMap(r *reader) bool {
	n, err := r.u32()
	if err != nil || int(n) > r.left()/2 {
		return false
	}
	for range n {
		if _, err := r.u32(); err != nil {
			return false
		}
		if _, err := r.name(); err != nil {
			return false
		}
	}
	return true
}

// reader decodes a wasm binary; every read is bounds-checked.
type reader struct {
	b    []byte
	off  int
	base int      // offset of b in the module, for messages and edits
	rw   *rewrite // the metering pass's edits; nil while checking the budget
}

var errTruncated = errors.New("unexpected end of module")

func (r *reader) left() int { return len(r.b) - r.off }

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

// u32 reads an unsigned LEB128 of at most 5 bytes.
func (r *reader) u32() (uint32, error) {
	var v uint32
	for i := 0; i < 5; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if i == 4 && c > 0x0f {
			return 0, fmt.Errorf("integer too large at offset %d", r.base+r.off-1)
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("integer too long at offset %d", r.base+r.off)
}

// skipLEB skips a signed or unsigned LEB128 of at most max bytes.
func (r *reader) skipLEB(max int) error {
	for i := 0; i < max; i++ {
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c&0x80 == 0 {
			return nil
		}
	}
	return fmt.Errorf("integer too long at offset %d", r.base+r.off)
}

func (r *reader) bytes(n uint32) ([]byte, error) {
	if uint64(n) > uint64(r.left()) {
		return nil, fmt.Errorf("%w: %d bytes wanted at offset %d, %d left", errTruncated, n, r.base+r.off, r.left())
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(n)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("name is not UTF-8 at offset %d", r.base+r.off-len(b))
	}
	return string(b), nil
}

// count reads a vector length and checks it against max and against the
// bytes left (every entry takes at least one).
func (r *reader) count(what string, max uint32) (uint32, error) {
	n, err := r.u32()
	if err != nil {
		return 0, fmt.Errorf("%s count: %w", what, err)
	}
	if n > max {
		return 0, fmt.Errorf("%w: %d %s, limit %d", errBudget, n, what, max)
	}
	if int(n) > r.left() {
		return 0, fmt.Errorf("%d %s declared in %d bytes", n, what, r.left())
	}
	return n, nil
}

// end fails unless the section was read to its end.
func (r *reader) end(section string) error {
	if r.left() != 0 {
		return fmt.Errorf("%s section has %d trailing bytes", section, r.left())
	}
	return nil
}

// constExpr skips a constant expression up to its end opcode.
func (r *reader) constExpr() error {
	for steps := 0; steps < 1<<10; steps++ {
		op, err := r.byte()
		if err != nil {
			return err
		}
		switch op {
		case 0x0b: // end
			return nil
		case 0x41: // i32.const
			err = r.skipLEB(5)
		case 0x42: // i64.const
			err = r.skipLEB(10)
		case 0x43: // f32.const
			_, err = r.bytes(4)
		case 0x44: // f64.const
			_, err = r.bytes(8)
		case 0x23: // global.get
			_, err = r.globalIdx()
		case 0xd2: // ref.func
			_, err = r.funcIdx()
		case 0xd0: // ref.null
			_, err = r.byte()
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended constant arithmetic
		case 0xfd: // v128.const
			var sub uint32
			if sub, err = r.u32(); err == nil {
				if sub != 12 {
					return fmt.Errorf("unsupported constant opcode 0xfd %d", sub)
				}
				_, err = r.bytes(16)
			}
		default:
			return fmt.Errorf("unsupported constant opcode 0x%x at offset %d", op, r.base+r.off-1)
		}
		if err != nil {
			return err
		}
	}
	return errors.New("constant expression too long")
}
