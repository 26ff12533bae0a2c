;; expect: nn-rec-contexts: refused, errno
;; Opens up to 64 contexts on ocr-rec, each computing a 1600-wide line and
;; keeping its input and its 5 MB output: the host stops it at its context
;; cap (busy, 4) or at its per-instance tensor budget (too_large, 7), so the
;; memory it holds stays bounded.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_ephemeral_nn" "load_by_name" (func $load_by_name (param i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "init_execution_context" (func $init (param i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "set_input" (func $set_input (param i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "compute" (func $compute (param i32) (result i32)))
  (memory (export "memory") 16)
  (data (i32.const 128) "ocr-rec")
  (data (i32.const 256) "nn-rec-contexts: refused, errno ")
  (data (i32.const 512) "nn-rec-contexts: load_by_name ocr-rec failed, errno ")
  (data (i32.const 768) "nn-rec-contexts: BUG: 64 wide contexts held, errno ")
  ;; dims [1, 3, 48, 1600]
  (data (i32.const 1024) "\01\00\00\00\03\00\00\00\30\00\00\00\40\06\00\00")
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
  ;; $tensor writes a tensor record at 2048 (dims at $dp, 4 of them, f32,
  ;; $n bytes of data at 65536) and returns its address.
  (func $tensor (param $dp i32) (param $n i32) (result i32)
    (i32.store (i32.const 2048) (local.get $dp))
    (i32.store (i32.const 2052) (i32.const 4))
    (i32.store (i32.const 2056) (i32.const 1))
    (i32.store (i32.const 2060) (i32.const 65536))
    (i32.store (i32.const 2064) (local.get $n))
    (i32.const 2048))
  (func (export "_start")
    (local $i i32) (local $e i32) (local $c i32)
    (local.set $e (call $load_by_name (i32.const 128) (i32.const 7) (i32.const 48)))
    (if (local.get $e) (then (call $fail (i32.const 512) (i32.const 52) (local.get $e) (i32.const 2))))
    (loop $again
      (local.set $e (call $init (i32.load (i32.const 48)) (i32.const 52)))
      (if (local.get $e) (then (call $fail (i32.const 256) (i32.const 32) (local.get $e) (i32.const 1))))
      (local.set $c (i32.load (i32.const 52)))
      (local.set $e (call $set_input (local.get $c) (i32.const 0) (call $tensor (i32.const 1024) (i32.const 921600))))
      (if (local.get $e) (then (call $fail (i32.const 256) (i32.const 32) (local.get $e) (i32.const 1))))
      (local.set $e (call $compute (local.get $c)))
      (if (local.get $e) (then (call $fail (i32.const 256) (i32.const 32) (local.get $e) (i32.const 1))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 64))))
    (call $fail (i32.const 768) (i32.const 51) (i32.const 0) (i32.const 3))))
