package sandbox

import "fmt"

// codeStats are the counts of one function's instructions that drive
// wazero's optimizing compiler's time and memory faster than its size does.
type codeStats struct {
	// blocks counts block, loop and if, a loop twice: the fuel check that
	// metering puts in every loop header is an if (see meter). Compile
	// time grows with their square.
	blocks uint32
	// loopDepth is the deepest nesting of loops: every local read inside
	// becomes a block parameter of each enclosing loop header.
	loopDepth uint32
	// brTargets counts the targets of all br_table instructions: each
	// costs about 2 KB of compiler memory.
	brTargets uint32
	// calls counts call and call_indirect: each costs about 1.3 KB.
	calls uint32
}

// controlBlocks walks a function's instructions and returns its codeStats.
// Immediates are skipped by their encoding; an opcode this walk does not
// know is an error, as for wazero.
func controlBlocks(r *reader) (st codeStats, err error) {
	// open blocks: for a loop, where its body starts and its check point
	// (see meter), whose weight is known at its end.
	type open struct {
		loop        bool
		body, check int
	}
	var blocks []open
	var depth uint32
	for r.left() > 0 {
		op, _ := r.byte()
		switch {
		case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if: block type
			st.blocks++
			b := open{loop: op == 0x03, check: -1}
			if b.loop {
				st.blocks++
				depth++
				st.loopDepth = max(st.loopDepth, depth)
			}
			if err = r.skipLEB(5); err == nil && b.loop {
				b.body, b.check = r.off, r.checkPoint(1)
			}
			blocks = append(blocks, b)
		case op == 0x0b: // end
			if n := len(blocks); n > 0 {
				if b := blocks[n-1]; b.loop {
					depth--
					r.setCheck(b.check, weight(r.off-b.body))
				}
				blocks = blocks[:n-1]
			}
		case op == 0x10 || op == 0x12: // call, return_call
			st.calls++
			_, err = r.funcIdx()
		case op == 0xd2: // ref.func
			_, err = r.funcIdx()
		case op == 0x23 || op == 0x24: // global.get, global.set
			_, err = r.globalIdx()
		case op == 0x0c || op == 0x0d || // br, br_if
			(op >= 0x20 && op <= 0x26): // locals, table.get/set
			_, err = r.u32()
		case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
			st.calls++
			if _, err = r.u32(); err == nil {
				_, err = r.u32()
			}
		case op == 0x0e: // br_table
			var n uint32
			if n, err = r.u32(); err == nil {
				if int(n) > r.left() {
					return st, fmt.Errorf("br_table with %d targets in %d bytes", n, r.left())
				}
				st.brTargets += n + 1
				for i := uint32(0); i <= n && err == nil; i++ {
					_, err = r.u32()
				}
			}
		case op == 0x1c: // select t
			var n uint32
			if n, err = r.u32(); err == nil {
				_, err = r.bytes(n)
			}
		case op >= 0x28 && op <= 0x3e: // loads and stores: memarg
			err = r.memarg()
		case op == 0x3f || op == 0x40 || op == 0xd0: // memory.size, memory.grow, ref.null
			_, err = r.byte()
		case op == 0x41:
			err = r.skipLEB(5)
		case op == 0x42:
			err = r.skipLEB(10)
		case op == 0x43:
			_, err = r.bytes(4)
		case op == 0x44:
			_, err = r.bytes(8)
		case op <= 0x01 || op == 0x05 || op == 0x0f || op == 0x1a || op == 0x1b ||
			(op >= 0x45 && op <= 0xc4) || op == 0xd1:
			// no immediates
		case op == 0xfc:
			var sub uint32
			if sub, err = r.miscOp(); err == nil && sub >= 8 && sub != 9 && sub != 13 && sub != 16 {
				// memory.init/copy/fill, table.init/copy/grow/fill: their
				// cost grows with an operand.
				r.exhaust()
			}
		case op == 0xfd:
			err = r.simdOp()
		default:
			return st, fmt.Errorf("unknown opcode 0x%x at offset %d", op, r.base+r.off-1)
		}
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

func (r *reader) memarg() error {
	if _, err := r.u32(); err != nil { // alignment
		return err
	}
	return r.skipLEB(10) // offset
}

// miscOp skips the immediates of a 0xfc-prefixed instruction and returns
// its sub-opcode.
func (r *reader) miscOp() (uint32, error) {
	sub, err := r.u32()
	if err != nil {
		return 0, err
	}
	switch {
	case sub <= 7: // saturating truncations
		return sub, nil
	case sub == 8: // memory.init
		if _, err := r.u32(); err != nil {
			return sub, err
		}
		_, err = r.byte()
	case sub == 9 || sub == 13 || (sub >= 15 && sub <= 17): // data.drop, elem.drop, table.grow/size/fill
		_, err = r.u32()
	case sub == 10: // memory.copy
		_, err = r.bytes(2)
	case sub == 11: // memory.fill
		_, err = r.byte()
	case sub == 12 || sub == 14: // table.init, table.copy
		if _, err = r.u32(); err == nil {
			_, err = r.u32()
		}
	default:
		return sub, fmt.Errorf("unknown opcode 0xfc %d", sub)
	}
	return sub, err
}

// simdOp skips the immediates of a 0xfd-prefixed instruction.
func (r *reader) simdOp() error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 11 || sub == 92 || sub == 93: // loads and stores
		return r.memarg()
	case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
		_, err = r.bytes(16)
	case sub >= 21 && sub <= 34: // extract and replace lane
		_, err = r.byte()
	case sub >= 84 && sub <= 91: // load and store lane
		if err = r.memarg(); err == nil {
			_, err = r.byte()
		}
	case sub <= 0x113: // no immediates
	default:
		return fmt.Errorf("unknown opcode 0xfd %d", sub)
	}
	return err
}
