;; expect: initial memory of 65536 pages
(module
  (memory (export "memory") 65536)
  (func (export "_start")))
