;; expect: ran past its deadline
;; Two functions that call each other through a table, twice each, with no
;; loop: the fan-out of recursion-fanout with indirect calls.
(module
  (type $t (func (param i32)))
  (memory (export "memory") 1)
  (table 2 funcref)
  (elem (i32.const 0) $a $b)
  (func $a (param i32)
    (if (local.get 0)
      (then
        (call_indirect (type $t) (i32.sub (local.get 0) (i32.const 1)) (i32.const 1))
        (call_indirect (type $t) (i32.sub (local.get 0) (i32.const 1)) (i32.const 1)))))
  (func $b (param i32)
    (if (local.get 0)
      (then
        (call_indirect (type $t) (i32.sub (local.get 0) (i32.const 1)) (i32.const 0))
        (call_indirect (type $t) (i32.sub (local.get 0) (i32.const 1)) (i32.const 0)))))
  (func (export "_start") (call $a (i32.const 60))))
