;; expect: wasi_snapshot_preview1.fd_write has type
;; Imports a WASI function with the wrong signature.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func (param i64) (result i64)))
  (memory (export "memory") 1)
  (func (export "_start")))
