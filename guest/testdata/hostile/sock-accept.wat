;; expect: exit code 8
;; sock_accept on the fds a pre-opened listener would get; exits with the
;; errno (8: EBADF, no sockets) or 100 if it got a connection.
(module
  (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown" (func $shutdown (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $e i32)
    (if (i32.eqz (call $accept (i32.const 4) (i32.const 0) (i32.const 0))) (then (call $exit (i32.const 100))))
    (if (i32.eqz (call $shutdown (i32.const 1) (i32.const 2))) (then (call $exit (i32.const 100))))
    (local.set $e (call $accept (i32.const 3) (i32.const 0) (i32.const 0)))
    (if (i32.eqz (local.get $e)) (then (call $exit (i32.const 100))))
    (call $exit (local.get $e))))
