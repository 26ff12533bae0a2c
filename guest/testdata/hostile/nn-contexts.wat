;; expect: nn-contexts: init_execution_context refused, errno 4
;; Creates execution contexts on ocr-cls without finalizing them, up to
;; 100000: the host refuses with busy (4) at its per-instance cap.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_ephemeral_nn" "load_by_name" (func $load_by_name (param i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "init_execution_context" (func $init (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 128) "ocr-cls")
  (data (i32.const 256) "nn-contexts: init_execution_context refused, errno ")
  (data (i32.const 512) "nn-contexts: load_by_name ocr-cls failed, errno ")
  (data (i32.const 768) "nn-contexts: BUG: 100000 contexts, errno ")
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
  (func (export "_start")
    (local $i i32) (local $e i32)
    (local.set $e (call $load_by_name (i32.const 128) (i32.const 7) (i32.const 48)))
    (if (local.get $e) (then (call $fail (i32.const 512) (i32.const 48) (local.get $e) (i32.const 2))))
    (loop $again
      (local.set $e (call $init (i32.load (i32.const 48)) (i32.const 52)))
      (if (local.get $e) (then (call $fail (i32.const 256) (i32.const 51) (local.get $e) (i32.const 1))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 100000))))
    (call $fail (i32.const 768) (i32.const 41) (i32.const 0) (i32.const 3))))
