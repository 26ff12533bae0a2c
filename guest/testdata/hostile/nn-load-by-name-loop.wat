;; expect: nn-load-by-name-loop: load_by_name refused 10000 times
;; input: no-such-model
;; Calls load_by_name 10000 times with the model name on stdin (an unknown
;; or broken model). Every call fails with the first call's errno; a broken
;; model is loaded once per worker and its failure logged once.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "load_by_name" (func $load_by_name (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "nn-load-by-name-loop: load_by_name refused 10000 times, errno ")
  (data (i32.const 512) "nn-load-by-name-loop: BUG: the errno changed or the model loaded, errno ")
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
    (local $i i32) (local $e i32) (local $first i32) (local $n i32)
    ;; the name: up to 200 bytes of stdin at 1024, a trailing newline dropped
    (i32.store (i32.const 32) (i32.const 1024))
    (i32.store (i32.const 36) (i32.const 200))
    (drop (call $read (i32.const 0) (i32.const 32) (i32.const 1) (i32.const 40)))
    (local.set $n (i32.load (i32.const 40)))
    (if (i32.and (i32.gt_u (local.get $n) (i32.const 0))
                 (i32.eq (i32.load8_u (i32.add (i32.const 1023) (local.get $n))) (i32.const 10)))
      (then (local.set $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.set $first (call $load_by_name (i32.const 1024) (local.get $n) (i32.const 48)))
    (if (i32.eqz (local.get $first)) (then (call $fail (i32.const 512) (i32.const 72) (i32.const 0) (i32.const 3))))
    (loop $again
      (local.set $e (call $load_by_name (i32.const 1024) (local.get $n) (i32.const 48)))
      (if (i32.ne (local.get $e) (local.get $first)) (then (call $fail (i32.const 512) (i32.const 72) (local.get $e) (i32.const 3))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 9999))))
    (call $fail (i32.const 256) (i32.const 62) (local.get $first) (i32.const 1))))
