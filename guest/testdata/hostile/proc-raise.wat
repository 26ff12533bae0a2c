;; expect: exit code 52
;; proc_raise is not implemented (ENOSYS, 52): the guest exits with the errno.
(module
  (import "wasi_snapshot_preview1" "proc_raise" (func $raise (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (call $raise (i32.const 9)))))
