;; expect: exit code 63
;; Tries the preopen a WASI libc would use (fd 3) and path_open on it; the
;; guest exits with the errno path_open gave (63: EPERM, no preopens) or
;; with 100 if it opened anything.
(module
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "/etc/passwd")
  (func (export "_start") (local $e i32)
    (if (i32.eqz (call $prestat (i32.const 3) (i32.const 0))) (then (call $exit (i32.const 100))))
    (local.set $e (call $open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 11)
                              (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 16)))
    (if (i32.eqz (local.get $e)) (then (call $exit (i32.const 100))))
    ;; the standard fds are not directories either
    (if (i32.eqz (call $open (i32.const 0) (i32.const 0) (i32.const 64) (i32.const 11)
                              (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 16)))
      (then (call $exit (i32.const 100))))
    (call $exit (local.get $e))))
