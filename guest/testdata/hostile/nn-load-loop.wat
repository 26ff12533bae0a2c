;; expect: nn-load-loop: load refused 10000 times
;; Calls WASI-NN load with bogus model bytes 10000 times. Every call fails
;; with the same errno (unsupported_operation 6 when the worker refuses
;; guest models, invalid_encoding 2 when it allows them), the bytes are tried
;; once, and the worker logs the refusal at most once.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_ephemeral_nn" "load" (func $load (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "not an onnx model")
  (data (i32.const 128) "\40\00\00\00\11\00\00\00")
  (data (i32.const 256) "nn-load-loop: load refused 10000 times, errno ")
  (data (i32.const 512) "nn-load-loop: BUG: the errno changed or bogus bytes loaded, errno ")
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
    (local $i i32) (local $e i32) (local $first i32)
    (local.set $first (call $load (i32.const 128) (i32.const 1) (i32.const 1) (i32.const 0) (i32.const 160)))
    (if (i32.eqz (local.get $first)) (then (call $fail (i32.const 512) (i32.const 66) (i32.const 0) (i32.const 3))))
    (loop $again
      (local.set $e (call $load (i32.const 128) (i32.const 1) (i32.const 1) (i32.const 0) (i32.const 160)))
      (if (i32.ne (local.get $e) (local.get $first)) (then (call $fail (i32.const 512) (i32.const 66) (local.get $e) (i32.const 3))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 9999))))
    (call $fail (i32.const 256) (i32.const 46) (local.get $first) (i32.const 1))))
