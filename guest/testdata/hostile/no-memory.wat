;; expect: no exported memory
(module
  (func (export "_start")))
