;; expect: initial elements
(module
  (table 0x10000000 funcref)
  (memory (export "memory") 1)
  (func (export "_start")))
