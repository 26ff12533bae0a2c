;; expect: guest trapped
(module
  (type $t (func))
  (table 1 1 funcref)
  (memory (export "memory") 1)
  (func (export "_start") (call_indirect (type $t) (i32.const 0))))
