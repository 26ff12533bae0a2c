;; expect: guest ran past its deadline
;; Runs ocr-det on a 1312 px page (the model's bound) in an endless loop:
;; the compute in progress when the job's deadline passes is terminated
;; inside ONNX Runtime, and the job ends at its deadline.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_ephemeral_nn" "load_by_name" (func $load_by_name (param i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "init_execution_context" (func $init (param i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "set_input" (func $set_input (param i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "compute" (func $compute (param i32) (result i32)))
  (memory (export "memory") 330)
  (data (i32.const 128) "ocr-det")
  (data (i32.const 256) "nn-compute-deadline: compute failed, errno ")
  (data (i32.const 512) "nn-compute-deadline: a good call failed, errno ")
  ;; dims [1, 3, 1312, 1312]
  (data (i32.const 1024) "\01\00\00\00\03\00\00\00\20\05\00\00\20\05\00\00")
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
  (func $ok (param $e i32)
    (if (local.get $e) (then (call $fail (i32.const 512) (i32.const 47) (local.get $e) (i32.const 2)))))
  (func (export "_start")
    (local $e i32) (local $c i32)
    (call $ok (call $load_by_name (i32.const 128) (i32.const 7) (i32.const 48)))
    (call $ok (call $init (i32.load (i32.const 48)) (i32.const 52)))
    (local.set $c (i32.load (i32.const 52)))
    (call $ok (call $set_input (local.get $c) (i32.const 0) (call $tensor (i32.const 1024) (i32.const 20656128))))
    (loop $again
      (local.set $e (call $compute (local.get $c)))
      (br_if $again (i32.eqz (local.get $e))))
    (call $fail (i32.const 256) (i32.const 43) (local.get $e) (i32.const 1))))
