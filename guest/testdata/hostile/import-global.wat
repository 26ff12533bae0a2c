;; expect: wasi_snapshot_preview1.g imports a global
(module
  (import "wasi_snapshot_preview1" "g" (global i32))
  (memory (export "memory") 1)
  (func (export "_start")))
