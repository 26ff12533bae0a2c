;; expect: exit code 21
;; Hands WASI pointers past the end of memory; every call must fail with
;; EFAULT (21), which the guest exits with.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 0xfffffff0))
    (i32.store (i32.const 4) (i32.const 0x7fffffff))
    (if (i32.eqz (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))) (then (call $exit (i32.const 100))))
    (if (i32.eqz (call $args (i32.const -8) (i32.const -8))) (then (call $exit (i32.const 100))))
    (call $exit (call $random (i32.const 65000) (i32.const 0x7fffffff)))))
