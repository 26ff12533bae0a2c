;; expect: unreachable
;; The reproduced escape: two table.grow of 0x1fffffff on a table with no
;; maximum. The sandbox caps the table, so each grow returns -1 and the guest
;; traps instead of allocating gigabytes on the host.
(module
  (table 0 funcref)
  (memory (export "memory") 1)
  (func (export "_start")
    (if (i32.eq (table.grow 0 (ref.null func) (i32.const 0x1fffffff)) (i32.const -1)) (then unreachable))
    (if (i32.eq (table.grow 0 (ref.null func) (i32.const 0x1fffffff)) (i32.const -1)) (then unreachable))))
