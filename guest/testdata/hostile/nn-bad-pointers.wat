;; expect: nn-bad-pointers: every bad pointer refused, errno 1
;; Passes pointers and lengths outside guest memory to every WASI-NN
;; function that takes one: each call fails with invalid_argument (1) and
;; the host writes nothing, allocates nothing and does not panic.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_ephemeral_nn" "load" (func $load (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "load_by_name" (func $load_by_name (param i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "load_by_name_with_config" (func $load_cfg (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "init_execution_context" (func $init (param i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "compute" (func $compute (param i32) (result i32)))
  (import "wasi_ephemeral_nn" "get_output" (func $get_output (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 128) "ocr-keys")
  (data (i32.const 256) "nn-bad-pointers: every bad pointer refused, errno ")
  (data (i32.const 512) "nn-bad-pointers: a good call failed, errno ")
  (data (i32.const 768) "BUG: the host accepted a bad call at step no.")
  ;; $fail writes the message at $p ($n bytes), the errno $e as a digit and
  ;; a newline to stderr, then exits with $code. Bytes 0..63 are scratch.
  (func $fail (param $p i32) (param $n i32) (param $e i32) (param $code i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (i32.store (i32.const 8) (i32.const 24))
    (i32.store (i32.const 12) (i32.const 2))
    (i32.store8 (i32.const 24) (i32.add (i32.const 48) (local.get $e)))
    (i32.store8 (i32.const 25) (i32.const 10))
    (drop (call $write (i32.const 2) (i32.const 0) (i32.const 2) (i32.const 16)))
    (call $exit (local.get $code)))
  ;; $refused fails the guest (exit 3, naming the step) when a call succeeded.
  (func $refused (param $e i32) (param $step i32) (result i32)
    (if (i32.eqz (local.get $e)) (then (call $fail (i32.const 768) (i32.const 45) (local.get $step) (i32.const 3))))
    (local.get $e))
  (func $ok (param $e i32)
    (if (local.get $e) (then (call $fail (i32.const 512) (i32.const 43) (local.get $e) (i32.const 2)))))
  (func (export "_start")
    (local $e i32) (local $g i32) (local $c i32)
    ;; name outside memory, name longer than memory, graph result outside memory
    (drop (call $refused (call $load_by_name (i32.const 0xfffffff0) (i32.const 32) (i32.const 48)) (i32.const 1)))
    (drop (call $refused (call $load_by_name (i32.const 128) (i32.const 0x7fffffff) (i32.const 48)) (i32.const 2)))
    (drop (call $refused (call $load_by_name (i32.const 128) (i32.const 8) (i32.const 0xfffffffe)) (i32.const 3)))
    (drop (call $refused (call $load_cfg (i32.const 128) (i32.const 8) (i32.const 0xffffff00) (i32.const 0x1000) (i32.const 48)) (i32.const 4)))
    ;; a builder array of 2^29 entries past the end of memory
    (drop (call $refused (call $load (i32.const 0xfffffff8) (i32.const 0x20000000) (i32.const 1) (i32.const 0) (i32.const 48)) (i32.const 5)))
    ;; a good graph and context, then results written outside memory
    (call $ok (call $load_by_name (i32.const 128) (i32.const 8) (i32.const 48)))
    (local.set $g (i32.load (i32.const 48)))
    (drop (call $refused (call $init (local.get $g) (i32.const 0xffffffff)) (i32.const 6)))
    (call $ok (call $init (local.get $g) (i32.const 52)))
    (local.set $c (i32.load (i32.const 52)))
    (call $ok (call $compute (local.get $c)))
    (drop (call $refused (call $get_output (local.get $c) (i32.const 0) (i32.const 0xfffffff0) (i32.const 0x100000) (i32.const 56)) (i32.const 7)))
    (drop (call $refused (call $get_output (local.get $c) (i32.const 0) (i32.const 4096) (i32.const 1024) (i32.const 0xfffffffd)) (i32.const 8)))
    (local.set $e (call $refused (call $get_output (local.get $c) (i32.const 0) (i32.const 0) (i32.const 0xffffffff) (i32.const 56)) (i32.const 9)))
    (call $fail (i32.const 256) (i32.const 50) (local.get $e) (i32.const 1))))
