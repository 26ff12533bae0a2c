;; expect: env.steal (function); guests may import only
(module
  (import "env" "steal" (func))
  (memory (export "memory") 1)
  (func (export "_start")))
